"""Class and function workflows with signal, query and update handlers and wait_condition
(issue 17): in-process first, then across processes with ``kill -9``."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

from onward import Engine, UpdateFailed, UpdatePending, UpdateRejected
from tests.helpers import REPO, WorkerProcess, env_for, executions, wait_until

FLOWS = REPO / "tests" / "flows" / "handlers.py"


@pytest.fixture
def eng(any_db: Path | str, log: Path) -> Engine:
    engine = Engine(any_db, flows=[str(FLOWS)])
    yield engine
    engine.close()


def types_of(eng: Engine, ident: str) -> list[str]:
    return [e["type"] for e in eng.show(ident)["history"]]


def test_a_signal_handler_releases_wait_condition_and_a_query_reads_state(eng: Engine) -> None:
    with eng.worker():
        run = eng.start("approval", "claim-1", id="a1")
        eng.signal("a1", "note", "first look")
        wait_until(lambda: eng.query("a1", "status")["notes"] == ["FIRST LOOK"])
        eng.signal("a1", "decide", "rejected")
        assert run.result(timeout=20) == "claim-1: rejected"
    assert eng.query("a1", "status") == {"decision": "rejected", "notes": ["FIRST LOOK"]}


def test_wait_condition_times_out_on_a_durable_timer(eng: Engine) -> None:
    with eng.worker():
        assert eng.start("approval", "claim-2", 0.0002, id="a2").result(timeout=20) \
            == "claim-2: timed out"
    assert "TimerFired" in types_of(eng, "a2")


def test_an_update_returns_its_result_and_is_recorded(eng: Engine) -> None:
    with eng.worker():
        eng.start("approval", "claim-3", id="a3")
        assert eng.update("a3", "approve", "dana", timeout=20) == "approved by dana"
        assert eng.handle("a3").result(timeout=20) == "claim-3: approved by dana"
    history = eng.show("a3")["history"]
    accepted = [e for e in history if e["type"] == "UpdateAccepted"]
    completed = [e for e in history if e["type"] == "UpdateCompleted"]
    assert [e["attrs"]["args"] for e in accepted] == [["dana"]]
    assert [e["attrs"]["result"] for e in completed] == ["approved by dana"]


def test_a_rejected_update_records_nothing(eng: Engine) -> None:
    with eng.worker():
        eng.start("approval", "claim-4", id="a4")
        wait_until(lambda: "waiting" in str(eng.show("a4")["status"]) or
                   len(types_of(eng, "a4")) >= 1)
        before = types_of(eng, "a4")
        with pytest.raises(UpdateRejected, match="who approves"):
            eng.update("a4", "approve", "", timeout=20)
        with pytest.raises(UpdateRejected, match="no update 'nope'"):
            eng.update("a4", "nope", timeout=20)
        assert types_of(eng, "a4") == before
        assert eng.update("a4", "approve", "erin", timeout=20) == "approved by erin"
        with pytest.raises(UpdateRejected, match="already decided|it has completed|closed"):
            eng.update("a4", "approve", "fay", timeout=20)  # decided: the run may be done
    assert types_of(eng, "a4").count("UpdateAccepted") == 1


def test_an_update_handler_failure_fails_the_update_not_the_run(eng: Engine) -> None:
    with eng.worker():
        eng.start("approval", "claim-5", id="a5")
        with pytest.raises(UpdateFailed, match="cannot amend"):
            eng.update("a5", "amend", "bad", timeout=20)
        assert eng.update("a5", "amend", "fine", timeout=20) == 1
        eng.signal("a5", "decide", "ok")
        assert eng.handle("a5").result(timeout=20) == "claim-5: ok"


def test_an_update_waits_for_a_worker_and_is_not_stored_twice(eng: Engine) -> None:
    eng.start("approval", "claim-6", id="a6")
    with pytest.raises(UpdatePending):
        eng.update("a6", "approve", "gus", update_id="u-1", timeout=0.2)
    with eng.worker():
        assert eng.update("a6", "approve", "gus", update_id="u-1", timeout=20) \
            == "approved by gus"
    assert types_of(eng, "a6").count("UpdateAccepted") == 1


def test_function_workflow_handlers_and_buffered_signals(eng: Engine) -> None:
    eng.start("counter", 10, id="c1")
    eng.signal("c1", "add", 3)  # before any worker: buffered until the handler is set
    eng.signal("c1", "add", 4)
    with eng.worker():
        wait_until(lambda: "TimerFired" in types_of(eng, "c1"))  # the handlers are set
        with pytest.raises(UpdateRejected, match="positive"):
            eng.update("c1", "bump", 0, timeout=20)
        assert eng.update("c1", "bump", 1, timeout=20) == 8
        assert eng.query("c1", "total") == 8
        eng.signal("c1", "add", 2)
        result = eng.handle("c1").result(timeout=20)
    assert result["total"] == 10 and result["seen"] == [3, 4, 1, 2]
    assert result["history_length"] >= 8 and result["suggested"] is False
    assert 1 <= result["dice"] <= 6


def test_workflow_logger_is_silent_on_replay(eng: Engine, caplog: pytest.LogCaptureFixture
                                             ) -> None:
    caplog.set_level(logging.INFO, logger="onward.workflow")
    with eng.worker():
        eng.start("approval", "claim-7", id="a7")
        wait_until(lambda: any("claim-7" in r.getMessage() for r in caplog.records))
        eng.signal("a7", "decide", "yes")
        eng.handle("a7").result(timeout=20)
        eng.query("a7", "status")  # a full replay of the history
    lines = [r for r in caplog.records if "claim-7" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].workflow_id == "a7" and lines[0].run_id  # type: ignore[attr-defined]


UPDATE_FROM_ANOTHER_PROCESS = textwrap.dedent("""
    import json, sys
    from onward import Engine, UpdateRejected
    eng = Engine(sys.argv[1])
    try:
        print(json.dumps({"result": eng.update("s1", "wait_gate", sys.argv[2], timeout=60)}))
    except UpdateRejected as err:
        print(json.dumps({"rejected": str(err)}))
""")


@pytest.mark.slow
def test_an_update_from_another_process_survives_kill_9_of_the_worker(
        any_db: Path | str, tmp_path: Path, log: Path) -> None:
    """Accepted (UpdateAccepted durable), then the worker dies while the handler's activity
    runs; a new worker replays the update's handler and the caller gets its result."""
    gate_file = tmp_path / "gate"
    with Engine(any_db, flows=[str(FLOWS)]) as eng:
        eng.start("slow_update", id="s1")
    env = env_for(ONWARD_TEST_LOG=str(log))
    caller = subprocess.Popen([sys.executable, "-c", UPDATE_FROM_ANOTHER_PROCESS, str(any_db),
                               str(gate_file)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        first = WorkerProcess(any_db, flows=[FLOWS], env=env).wait_ready()
        wait_until(lambda: any(line["label"] == "gate" for line in executions(log)))
        with Engine(any_db) as eng:
            assert "UpdateAccepted" in types_of(eng, "s1")
            assert "UpdateCompleted" not in types_of(eng, "s1")
        first.kill()
        gate_file.write_text("open")
        with WorkerProcess(any_db, flows=[FLOWS], env=env, extra=["--lease-ttl", "1"]) as w:
            w.wait_ready()
            out, _ = caller.communicate(timeout=60)
            with Engine(any_db) as eng:
                assert eng.handle("s1").result(timeout=30) == "finished"
                history = types_of(eng, "s1")
    finally:
        if caller.poll() is None:
            caller.kill()
    assert out.strip() == '{"result": "gate says open"}'
    assert history.count("UpdateAccepted") == 1 and history.count("UpdateCompleted") == 1


def test_class_workflows_take_and_return_typed_payloads(eng: Engine) -> None:
    from tests.flows.handlers import Claim, Decision, TypedApproval
    with eng.worker():
        run = eng.start(TypedApproval, Claim("dana", 12.5), id="t1")
        with pytest.raises(UpdateRejected, match="limit"):
            eng.update("t1", "approve", "erin", "lots", timeout=20)  # not a float
        assert eng.update("t1", "approve", "erin", 100, timeout=20) == \
            {"approved": True, "by": "erin (limit 100)"}
        assert run.result(timeout=20) == Decision(True, "erin (limit 100)")
        run2 = eng.start("typed_approval", {"employee": "li", "amount": 3}, id="t2")
        eng.signal("t2", "decide", {"approved": "yes", "by": "x"})  # dropped: not a bool
        eng.signal("t2", "decide", Decision(False, "bob"))
        assert run2.result(timeout=20) == {"approved": False, "by": "bob"}


@pytest.mark.slow
def test_an_updatable_timer_moved_while_its_worker_was_killed(any_db: Path | str, log: Path
                                                              ) -> None:
    """The timer waits an hour; its worker is killed; the update that brings it forward is
    stored while no worker runs and is answered by the next one, and the run wakes then."""
    env = env_for(ONWARD_TEST_LOG=str(log))
    with Engine(any_db, flows=[str(FLOWS)]) as eng:
        first = WorkerProcess(any_db, flows=[FLOWS], env=env).wait_ready()
        run = eng.start("updatable_timer", time.time() + 3600, id="timer")
        wait_until(lambda: "TimerStarted" in types_of(eng, "timer"))
        first.kill()
        soon = time.time() + 2
        with pytest.raises(UpdatePending):
            eng.update("timer", "set_wake_at", soon, update_id="move", timeout=0.2)
        with WorkerProcess(any_db, flows=[FLOWS], env=env, extra=["--lease-ttl", "1"]) as w:
            w.wait_ready()
            assert eng.update("timer", "set_wake_at", soon, update_id="move",
                              timeout=30) == soon
            assert run.result(timeout=30) == soon
        assert eng.query("timer", "get_wake_at") == soon
        history = eng.show("timer")["history"]
    assert [e["type"] for e in history].count("UpdateAccepted") == 1
    closed = datetime.fromisoformat(history[-1]["time"]).timestamp()
    assert history[-1]["type"] == "WorkflowCompleted" and closed >= soon  # not before, and
    # (run.result returned within 30 s) not an hour later
