"""Child handles, parent close policies, external handles and child id reuse (issue 17).

Parent close policies run under a real worker process; the rest under the engine's own
worker. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from onward import Engine, WorkflowFailed
from tests.helpers import REPO, WorkerProcess, wait_until

pytestmark = pytest.mark.slow

FLOWS = REPO / "tests" / "flows" / "children.py"


@pytest.fixture
def eng(any_db: Path | str) -> Iterator[Engine]:
    engine = Engine(any_db, flows=[str(FLOWS)])
    yield engine
    engine.close()


def events(eng: Engine, ident: str, kind: str) -> list[dict[str, Any]]:
    """The attrs of ``ident``'s events of type ``kind``, in order."""
    return [e["attrs"] for e in eng.show(ident)["history"] if e["type"] == kind]


def wait_waiting(eng: Engine, ident: str) -> None:
    """Until run ``ident`` exists and its code waits for signal ``go``."""
    def waiting() -> bool:
        try:
            return eng.show(ident)["step"] == "waiting for signal go"
        except Exception:  # noqa: BLE001 - not created yet
            return False
    wait_until(waiting, message=f"{ident} waits for go")


def assert_compensated_and_canceled(eng: Engine, kid: str) -> None:
    with pytest.raises(WorkflowFailed) as failed:
        eng.handle(kid).result(timeout=30)
    assert failed.value.status == "canceled"
    done = [a["result"] for a in events(eng, kid, "ActivityCompleted")]
    assert done == [f"compensated {kid}"]
    assert len(events(eng, kid, "CancelRequested")) == 1


@pytest.mark.parametrize("policy", ["terminate", "request_cancel", "abandon"])
def test_parent_close_policy_when_the_parent_completes(eng: Engine, any_db: Path | str,
                                                       policy: str) -> None:
    """The parent completes while its child waits on a signal: the child is terminated,
    asked to cancel (it compensates and ends canceled), or left running."""
    with WorkerProcess(any_db, flows=[FLOWS]).wait_ready():
        eng.start("policy_parent", policy, "complete", id="p")
        wait_waiting(eng, "p-kid")
        started = events(eng, "p", "ChildWorkflowStarted")[0]
        assert started.get("parent_close_policy", "terminate") == policy
        eng.signal("p", "finish")
        assert eng.handle("p").result(timeout=30) == "p-kid"
        if policy == "terminate":
            assert eng.show("p-kid")["status"] == "terminated"
            reasons = [a["reason"] for a in events(eng, "p-kid", "WorkflowTerminated")]
            assert reasons == ["parent p closed (completed)"]
        elif policy == "request_cancel":
            assert_compensated_and_canceled(eng, "p-kid")
        else:
            assert eng.show("p-kid")["status"] == "running"  # decided as the parent closed
            eng.signal("p-kid", "go", "later")
            assert eng.handle("p-kid").result(timeout=30) == "got later"
            assert events(eng, "p", "ChildWorkflowCompleted") == []  # the parent had closed


@pytest.mark.parametrize("close", ["fail", "continue"])
def test_request_cancel_applies_on_failure_and_continue_as_new(eng: Engine,
                                                                close: str) -> None:
    """The policy is applied however the parent closes: failed, or continued as new (the
    old run closes; its open children are treated as on any other close)."""
    with eng.worker():
        eng.start("policy_parent", "request_cancel", close, id="p")
        wait_waiting(eng, "p-kid")
        eng.signal("p", "finish")
        if close == "fail":
            with pytest.raises(WorkflowFailed, match="parent gives up"):
                eng.handle("p").result(timeout=30)
        else:
            assert eng.handle("p").result(timeout=30) == "continued"  # the new run
        assert_compensated_and_canceled(eng, "p-kid")
    status = "failed" if close == "fail" else "continued_as_new"
    assert events(eng, "p-kid", "CancelRequested") == [{"reason": f"parent p {status}"}]


def test_terminate_policy_of_a_canceled_parent_asks_the_child_to_cancel(eng: Engine) -> None:
    """Under the default policy a canceled parent asks its children to cancel (as before)."""
    with eng.worker():
        eng.start("policy_parent", "terminate", "complete", id="p")
        wait_waiting(eng, "p-kid")
        eng.cancel("p")
        with pytest.raises(WorkflowFailed):
            eng.handle("p").result(timeout=30)
        assert_compensated_and_canceled(eng, "p-kid")


def test_a_child_is_signalled_through_its_handle(eng: Engine) -> None:
    """Started and signalled in the same workflow task: the signal reaches the new child."""
    with eng.worker():
        assert eng.start("handle_parent", id="hp").result(timeout=30) == [
            "hp/2", "got from parent"]
    sent = events(eng, "hp", "ExternalSignalSent")
    assert len(sent) == 1 and sent[0]["workflow_id"] == "hp/2" and sent[0]["name"] == "go"
    assert sent[0]["target_run_id"] == events(eng, "hp", "ChildWorkflowStarted")[0][
        "child_run_id"]
    received = events(eng, "hp/2", "SignalReceived")
    assert received == [{"name": "go", "payload": "from parent", "sender": "hp"}]


def test_a_child_is_canceled_through_its_handle(eng: Engine) -> None:
    with eng.worker():
        assert eng.start("cancel_through_handle", id="ch").result(timeout=30) == \
            "child canceled"
    assert events(eng, "ch", "ExternalCancelRequested")[0]["workflow_id"] == "kid-to-cancel"
    assert_compensated_and_canceled(eng, "kid-to-cancel")


def test_an_external_signal_reaches_another_run_by_id(eng: Engine, any_db: Path | str) -> None:
    with WorkerProcess(any_db, flows=[FLOWS]).wait_ready():
        eng.start("waiting_child", id="target")
        wait_waiting(eng, "target")
        assert eng.start("signaller", "target", "go", "hi", id="s").result(timeout=30) == "sent"
        assert eng.handle("target").result(timeout=30) == "got hi"
    sent = [e for e in eng.show("s")["history"] if e["type"] == "ExternalSignalSent"]
    got = [e for e in eng.show("target")["history"] if e["type"] == "SignalReceived"]
    assert sent[0]["attrs"]["target_run_id"] == eng.show("target")["run_id"]
    assert got[0]["attrs"] == {"name": "go", "payload": "hi", "sender": "s"}
    assert got[0]["time"] == sent[0]["time"]  # written by the same workflow task


def test_a_signal_to_a_missing_or_closed_run_fails_the_await_not_the_run(
        eng: Engine) -> None:
    with eng.worker():
        assert eng.start("signaller", "nobody", "go", 1, id="s1").result(timeout=30) == (
            "failed ExternalWorkflowNotFound: workflow nobody has no run")
        eng.start("quick_child", False, id="gone").result(timeout=30)
        assert eng.start("signaller", "gone", "go", 1, id="s2").result(timeout=30) == (
            "failed ExternalWorkflowNotFound: workflow gone has no open run (its last run "
            "completed)")
        assert eng.start("canceller", "nobody", id="c1").result(timeout=30).startswith(
            "failed ExternalWorkflowNotFound")
        assert eng.start("signaller", "self", "go", 1, id="self").result(timeout=30) \
            .startswith("failed ExternalWorkflowIsSelf")
    assert events(eng, "s1", "ExternalSignalSent")[0]["error"]["type"] == \
        "ExternalWorkflowNotFound"
    assert eng.show("gone")["history"][-1]["type"] == "WorkflowCompleted"  # untouched


def test_an_external_cancel_lets_the_target_compensate(eng: Engine) -> None:
    with eng.worker():
        eng.start("waiting_child", id="victim")
        wait_waiting(eng, "victim")
        assert eng.start("canceller", "victim", id="c").result(timeout=30) == "asked"
        assert_compensated_and_canceled(eng, "victim")
    assert events(eng, "victim", "CancelRequested") == [{"reason": "requested by c"}]


def test_id_reuse_policies(eng: Engine) -> None:
    def parent(ident: str, child_id: str, policy: str, fail: bool = False) -> str:
        return str(eng.start("reuse_parent", child_id, policy, fail, id=ident)
                   .result(timeout=30))

    with eng.worker():
        assert parent("p1", "k", "reject_duplicate") == "done"  # a new id is fine
        assert parent("p2", "k", "reject_duplicate") == (
            "AlreadyStarted: child workflow k failed: id k was used before (its last run "
            "completed) and id_reuse_policy is reject_duplicate")
        assert parent("p3", "k", "allow_duplicate_failed_only").startswith(
            "AlreadyStarted: child workflow k failed: id k was used before by a run that "
            "completed")
        assert parent("p4", "k", "allow_duplicate", fail=True).startswith(
            "ApplicationError: child workflow k failed: child failed on purpose")
        assert parent("p5", "k", "allow_duplicate_failed_only") == "done"  # last one failed
        assert parent("p6", "k", "allow_duplicate") == "done"
    assert [r["status"] for r in sorted(eng.list(all_runs=True), key=lambda r: r["started"])
            if r["id"] == "k"] == ["completed", "failed", "completed", "completed"]


def test_a_bad_policy_holds_the_run_with_a_clear_message(eng: Engine) -> None:
    with eng.worker():
        eng.start("policy_parent", "orphan", "complete", id="bad")
        wait_until(lambda: eng.show("bad")["stuck"], message="held")
    assert "parent_close_policy 'orphan' is not one of terminate, request_cancel, abandon" \
        in eng.show("bad")["step"]


def test_a_history_with_external_signals_replays_without_reaching_the_target(
        eng: Engine) -> None:
    """The recorded outcome is read back: replay works after the target closed (a live
    lookup would now fail), and a changed signal name is caught as non-determinism."""
    with eng.worker():
        eng.start("waiting_child", id="target")
        wait_waiting(eng, "target")
        assert eng.start("signaller", "target", "go", "hi", id="s").result(timeout=30) == "sent"
        assert eng.start("signaller", "missing", "go", 1, id="m").result(timeout=30) \
            .startswith("failed")
        eng.handle("target").result(timeout=30)
    assert [r["ok"] for r in eng.replay(["s", "m"])] == [True, True]
    exported = json.loads(json.dumps(eng.show("s")))
    assert eng.replay_history(exported)["ok"] is True
    sent = next(e for e in exported["history"] if e["type"] == "ExternalSignalSent")
    sent["attrs"]["name"] = "stop"
    report = eng.replay_history(exported)
    assert report["ok"] is False and report["seq"] == sent["seq"]
    assert "history has ExternalSignalSent 'target stop'" in report["error"]
