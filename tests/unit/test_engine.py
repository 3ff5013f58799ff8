"""The engine in one process: workflows, activities, retries, timers, signals, tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from onward import BadInput, Engine, NotFound, RunStillOpen, WorkflowFailed
from onward.errors import UnknownWorkflow
from tests.helpers import executions, wait_until

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")


@pytest.fixture
def eng(make_engine, any_db: str | Path) -> Engine:  # type: ignore[no-untyped-def]
    """An engine on SQLite, then on PostgreSQL: the same tests pass on both stores."""
    return make_engine(db=any_db, flows=[FLOWS])


def types(eng: Engine, ident: str) -> list[str]:
    return [e["type"] for e in eng.show(ident)["history"]]


def test_three_steps_complete_in_order(eng: Engine, log: Path) -> None:
    with eng.worker():
        assert eng.start("three_steps", 1, id="w").result(timeout=10) == 4
    assert [e["label"] for e in executions(log)] == ["a", "b", "c"]
    assert types(eng, "w") == ["WorkflowStarted"] + ["ActivityScheduled",
                                                     "ActivityCompleted"] * 3 + [
        "WorkflowCompleted"]
    shown = eng.show("w")
    assert shown["status"] == "completed" and shown["result"] == 4 and shown["input"] == [1]
    assert shown["history"][0]["time"].endswith("+00:00")


def test_an_id_runs_once_and_rerun_starts_again(eng: Engine) -> None:
    with eng.worker():
        first = eng.start("three_steps", 1, id="once")
        first.result(timeout=10)
        again = eng.start("three_steps", 100, id="once")
        assert not again.created and again.run_id == first.run_id
        rerun = eng.start("three_steps", 10, id="once", rerun=True)
        assert rerun.created and rerun.run_id != first.run_id
        assert rerun.result(timeout=10) == 13
    assert len(eng.list(all_runs=True)) == 2
    assert len(eng.list()) == 1


def test_rerun_of_an_open_run_is_refused(eng: Engine) -> None:
    eng.start("signals", 1, id="open")
    with pytest.raises(BadInput, match="still running"):
        eng.start("signals", 1, id="open", rerun=True)


def test_parallel_activities_with_gather(eng: Engine) -> None:
    with eng.worker(concurrency=8):
        assert eng.start("fan_out", 6, id="fan").result(timeout=10) == [1, 2, 3, 4, 5, 6]
    history = types(eng, "fan")
    assert history[1:7] == ["ActivityScheduled"] * 6


def test_retries_until_success_record_every_attempt(eng: Engine) -> None:
    with eng.worker():
        assert eng.start("retrying", 2, id="r").result(timeout=10) == "ok after 3"
    failed = [e for e in eng.show("r")["history"] if e["type"] == "ActivityAttemptFailed"]
    assert [e["attrs"]["attempt"] for e in failed] == [1, 2]
    assert failed[0]["attrs"]["error"]["type"] == "RuntimeError"
    assert failed[0]["attrs"]["next_retry"] and "traceback" in failed[0]["attrs"]["error"]
    assert failed[0]["attrs"]["provider"] == "basic"
    assert failed[0]["attrs"]["provider_version"]


def test_maximum_attempts_fails_the_run(eng: Engine) -> None:
    with eng.worker():
        with pytest.raises(WorkflowFailed) as err:
            eng.start("retrying", 5, 0.01, 2, id="max").result(timeout=10)
    assert err.value.status == "failed" and err.value.error["type"] == "ActivityError"
    history = types(eng, "max")
    assert history.count("ActivityAttemptFailed") == 2 and "ActivityFailed" in history


def test_non_retryable_error_stops_at_once(eng: Engine, log: Path) -> None:
    with eng.worker():
        with pytest.raises(WorkflowFailed):
            eng.start("refused", "non_retryable", id="nr").result(timeout=10)
    assert len(executions(log)) == 1


def test_non_retryable_error_types_stop_at_once(eng: Engine, log: Path) -> None:
    with eng.worker():
        with pytest.raises(WorkflowFailed):
            eng.start("refused", "Fatal", ["Fatal"], id="t").result(timeout=10)
    assert len(executions(log)) == 1


def test_activity_error_can_be_caught(eng: Engine) -> None:
    with eng.worker():
        assert eng.start("catches", id="c").result(timeout=10) == "caught ActivityError"


def test_non_json_activity_result_fails_the_attempt_clearly(eng: Engine) -> None:
    with eng.worker():
        with pytest.raises(WorkflowFailed):
            eng.start("non_json_activity", id="nj").result(timeout=10)
    failed = [e for e in eng.show("nj")["history"] if e["type"] == "ActivityAttemptFailed"]
    assert len(failed) == 1
    assert "is not JSON" in failed[0]["attrs"]["error"]["message"]


def test_durable_timer_fires_once(eng: Engine) -> None:
    with eng.worker():
        assert eng.start("sleeper", 0.2, id="s").result(timeout=10) == "slept True"
    assert types(eng, "s").count("TimerFired") == 1


def test_signals_are_buffered_in_order(eng: Engine) -> None:
    eng.signal(eng.start("signals", 3, id="sig").id, "item", 1)
    eng.signal("sig", "item", {"two": 2})
    with eng.worker():
        eng.signal("sig", "item", [3])
        assert eng.start("signals", 3, id="sig").result(timeout=10) == [1, {"two": 2}, [3]]


def test_signal_to_unknown_or_closed_run_is_refused(eng: Engine) -> None:
    with pytest.raises(NotFound):
        eng.signal("nobody", "item", 1)
    with eng.worker():
        eng.start("three_steps", 1, id="done").result(timeout=10)
    before = types(eng, "done")
    with pytest.raises(BadInput, match="completed"):
        eng.signal("done", "item", 1)
    assert types(eng, "done") == before


def test_wait_signal_timeout(eng: Engine) -> None:
    with eng.worker():
        assert eng.start("signal_timeout", 0.1, id="t").result(timeout=10) == "timed out"
        h = eng.start("signal_timeout", 30, id="a")
        wait_until(lambda: "TimerStarted" in types(eng, "a"), message="timer started")
        eng.signal("a", "answer", 42)
        assert h.result(timeout=10) == "answer 42"
    shown = eng.show("a")
    assert shown["pending"]["timers"] == []


def test_manual_task_complete_and_first_answer_stands(eng: Engine) -> None:
    with eng.worker():
        h = eng.start("approval", id="ap")
        task = wait_until(lambda: eng.tasks(), message="task created")[0]
        assert task["kind"] == "approve" and task["assignee"] == "alice"
        assert task["data"] == {"x": 1} and task["id"] == "ap"
        eng.complete_task(task["task_id"], {"ok": True}, by="alice")
        with pytest.raises(BadInput, match="already completed by alice"):
            eng.complete_task(task["task_id"], {"ok": False}, by="bob")
        assert h.result(timeout=10) == {"ok": True}
    assert types(eng, "ap").count("ManualTaskCompleted") == 1


def test_manual_task_timeout_raises_timeout_error_once(eng: Engine) -> None:
    with eng.worker():
        assert eng.start("approval", 0.1, id="late").result(timeout=10) == "timed out"
    assert types(eng, "late").count("ManualTaskTimedOut") == 1
    task = eng.tasks("all")[0]
    assert task["status"] == "timed_out"
    with pytest.raises(BadInput, match="timed_out"):
        eng.complete_task(task["task_id"], True)


def test_fail_task(eng: Engine) -> None:
    with eng.worker():
        h = eng.start("approval", id="f")
        task = wait_until(lambda: eng.tasks(), message="task")[0]
        eng.fail_task(task["task_id"], "no budget")
        with pytest.raises(WorkflowFailed, match="no budget"):
            h.result(timeout=10)


def test_cancel_runs_compensation(eng: Engine, log: Path) -> None:
    with eng.worker():
        h = eng.start("saga", id="trip")
        wait_until(lambda: "TimerStarted" in types(eng, "trip"), message="sleeping")
        eng.cancel("trip")
        with pytest.raises(WorkflowFailed) as err:
            h.result(timeout=10)
    assert err.value.status == "canceled"
    assert [e["label"] for e in executions(log)] == ["book", "compensate"]
    assert eng.show("trip")["pending"]["timers"] == []


def test_terminate_stops_at_once(eng: Engine) -> None:
    h = eng.start("approval", id="term")
    with eng.worker():
        wait_until(lambda: eng.tasks(), message="task")
        eng.terminate("term", "operator said so")
        with pytest.raises(WorkflowFailed, match="operator said so"):
            h.result(timeout=10)
    assert eng.tasks() == []
    assert types(eng, "term")[-1] == "WorkflowTerminated"


def test_child_workflows_link_and_report(eng: Engine) -> None:
    with eng.worker():
        assert eng.start("parent", False, id="p").result(timeout=10) == "child done"
        assert eng.start("parent", True, id="p2").result(timeout=10) == \
            "child failed: ChildWorkflowError"
    shown = eng.show("p")
    assert shown["children"][0]["id"] == "p/2"
    assert eng.show("p/2")["parent"]["id"] == "p"


def test_continue_as_new_keeps_history_bounded(eng: Engine) -> None:
    with eng.worker():
        assert eng.start("looper", 0, 1000, id="loop").result(timeout=120) == 1000
    runs = eng.show("loop")["runs"]
    assert len(runs) == 1001
    assert len(eng.show("loop")["history"]) == 2


def test_deterministic_values_replay_identically(eng: Engine) -> None:
    with eng.worker():
        values = eng.start("deterministic_values", id="dv").result(timeout=10)
    report = eng.replay(["dv"])
    assert report[0]["ok"] is True
    assert values[2] == "dv"


def test_bug_in_workflow_code_holds_run_stuck(eng: Engine) -> None:
    with eng.worker():
        eng.start("buggy", id="bug")
        wait_until(lambda: eng.show("bug")["stuck"], message="run held stuck")
    shown = eng.show("bug")
    assert shown["status"] == "running"
    failure = [e for e in shown["history"] if e["type"] == "WorkflowTaskFailed"]
    assert len(failure) == 1 and "KeyError" in failure[0]["attrs"]["message"]
    assert eng.list(status="stuck")[0]["id"] == "bug"


def test_non_json_workflow_result_holds_run(eng: Engine) -> None:
    with eng.worker():
        eng.start("bad_result", id="bad")
        wait_until(lambda: eng.show("bad")["stuck"], message="stuck on a non-JSON result")
    assert "not JSON" in eng.show("bad")["stuck_reason"]


def test_wall_clock_in_workflow_is_refused(eng: Engine) -> None:
    with eng.worker():
        eng.start("wall_clock", id="wc")
        wait_until(lambda: eng.show("wc")["stuck"], message="stuck")
    assert "workflow.sleep" in eng.show("wc")["stuck_reason"]


def test_start_to_close_timeout_retries_then_fails(eng: Engine, log: Path) -> None:
    with eng.worker():
        with pytest.raises(WorkflowFailed):
            eng.start("times_out", 30, 0.3, id="slow").result(timeout=15)
    failed = [e for e in eng.show("slow")["history"] if e["type"] == "ActivityAttemptFailed"]
    assert [e["attrs"]["error"]["type"] for e in failed] == ["StartToCloseTimeout"] * 2


def test_heartbeat_timeout_fires_on_a_silent_activity(eng: Engine) -> None:
    with eng.worker():
        with pytest.raises(WorkflowFailed):
            eng.start("heartbeats", 30, 0.3, False, id="silent").result(timeout=15)
        assert eng.start("heartbeats", 0.6, 0.3, True, id="beats").result(timeout=15) == "done"
    failed = [e for e in eng.show("silent")["history"] if e["type"] == "ActivityAttemptFailed"]
    assert failed[0]["attrs"]["error"]["type"] == "HeartbeatTimeout"


def test_query_answers_from_replayed_state_without_writing(eng: Engine) -> None:
    with eng.worker():
        eng.start("signals", 3, id="q")
        eng.signal("q", "item", "a")
        wait_until(lambda: "SignalReceived" in types(eng, "q"), message="signal stored")
        before = types(eng, "q")
        assert eng.query("q", "received") == ["a"]
        assert types(eng, "q") == before


def test_result_timeout_and_unknown_ids(eng: Engine) -> None:
    h = eng.start("signals", 1, id="waits")
    with pytest.raises(RunStillOpen):
        h.result(timeout=0.1)
    with pytest.raises(NotFound):
        eng.show("missing")


def test_unknown_workflow_and_bad_input_change_nothing(eng: Engine) -> None:
    with pytest.raises(UnknownWorkflow):
        eng.start("nope")
    with pytest.raises(BadInput, match="not JSON"):
        eng.start("three_steps", b"12")
    assert eng.list(all_runs=True) == []


def test_two_engines_side_by_side(tmp_path: Path) -> None:
    a = Engine(tmp_path / "a.db", flows=[FLOWS])
    b = Engine(tmp_path / "b.db", flows=[FLOWS])
    try:
        with a.worker(), b.worker():
            assert a.start("three_steps", 1, id="x").result(timeout=10) == 4
            assert b.start("three_steps", 10, id="x").result(timeout=10) == 13
        assert len(a.list()) == 1 and len(b.list()) == 1
    finally:
        a.close()
        b.close()


def test_database_file_is_private(any_db: str | Path, eng: Engine) -> None:
    if not isinstance(any_db, Path):
        pytest.skip("a PostgreSQL database is not a file")
    assert any_db.stat().st_mode & 0o777 == 0o600


def test_cancelling_the_parent_cancels_its_child(eng: Engine, log: Path) -> None:
    with eng.worker():
        parent = eng.start("waiting_parent", id="mom")
        wait_until(lambda: "TimerStarted" in types(eng, "the-child"), message="child sleeping")
        eng.cancel("mom")
        with pytest.raises(WorkflowFailed) as err:
            parent.result(timeout=10)
        assert err.value.status == "canceled"
        with pytest.raises(WorkflowFailed) as child_err:
            eng.handle("the-child").result(timeout=10)
    assert child_err.value.status == "canceled"
    assert [e["label"] for e in executions(log)] == ["book", "compensate"]
