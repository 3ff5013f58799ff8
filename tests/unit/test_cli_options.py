"""The command line's shape: shared options before or after the subcommand, help for every
option with its default, examples for every command, number validation, ONWARD_PLUGINS."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from onward import Engine, __version__
from onward.cli import build_parser, code_for, main
from onward.cli_options import UsageError

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database holding one run, ``keep``."""
    path = tmp_path / "opts.db"
    eng = Engine(path, flows=[FLOWS])
    eng.start("signals", 1, id="keep")
    eng.close()
    return str(path)


def commands(parser: argparse.ArgumentParser | None = None, prefix: str = "onward"
             ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command parser below ``parser``, with its full name."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from commands(sub, f"{prefix} {name}")


# --------------------------------------------------------------------------- --db anywhere


@pytest.mark.parametrize("argv", [
    ["--db", "{db}", "list"], ["list", "--db", "{db}"],
    ["--db", "{db}", "show", "keep"], ["show", "keep", "--db", "{db}"],
])
def test_db_before_or_after_the_subcommand_reads_that_database(
        capsys: pytest.CaptureFixture[str], db: str, argv: list[str],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # ./onward.db, the default, is not there
    monkeypatch.delenv("ONWARD_DB", raising=False)
    code, out, err = run(capsys, *[a.format(db=db) for a in argv])
    assert code == 0, err
    assert "keep" in out


@pytest.mark.parametrize("argv", [
    ["--db", "X", "task", "complete", "t1"], ["task", "complete", "t1", "--db", "X"],
    ["--db", "X", "console", "--no-worker"], ["console", "--db", "X", "--no-worker"],
    ["--db", "X", "worker"], ["--db", "X", "replay", "a", "b"],
])
def test_db_is_taken_in_either_place_by_nested_and_contributed_commands(
        argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONWARD_DB", "from-the-environment.db")
    assert build_parser().parse_args(argv).db == "X"


def test_db_defaults_to_the_environment_then_onward_db(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    monkeypatch.setenv("ONWARD_DB", "env.db")
    assert build_parser().parse_args(["list"]).db == "env.db"
    monkeypatch.delenv("ONWARD_DB")
    assert build_parser().parse_args(["list"]).db == "onward.db"
    # given twice, the one after the subcommand (nearer the command) wins
    assert build_parser().parse_args(["--db", "a", "list", "--db", "b"]).db == "b"


def test_flows_and_plugins_before_the_subcommand_join_those_after() -> None:
    args = build_parser().parse_args(["--flows", "a.py", "--plugins", "p1", "start", "wf",
                                      "--flows", "b.py"])
    assert (args.flows, args.plugins) == (["a.py", "b.py"], ["p1"])


@pytest.mark.parametrize("argv,says", [
    (["--flows", "a.py", "list"], "--flows: `onward list` runs no workflow code"),
    (["--plugins", "p", "task", "fail", "t"], "--plugins: `onward task fail` runs no"),
    (["--db", "x.db", "migrate", "--from", "a", "--to", "b"], "--db: `onward migrate` opens"),
    (["--db", "x.db", "completion", "bash"], "--db: `onward completion` opens no database"),
])
def test_shared_options_a_command_does_not_take_are_refused(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], says: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and says in err and err.count("\n") == 1 and not out
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- help


def _default_shown(action: argparse.Action) -> bool:
    """Whether ``action`` has a default worth showing (not none, off, empty)."""
    return action.default not in (None, False, "", [], argparse.SUPPRESS)


def test_every_option_and_positional_has_help_with_its_default() -> None:
    checked = 0
    for name, parser in commands():
        if parser.get_default("contributed_unavailable"):
            continue
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if action.help == argparse.SUPPRESS:
                assert action.option_strings == ["--args"], f"{name}: hidden {action.dest}"
                continue
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{where} has no help"
            if _default_shown(action):
                assert f"default {action.default}" in text, f"{where}: default not shown"
            checked += 1
    assert checked > 60


@pytest.mark.parametrize("command,default", [
    ("worker", "--concurrency N activity attempts running at once in this worker (default 8)"),
    ("worker", "(default 5.0)"), ("worker", "(default 2.0)"), ("worker", "(default INFO)"),
    ("console", "(default 8)"), ("result", "(default 0.0: answer at once)"),
    ("tasks", "(default open)"), ("list", "(default text)"),
])
def test_help_shows_the_documented_defaults(command: str, default: str) -> None:
    parser = dict(commands())[f"onward {command}"]
    assert default in " ".join(parser.format_help().split())


def test_each_command_has_a_description_and_one_to_three_examples() -> None:
    for name, parser in commands():
        if parser.get_default("contributed_unavailable"):
            continue
        assert parser.description, f"{name} has no description"
        examples = re.findall(r"^  onward .*$", parser.epilog or "", re.MULTILINE)
        assert 1 <= len(examples) <= 3, f"{name}: {len(examples)} examples"


def test_main_help_lists_commands_with_summaries_and_the_environment(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for line in ("worker ", "start ", "list ", "completion "):
        summary = [s for s in out.splitlines() if s.strip().startswith(line)]
        assert summary and len(summary[0].split()) > 2, f"{line!r}: {summary}"
    for name in ("ONWARD_DB", "ONWARD_FLOWS", "ONWARD_PLUGINS", "NO_COLOR"):
        assert re.search(rf"^  {name}\s+\S", out, re.MULTILINE), name


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"onward {__version__}\n"
    assert re.fullmatch(r"onward \d+\.\d+\.\d+\S*\n", out)


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("argv,option", [
    (["list", "--limit", "-1"], "--limit"), (["list", "--limit", "0"], "--limit"),
    (["result", "keep", "--wait", "-3"], "--wait"),
    (["result", "keep", "--wait", "inf"], "--wait"),
    (["reset", "keep", "--event", "0", "--flows", FLOWS], "--event"),
    (["worker", "--concurrency", "0"], "--concurrency"),
    (["worker", "--lease-ttl", "nan"], "--lease-ttl"),
    (["worker", "--lease-ttl", "0"], "--lease-ttl"),
    (["worker", "--workflow-deadline", "-1"], "--workflow-deadline"),
    (["worker", "--metrics-port", "70000"], "--metrics-port"),
    (["worker", "--metrics-port", "0"], "--metrics-port"),
    (["console", "--concurrency", "-2"], "--concurrency"),
])
def test_numbers_out_of_range_are_refused_naming_the_option(
        capsys: pytest.CaptureFixture[str], db: str, argv: list[str], option: str) -> None:
    with pytest.raises(UsageError, match=re.escape(option)):  # refused while parsing
        build_parser().parse_args(argv)
    if argv[0] in ("worker", "console"):
        return  # a worker that got past parsing would run on: tests/unit/test_cli_process.py
    before = Path(db).read_bytes()
    code, out, err = run(capsys, *argv, "--db", db)
    assert code == 2 and err.count("\n") == 1 and option in err and not out
    assert err.startswith("onward: ") and "invalid value" in err
    assert Path(db).read_bytes() == before


def test_numbers_in_range_are_taken() -> None:
    args = build_parser().parse_args(["worker", "--concurrency", "3", "--lease-ttl", "0.5",
                                      "--metrics-port", "65535", "--workflow-deadline", "9"])
    assert (args.concurrency, args.lease_ttl, args.metrics_port, args.workflow_deadline) == (
        3, 0.5, 65535, 9.0)
    assert build_parser().parse_args(["result", "x", "--wait", "0"]).wait == 0.0


# --------------------------------------------------------------------------- ONWARD_PLUGINS

PROVIDER = '''
from onward import hookimpl, workflow

@workflow.defn(name="from_plugin")
async def from_plugin() -> str:
    return "plugged"

@hookimpl
def onward_workflows():
    return [from_plugin]
'''


def test_onward_plugins_is_the_default_for_plugins(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    folder = tmp_path / "plugs"
    folder.mkdir()
    (folder / "provider.py").write_text(PROVIDER)
    db = str(tmp_path / "p.db")
    monkeypatch.setenv("ONWARD_PLUGINS", f"{tmp_path / 'none'}:{folder}")
    assert code_for(build_parser().parse_args(["worker"]))[1] == [str(tmp_path / "none"),
                                                                   str(folder)]
    assert code_for(build_parser().parse_args(["worker", "--plugins", "x"]))[1] == ["x"]
    monkeypatch.setenv("ONWARD_PLUGINS", str(folder))
    code, out, err = run(capsys, "start", "from_plugin", "--id", "p1", "--db", db)
    assert code == 0 and "started p1" in out, err
    monkeypatch.delenv("ONWARD_PLUGINS")
    code, _, err = run(capsys, "start", "from_plugin", "--id", "p2", "--db", db,
                       "--flows", FLOWS)
    assert code == 2 and "unknown workflow 'from_plugin'" in err


def test_a_worker_run_in_process_leaves_the_onward_logger_as_it_found_it() -> None:
    """``main(["worker", ...])`` configures logging for its run only (a handler left on a
    captured stderr broke later tests' log capture)."""
    from onward.cli import _worker_logging
    logger = logging.getLogger("onward")
    before = (list(logger.handlers), logger.level, logger.propagate)
    with _worker_logging("DEBUG", "json"):
        assert logger.propagate is False and logger.level == logging.DEBUG
        assert len(logger.handlers) == len(before[0]) + 1
    assert (list(logger.handlers), logger.level, logger.propagate) == before
