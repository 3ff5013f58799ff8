"""What commands print: --output text|json|jsonl (--json an alias), tables with a header
row, query's --input, and refusals that name the command to use instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from onward import Engine
from onward.cli import main
from tests.helpers import wait_until

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")
V1 = str(Path(__file__).resolve().parent.parent / "flows" / "v1" / "orders.py")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database with runs done (done-1, done-2), failed (bad), terminated (gone), open
    (open-1, with a manual task) and one that queries answer (sig)."""
    db = str(tmp_path_factory.mktemp("output") / "out.db")
    eng = Engine(db, flows=[FLOWS])
    with eng.worker():
        for n in (1, 2):
            eng.start("three_steps", n, id=f"done-{n}").result(timeout=20)
        eng.start("refused", "non_retryable", id="bad")
        eng.start("approval", id="open-1")
        wait_until(lambda: eng.tasks(), message="a manual task")
        eng.start("signals", 2, id="sig")
        eng.start("signals", 5, id="gone")
        eng.terminate("gone", "enough")
        wait_until(lambda: eng.show("bad")["status"] == "failed", message="bad failed")
    eng.close()
    yield db


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("argv", [["list"], ["list", "--all"], ["show", "done-1"],
                                  ["result", "done-1"], ["tasks"], ["start", "three_steps",
                                  "--id", "done-1", "--flows", FLOWS]])
def test_json_is_an_alias_of_output_json_and_jsonl_is_one_object_a_line(
        capsys: pytest.CaptureFixture[str], world: str, argv: list[str]) -> None:
    code, as_json, _ = run(capsys, *argv, "--db", world, "--json")
    assert code == 0
    assert run(capsys, *argv, "--db", world, "--output", "json")[1] == as_json
    document = json.loads(as_json)
    code, lines, _ = run(capsys, *argv, "--db", world, "-o", "jsonl")
    assert code == 0
    items = [json.loads(line) for line in lines.splitlines()]
    assert items == (document if isinstance(document, list) else [document])
    assert len(lines.splitlines()) == (len(document) if isinstance(document, list) else 1)


def test_failed_result_is_printed_in_each_format(capsys: pytest.CaptureFixture[str],
                                                 world: str) -> None:
    code, out, _ = run(capsys, "result", "bad", "--db", world, "-o", "jsonl")
    assert code == 1 and json.loads(out)["status"] == "failed" and out.count("\n") == 1
    code, out, _ = run(capsys, "result", "bad", "--db", world)
    assert code == 1 and out.startswith("failed: ActivityError: ") and "refused for good" in out


def test_replay_jsonl_is_one_report_a_line(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    eng = Engine(db, flows=[V1])
    with eng.worker():
        eng.start("order", "o", id="o1")
        eng.start("order", "p", id="o2")
        wait_until(lambda: all(any(e["type"] == "ActivityCompleted" for e in
                                   eng.show(i)["history"]) for i in ("o1", "o2")),
                   message="both charged")
    eng.close()
    code, out, _ = run(capsys, "replay", "o1", "o2", "--db", db, "--flows", V1,
                       "--output", "jsonl")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["o1", "o2"]


def test_list_text_is_a_table_with_a_header_row(capsys: pytest.CaptureFixture[str],
                                                world: str) -> None:
    code, out, _ = run(capsys, "list", "--db", world)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ID", "WORKFLOW", "STATUS"]
    assert len(lines) == 1 + 6
    status_at = lines[0].index("STATUS")
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["bad"][status_at:].startswith("failed")
    assert rows["done-1"][status_at:].startswith("completed")
    assert rows["open-1"].split()[1] == "approval"
    code, out, _ = run(capsys, "list", "--db", world, "--status", "canceled")
    assert code == 0 and out == "no runs with status canceled\n"


def test_tasks_text_is_a_table_with_a_header_row(capsys: pytest.CaptureFixture[str],
                                                 world: str) -> None:
    code, out, _ = run(capsys, "tasks", "--db", world)
    header, *rows = out.splitlines()
    assert code == 0 and header.split()[:3] == ["TASK", "KIND", "RUN"]
    assert len(rows) == 1 and rows[0].split()[2] == "open-1"


def test_query_takes_input_and_the_old_args_spelling(capsys: pytest.CaptureFixture[str],
                                                     world: str) -> None:
    # `signals` answers the query "received" (no arguments): an argument is refused by it
    for option in ("--input", "--args"):
        code, out, err = run(capsys, "query", "sig", "received", "--db", world, "--flows",
                             FLOWS, option, "[]", "--json")
        assert code == 0 and json.loads(out) == [], err
    code, _, err = run(capsys, "query", "sig", "received", "--db", world, "--flows",
                       FLOWS, "--input", "[1")
    assert code == 2 and "--input" in err
    code, out, _ = run(capsys, "query", "--help")
    assert "--input JSON" in out and "--args" not in out


# --------------------------------------------------------------------------- pointers


def test_resume_of_a_closed_run_names_the_command_that_runs_it_again(
        capsys: pytest.CaptureFixture[str], world: str) -> None:
    before = Path(world).read_bytes()
    code, _, err = run(capsys, "resume", "bad", "--db", world)
    assert code == 2 and err.count("\n") == 1
    assert "run bad is failed, not paused" in err and "use `onward retry bad`" in err
    code, _, err = run(capsys, "resume", "gone", "--db", world)
    assert code == 2 and "run gone is terminated" in err
    assert "`onward start signals --id gone --rerun`" in err
    assert Path(world).read_bytes() == before


def test_result_of_an_open_run_says_how_to_wait(capsys: pytest.CaptureFixture[str],
                                                world: str) -> None:
    code, out, err = run(capsys, "result", "open-1", "--db", world)
    assert code == 3 and not out
    assert err == ("run open-1 is still running; `onward result open-1 --wait SECONDS` "
                   "waits for it\n")


def test_starting_an_id_whose_run_closed_points_to_rerun(capsys: pytest.CaptureFixture[str],
                                                         world: str) -> None:
    code, out, _ = run(capsys, "start", "signals", "--id", "gone", "--db", world)
    assert code == 0 and "already exists: gone" in out and "terminated" in out
    assert "`onward start signals --id gone --rerun` starts a new run" in out
    code, out, _ = run(capsys, "start", "approval", "--id", "open-1", "--db", world)
    assert code == 0 and "already exists: open-1" in out and "--rerun" not in out


def test_a_missing_command_or_option_points_to_help(capsys: pytest.CaptureFixture[str],
                                                    world: str) -> None:
    code, _, err = run(capsys, "--db", world)
    assert code == 2 and err.rstrip().endswith("see `onward --help`")
    code, _, err = run(capsys, "list", "--bogus", "--db", world)
    assert code == 2 and "unrecognized arguments: --bogus" in err
    assert err.rstrip().endswith("see `onward list --help`")
