"""The CLI contract: commands, JSON output, exit statuses, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onward import Engine
from onward.cli import build_parser, main
from tests.helpers import wait_until

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")
V1 = str(Path(__file__).resolve().parent.parent / "flows" / "v1" / "orders.py")
V2 = str(Path(__file__).resolve().parent.parent / "flows" / "v2" / "orders.py")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(any_db: Path | str) -> str:
    """``--db``: an SQLite file, then a ``postgresql://`` URL on a fresh schema."""
    return str(any_db)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """For checks of SQLite files themselves (a file that is missing stays missing)."""
    return str(tmp_path / "cli.db")


def test_every_design_command_is_listed_in_help() -> None:
    help_text = build_parser().format_help()
    for command in ("console", "worker", "start", "list", "show", "result", "signal", "query",
                    "cancel", "terminate", "tasks", "task", "retry", "pause", "resume",
                    "reset", "replay", "migrate"):
        assert command in help_text


def test_read_commands_on_a_missing_database_say_so(capsys, sqlite_db: str) -> None:  # type: ignore[no-untyped-def]
    db = sqlite_db
    for command in (["list"], ["show", "x"], ["result", "x"], ["tasks"], ["replay"],
                    ["signal", "x", "go"], ["cancel", "x"], ["retry", "x"], ["pause", "x"],
                    ["task", "complete", "t"]):
        code, out, err = run(capsys, *command, "--db", db)
        assert code == 2 and "no database at" in err and err.count("\n") == 1
    assert not Path(db).exists()


def test_start_show_list_result_json(capsys, db: str) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "start", "three_steps", "--db", db, "--flows", FLOWS,
                       "--input", "[1]", "--id", "c1", "--json")
    assert code == 0 and json.loads(out)["created"] is True
    code, out, _ = run(capsys, "start", "three_steps", "--db", db, "--flows", FLOWS,
                       "--input", "[5]", "--id", "c1", "--json")
    assert code == 0 and json.loads(out)["created"] is False
    code, out, _ = run(capsys, "result", "c1", "--db", db)
    assert code == 3
    eng = Engine(db, flows=[FLOWS])
    with eng.worker():
        eng.handle("c1").result(timeout=10)
    eng.close()
    code, out, _ = run(capsys, "result", "c1", "--db", db, "--json")
    assert code == 0 and json.loads(out) == 4
    code, out, _ = run(capsys, "show", "c1", "--db", db, "--json")
    shown = json.loads(out)
    for key in ("id", "run_id", "workflow", "status", "stuck", "input", "result", "error",
                "history"):
        assert key in shown
    assert shown["history"][0] == {**shown["history"][0], "seq": 1, "type": "WorkflowStarted"}
    code, out, _ = run(capsys, "list", "--db", db, "--json")
    listed = json.loads(out)
    assert {"id", "run_id", "workflow", "status", "stuck", "started", "updated"} <= set(
        listed[0])
    code, out, _ = run(capsys, "list", "--db", db, "--status", "failed", "--json")
    assert json.loads(out) == []


def test_start_checks_names_against_registered_types(capsys, db: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "start", "three_steps", "--db", db)
    assert code == 2 and "unknown workflow 'three_steps'" in err
    eng = Engine(db, flows=[FLOWS])
    with eng.worker():
        pass  # a worker registers its workflow types
    eng.close()
    code, _, _ = run(capsys, "start", "three_steps", "--db", db, "--input", "[1]")
    assert code == 0
    code, _, err = run(capsys, "start", "nope", "--db", db)
    assert code == 2 and "unknown workflow 'nope'" in err


@pytest.mark.parametrize("args,message", [
    (["start", "three_steps", "--input", "[1,"], "not valid JSON"),
    (["start", "three_steps", "--input", "{'a': 1}"], "not valid JSON"),
    (["signal", "missing", "go"], "no run with id"),
    (["cancel", "missing"], "no run with id"),
    (["task", "complete", "task-none"], "no manual task"),
    (["task", "complete", "task-none", "--result", "nope"], "not valid JSON"),
    (["list", "--status", "weird"], "unknown status"),
    (["reset", "missing", "--event", "2"], "no run with id"),
    (["bogus"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(capsys, db: str, args: list[str],  # type: ignore[no-untyped-def]
                                                          message: str) -> None:
    eng = Engine(db, flows=[FLOWS])
    eng.start("signals", 1, id="keep")
    before = (eng.list(all_runs=True), eng.show("keep")["history"])
    eng.close()
    extra = ["--db", db, "--flows", FLOWS] if args[0] == "start" else (
        [] if args[0] == "bogus" else ["--db", db])
    code, out, err = run(capsys, *args, *extra)
    assert code == 2, err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    eng = Engine(db, flows=[FLOWS])
    assert (eng.list(all_runs=True), eng.show("keep")["history"]) == before
    eng.close()


def test_corrupt_database_is_refused_without_writing(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    before = bad.read_bytes()
    code, _, err = run(capsys, "list", "--db", str(bad))
    assert code == 2 and "corrupt or not an SQLite database" in err
    code, _, err = run(capsys, "start", "x", "--db", str(bad))
    assert code == 2
    assert bad.read_bytes() == before


def test_tasks_signal_cancel_terminate(capsys, db: str) -> None:  # type: ignore[no-untyped-def]
    eng = Engine(db, flows=[FLOWS])
    with eng.worker():
        eng.start("approval", id="ap")
        wait_until(lambda: eng.tasks(), message="task open")
        code, out, _ = run(capsys, "tasks", "--db", db, "--json")
        task = json.loads(out)[0]
        assert {"task_id", "id", "kind", "assignee", "data", "deadline", "status"} <= set(task)
        code, _, _ = run(capsys, "task", "complete", task["task_id"], "--db", db,
                         "--result", '{"yes": true}', "--by", "alice")
        assert code == 0
        code, _, err = run(capsys, "task", "complete", task["task_id"], "--db", db)
        assert code == 2 and "already completed by alice" in err
        assert eng.handle("ap").result(timeout=10) == {"yes": True}
        eng.start("signals", 1, id="sig")
        code, _, _ = run(capsys, "signal", "sig", "item", "--db", db, "--payload", '"hi"')
        assert code == 0 and eng.handle("sig").result(timeout=10) == ["hi"]
        code, _, err = run(capsys, "signal", "sig", "item", "--db", db)
        assert code == 2 and "has completed" in err
        eng.start("saga", id="trip")
        wait_until(lambda: "TimerStarted" in [e["type"] for e in eng.show("trip")["history"]],
                   message="saga sleeping")
        assert run(capsys, "cancel", "trip", "--db", db)[0] == 0
        code, _, _ = run(capsys, "result", "trip", "--db", db, "--wait", "10")
        assert code == 1
        eng.start("signals", 1, id="term")
        assert run(capsys, "terminate", "term", "--db", db, "--reason", "enough")[0] == 0
        code, out, _ = run(capsys, "result", "term", "--db", db, "--json")
        assert code == 1 and json.loads(out)["status"] == "terminated"
    eng.close()


def test_replay_is_a_deploy_gate(capsys, db: str) -> None:  # type: ignore[no-untyped-def]
    v1 = Engine(db, flows=[V1])
    with v1.worker():
        v1.start("order", "o", id="o")
        wait_until(lambda: "ActivityCompleted" in [e["type"] for e in v1.show("o")["history"]],
                   message="charged")
    v1.close()
    code, out, _ = run(capsys, "replay", "--db", db, "--flows", V1)
    assert code == 0 and "0 would break" in out
    code, out, _ = run(capsys, "replay", "--db", db, "--flows", V2)
    assert code == 1 and "BREAKS o" in out and "charge_v2" in out
    code, out, _ = run(capsys, "replay", "o", "--db", db, "--flows", V2, "--json")
    assert code == 1 and json.loads(out)[0]["ok"] is False


def test_pause_resume_retry_reset_commands(capsys, db: str) -> None:  # type: ignore[no-untyped-def]
    eng = Engine(db, flows=[FLOWS])
    eng.start("three_steps", 1, id="p")
    assert run(capsys, "pause", "p", "--db", db)[0] == 0
    code, out, _ = run(capsys, "list", "--db", db, "--status", "paused", "--json")
    assert [r["id"] for r in json.loads(out)] == ["p"]
    assert run(capsys, "resume", "p", "--db", db)[0] == 0
    with eng.worker():
        eng.handle("p").result(timeout=10)
    code, _, err = run(capsys, "retry", "p", "--db", db)
    assert code == 2 and "only failed" in err
    code, _, err = run(capsys, "reset", "p", "--event", "3", "--db", db, "--flows", FLOWS)
    assert code == 2 and err.startswith("onward: reset would discard completed activities: "
                                        "step (event 5), step (event 7); pass "
                                        "--discard-completed to accept")
    assert len(eng.show("p")["runs"]) == 1
    code, out, _ = run(capsys, "reset", "p", "--event", "3", "--discard-completed",
                       "--db", db, "--flows", FLOWS)
    assert code == 0 and "new run" in out
    with eng.worker():
        assert eng.handle("p").result(timeout=10) == 4
    assert len(eng.show("p")["runs"]) == 2
    eng.close()
