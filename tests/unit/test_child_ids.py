"""A child id may be reused once its earlier run has closed (allow_duplicate), with the
default id ``{parent id}/{seq}`` and with a fixed id: across continue-as-new, ``--rerun``
and reset of the parent. An id whose run is still open is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from onward import Engine, WorkflowFailed, WouldDiscardCompleted

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "races.py")


@pytest.fixture
def eng(make_engine, any_db: str | Path) -> Engine:  # type: ignore[no-untyped-def]
    return make_engine(db=any_db, flows=[FLOWS])


def child_runs(eng: Engine, child_id: str) -> list[str]:
    return [r["status"] for r in sorted(eng.list(all_runs=True), key=lambda r: r["started"])
            if r["id"] == child_id]


@pytest.mark.parametrize("fixed", [None, "the-kid"])
def test_a_child_id_is_reused_across_continue_as_new(eng: Engine, fixed: str | None) -> None:
    with eng.worker():
        result = eng.start("parent_of_one", fixed, 2, id="p").result(timeout=20)
    assert result.startswith("child:")
    kid = fixed or "p/2"
    assert child_runs(eng, kid) == ["completed"] * 3


@pytest.mark.parametrize("fixed", [None, "the-kid"])
def test_a_child_id_is_reused_when_the_parent_is_rerun(eng: Engine, fixed: str | None) -> None:
    with eng.worker():
        eng.start("parent_of_one", fixed, id="p").result(timeout=20)
        again = eng.start("parent_of_one", fixed, id="p", rerun=True)
        assert again.created and again.result(timeout=20).startswith("child:")
    assert child_runs(eng, fixed or "p/2") == ["completed", "completed"]


@pytest.mark.parametrize("fixed", [None, "the-kid"])
def test_a_child_id_is_reused_when_the_parent_is_reset(eng: Engine, fixed: str | None) -> None:
    with eng.worker():
        with pytest.raises(WorkflowFailed, match="after-child failed"):
            eng.start("parent_then_fail", fixed, id="p").result(timeout=20)
        with pytest.raises(WouldDiscardCompleted, match=f"child workflow {fixed or 'p/2'} "):
            eng.reset("p", 1)
        eng.reset("p", 1, discard_completed=True)  # the new run starts the child again
        with pytest.raises(WorkflowFailed, match="after-child failed"):
            eng.handle("p").result(timeout=20)
    assert child_runs(eng, fixed or "p/2") == ["completed", "completed"]
    types = [e["type"] for e in eng.show("p")["history"]]
    assert "ChildWorkflowCompleted" in types and "ActivityFailed" in types


def test_a_child_id_whose_run_is_open_is_refused(eng: Engine) -> None:
    with eng.worker():
        first = eng.start("claims_child", "kid", id="p1")
        second = eng.start("claims_child", "kid", id="p2")
        assert second.result(timeout=20) == (
            "refused: child workflow kid failed: id kid already has an open run")
        eng.signal("kid", "go")
        assert first.result(timeout=20) == "went"
    assert child_runs(eng, "kid") == ["completed"]
