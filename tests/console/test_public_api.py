"""The console stands on the engine's public API only (issue 15, item 5): it imports the
top-level ``engine`` package and nothing under it, reaches into no private name of the
engine, types the engine as ``Engine``, and ``onward console`` is registered with the
engine's CLI (entry point group ``onward.cli``) so the engine never imports the console."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from onward import cli_plugins
from onward.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"
ENGINE = ROOT / "engine"


def _trees(folder: Path) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(folder.rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


def _imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import, at any depth (functions included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)


def test_console_modules_import_only_the_engine_package() -> None:
    wrong = [f"{where}:{line} imports {module}" for where, tree in _trees(CONSOLE)
             for line, module in _imports(tree) if module.startswith("engine.")]
    assert not wrong, "the console may import `engine` only:\n" + "\n".join(wrong)


def test_console_reaches_into_no_private_name_of_the_engine() -> None:
    wrong = []
    for where, tree in _trees(CONSOLE):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                    not node.attr.startswith("__") and "engine" in ast.unparse(node.value):
                wrong.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    assert not wrong, "\n".join(wrong)


def test_console_types_the_engine_as_engine() -> None:
    """Every parameter, attribute and property named ``engine`` is annotated ``Engine``."""
    wrong = []
    for where, tree in _trees(CONSOLE):
        for node in ast.walk(tree):
            if isinstance(node, ast.arg) and node.arg == "engine":
                annotation = node.annotation
            elif isinstance(node, ast.FunctionDef) and node.name == "engine":
                annotation = node.returns
            else:
                continue
            if annotation is None or ast.unparse(annotation) != "Engine":
                wrong.append(f"{where}:{node.lineno}")
    assert not wrong, "engine typed other than as Engine at " + ", ".join(wrong)


def test_the_engine_never_imports_the_console() -> None:
    wrong = [f"{where}:{line}" for where, tree in _trees(ENGINE)
             for line, module in _imports(tree) if module.split(".")[0] == "console"]
    assert not wrong, "engine imports the console at " + ", ".join(wrong)


def test_onward_console_is_registered_with_the_cli() -> None:
    """Found through the entry point, or (before ``pip install -e .`` has recorded it) in
    the checkout's pyproject.toml: either way the CLI offers it with its options."""
    parser = build_parser()
    args = parser.parse_args(["console", "--no-worker", "--demo", "--concurrency", "3"])
    assert args.command == "console" and args.no_worker and args.demo
    assert args.concurrency == 3
    assert "console" in parser.format_help()


def test_onward_console_runs_the_console_through_its_registration(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The registered command reaches the console: a history file that is not there is
    refused by the console itself, as one line with exit status 2."""
    code = main(["console", "--db", str(tmp_path / "c.db"), "--history",
                 str(tmp_path / "missing.json")])
    err = capsys.readouterr().err
    assert code == 2 and "--history" in err and err.count("\n") == 1


def _register_extra(commands: cli_plugins.CommandRegistry) -> None:
    commands.add("extra", "a test command", lambda engine, args: 7)


def test_an_extra_that_fails_to_load_says_why_and_breaks_no_other_command(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    broken = EntryPoint("broken", "tests.console.no_such_module:register", cli_plugins.GROUP)
    extra = EntryPoint("extra", f"{__name__}:_register_extra", cli_plugins.GROUP)
    monkeypatch.setattr(cli_plugins, "declared", lambda: [broken, extra])
    db = tmp_path / "x.db"
    assert main(["broken", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "onward broken is not available: ModuleNotFoundError" in err
    assert err.count("\n") == 1 and not db.exists()
    assert main(["extra", "--db", str(db)]) == 2  # not `creates`: the database is missing
    assert "no database at" in capsys.readouterr().err
    assert main(["start", "x", "--db", str(db)]) == 2  # unknown workflow, built-ins work
    assert main(["extra", "--db", str(db)]) == 7


def test_an_installed_entry_point_wins_over_the_checkout_declaration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    installed = EntryPoint("console", f"{__name__}:_register_extra", cli_plugins.GROUP)
    monkeypatch.setattr(cli_plugins, "entry_points", lambda group: [installed])
    names = [ep.name for ep in cli_plugins.declared()]
    assert names == ["console"] and cli_plugins.declared()[0].value == installed.value
    assert "extra" in build_parser().format_help()


def test_an_engine_starts_and_stops_its_in_process_workers_publicly(
        make_engine) -> None:  # type: ignore[no-untyped-def]
    """What the console's embedded worker uses: start, work, stop (twice is harmless),
    and start again on the same engine."""
    eng = make_engine(flows=[str(ROOT / "tests" / "flows" / "basic.py")])
    worker = eng.start_worker(concurrency=2)
    assert eng.start("three_steps", 1, id="a").result(timeout=30) == 4
    eng.stop_worker(worker, grace=5.0)
    eng.stop_worker(worker, grace=5.0)
    eng.start_worker(concurrency=2)
    assert eng.start("three_steps", 2, id="b").result(timeout=30) == 5
    eng.stop_worker()
    eng.stop_worker()
