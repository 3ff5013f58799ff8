"""Retry and reset: what a cut would discard, consent to discard completed work, and acting
on an id's current run only (on SQLite and PostgreSQL)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from onward import BadInput, Engine, NotCurrentRun, WorkflowFailed, WouldDiscardCompleted
from tests.helpers import executions

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "races.py")


@pytest.fixture
def eng(make_engine, any_db: str | Path) -> Engine:  # type: ignore[no-untyped-def]
    return make_engine(db=any_db, flows=[FLOWS])


def failed_saga(eng: Engine, ident: str = "o") -> list[dict[str, object]]:
    with eng.worker(), pytest.raises(WorkflowFailed):
        eng.start("small_saga", ident, id=ident).result(timeout=10)
    return eng.show(ident)["history"]  # type: ignore[no-any-return]


def test_repair_plan_lists_the_completed_refund_a_retry_would_discard(eng: Engine) -> None:
    history = failed_saga(eng)
    refund = next(e for e in history if e["type"] == "ActivityCompleted"
                  and e["attrs"]["result"] == "o:refund")
    ship = next(e for e in history if e["type"] == "ActivityScheduled"
                and e["attrs"]["args"] == ["o:ship"])
    plan = eng.repair_plan("o")
    assert plan["id"] == "o" and plan["run_id"] == eng.show("o")["run_id"]
    assert plan["action"] == "retry" and plan["cut"] == ship["seq"] - 1
    assert plan["kept"] == plan["cut"]
    assert [d["seq"] for d in plan["discarded"]] == list(range(plan["cut"] + 1,
                                                              len(history) + 1))
    assert plan["discarded"][0]["type"] == "ActivityScheduled"
    assert plan["discarded_completed"] == [
        {"seq": refund["seq"], "ref": refund["attrs"]["ref"], "name": "race.step",
         "result": "o:refund"}]
    reset_plan = eng.repair_plan("o", 1)
    assert reset_plan["action"] == "reset" and reset_plan["cut"] == 1
    assert [d["result"] for d in reset_plan["discarded_completed"]] == ["o:charge", "o:refund"]


def test_retry_refuses_to_discard_a_completed_compensation_and_changes_nothing(
        eng: Engine, log: Path) -> None:
    failed_saga(eng)
    with pytest.raises(WouldDiscardCompleted) as refused:
        eng.retry("o")
    assert str(refused.value).startswith("retry would discard completed activities: "
                                         "race.step (event ")
    assert [c["result"] for c in refused.value.completed] == ["o:refund"]
    with pytest.raises(WouldDiscardCompleted):
        eng.reset("o", 1)
    assert len(eng.show("o")["runs"]) == 1
    with eng.worker():
        eng.retry("o", discard_completed=True)
        with pytest.raises(WorkflowFailed):
            eng.handle("o").result(timeout=10)
    ran = collections.Counter(e["label"] for e in executions(log))
    # charge kept from history; ship and refund ran again, as the operator accepted
    assert ran == {"o:charge": 1, "o:ship": 2, "o:refund": 2}


def test_a_cut_that_discards_no_completed_activity_needs_no_consent(eng: Engine) -> None:
    with eng.worker():
        with pytest.raises(WorkflowFailed):
            eng.start("fails_at_once", id="f").result(timeout=10)
        assert eng.repair_plan("f")["discarded_completed"] == []
        assert "new run" in eng.retry("f")


def test_repair_plan_of_a_run_retry_would_not_cut_is_refused(eng: Engine) -> None:
    with eng.worker():
        eng.start("two_steps", "t", id="t").result(timeout=10)
    with pytest.raises(BadInput, match="only a failed run"):
        eng.repair_plan("t")
    with pytest.raises(BadInput, match="out of range"):
        eng.repair_plan("t", 999)


def test_retry_and_reset_act_on_the_current_run_only(eng: Engine) -> None:
    with eng.worker():
        with pytest.raises(WorkflowFailed):
            eng.start("fails_at_once", id="x").result(timeout=10)
        old = eng.show("x")["run_id"]
        eng.retry("x")
        with pytest.raises(WorkflowFailed):
            eng.handle("x").result(timeout=10)
    current = eng.show("x")["run_id"]
    for attempt in (lambda: eng.retry(old), lambda: eng.reset(old, 1),
                    lambda: eng.repair_plan(old)):
        with pytest.raises(NotCurrentRun, match=f"its current run is {current} "):
            attempt()
    assert len(eng.show("x")["runs"]) == 2
    assert eng.repair_plan(current)["run_id"] == current


def name_of(event: dict[str, Any]) -> str:
    attrs = event["attrs"]
    return str(attrs.get("name") or f"child workflow {attrs['child_id']}")


def test_every_cut_of_every_history_is_planned_and_guarded_alike(eng: Engine) -> None:
    """For each event of a few histories, the plan names exactly the completions after the
    cut (activities and child workflows), and a reset there without consent is refused
    listing the same ones, or refused as a bad cut for the same reason the plan gives;
    nothing is ever written."""
    with eng.worker():
        eng.start("two_steps", "t", id="done").result(timeout=10)
        for workflow, ident, args in (("small_saga", "saga", ["saga"]),
                                      ("parent_then_fail", "parent", [None])):
            with pytest.raises(WorkflowFailed):
                eng.start(workflow, *args, id=ident).result(timeout=10)
    for ident in ("done", "saga", "parent"):
        history = eng.show(ident)["history"]
        for seq in range(0, len(history) + 2):
            try:
                plan = eng.repair_plan(ident, seq)
            except BadInput as refused:
                with pytest.raises(BadInput) as again:
                    eng.reset(ident, seq)
                assert str(again.value) == str(refused)
                continue
            completed = [{"seq": e["seq"], "ref": e["attrs"]["ref"], "name": name_of(e),
                          "result": e["attrs"]["result"]} for e in history if e["seq"] > seq
                         and e["type"] in ("ActivityCompleted", "ChildWorkflowCompleted")]
            assert plan["discarded_completed"] == completed
            assert plan["kept"] + len(plan["discarded"]) == len(history)
            if completed:
                with pytest.raises(WouldDiscardCompleted) as would:
                    eng.reset(ident, seq)
                assert would.value.completed == completed
        assert len(eng.show(ident)["runs"]) == 1
