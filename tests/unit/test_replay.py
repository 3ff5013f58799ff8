"""Replay: cached and rebuilt instances agree, changed code is caught, patches, repair."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from onward import BadInput, Engine, WorkflowFailed
from tests.helpers import wait_until

FLOWS = Path(__file__).resolve().parent.parent / "flows"
BASIC = str(FLOWS / "basic.py")
V1, V2, V3 = (str(FLOWS / v / "orders.py") for v in ("v1", "v2", "v3"))
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "histories"


@pytest.fixture
def db_path(any_db: Path | str) -> Path | str:
    """Every replay test on an SQLite file and on a PostgreSQL schema."""
    return any_db


def shape(history: list[dict[str, object]]) -> list[tuple[object, ...]]:
    """A history without times: what must be identical between two executions."""
    return [(e["seq"], e["type"], json.dumps(
        {k: v for k, v in e["attrs"].items()  # type: ignore[union-attr]
         if k not in ("task_id", "provider_version", "fire_at", "child_run_id",
                      "deadline", "next_retry")}, sort_keys=True))
        for e in history]


def run_all(eng: Engine) -> dict[str, list[tuple[object, ...]]]:
    with eng.worker(concurrency=4):
        eng.start("three_steps", 1, id="a").result(timeout=10)
        eng.start("fan_out", 5, id="b").result(timeout=10)
        eng.start("sleeper", 0.05, id="c").result(timeout=10)
        eng.start("retrying", 2, id="d").result(timeout=10)
        eng.start("parent", False, id="e").result(timeout=10)
    return {i: shape(eng.show(i)["history"]) for i in "abcde"}


def test_cached_and_rebuilt_instances_give_the_same_history(
        more_dbs: Callable[[str], Path | str]) -> None:
    cached = Engine(more_dbs("cached"), flows=[BASIC])
    rebuilt = Engine(more_dbs("rebuilt"), flows=[BASIC], cache_size=0)
    try:
        with_cache = run_all(cached)
        without = run_all(rebuilt)
        assert cached.cache.hits > 0 and rebuilt.cache.hits == 0
        assert rebuilt.cache.misses > cached.cache.misses
        # parallel completions may arrive in any order; everything else is identical
        fan_cached, fan_rebuilt = with_cache.pop("b"), without.pop("b")
        assert sorted(e[1:] for e in fan_cached) == sorted(e[1:] for e in fan_rebuilt)
        assert with_cache == without
        assert all(r["ok"] for r in cached.replay(all_runs=True))
    finally:
        cached.close()
        rebuilt.close()


def test_recorded_fixture_replays_against_todays_code(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(flows=[BASIC])
    for fixture in sorted(FIXTURES.glob("basic-*.json")):
        report = eng.replay_history(json.loads(fixture.read_text()))
        assert report["ok"] is True, f"{fixture.name}: {report['error']}"


def test_recorded_fixture_with_changed_code_is_non_deterministic(make_engine) -> None:  # type: ignore[no-untyped-def]
    v2 = make_engine(flows=[V2])
    recorded = json.loads((FIXTURES / "order-v1.json").read_text())
    charge = next(e["seq"] for e in recorded["history"] if e["type"] == "ActivityScheduled")
    report = v2.replay_history(recorded)
    assert report["ok"] is False and report["seq"] == charge
    assert "history has ActivityScheduled 'charge'" in report["error"]
    assert "'charge_v2'" in report["error"] and "orders.py:" in report["error"]


def test_bad_export_is_refused(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(flows=[BASIC])
    with pytest.raises(BadInput, match="not an exported Onward history"):
        eng.replay_history({"history": [{"seq": 1}]})


def test_non_deterministic_edit_holds_the_run_and_restoring_resumes(db_path: Path | str) -> None:
    v1 = Engine(db_path, flows=[V1])
    with v1.worker():
        v1.start("order", "o1", id="o1")
        wait_until(lambda: "ActivityCompleted" in [e["type"] for e in v1.show("o1")["history"]],
                   message="charge done")
    v1.signal("o1", "go")
    v2 = Engine(db_path, flows=[V2])
    with v2.worker():
        wait_until(lambda: v2.show("o1")["stuck"], message="held stuck")
    shown = v2.show("o1")
    assert shown["status"] == "running"
    failed = [e for e in shown["history"] if e["type"] == "WorkflowTaskFailed"][0]["attrs"]
    assert failed["kind"] == "nondeterminism" and failed["seq"] == 2
    assert failed["recorded"] == "ActivityScheduled 'charge'"
    assert failed["requested"] == "ActivityScheduled 'charge_v2'"
    assert "orders.py" in failed["source"]
    replay = v2.replay(["o1"])
    assert replay[0]["ok"] is False and replay[0]["seq"] == 2
    v2.close()
    with v1.worker():  # the fixed (restored) code resumes the run on its own
        assert v1.handle("o1").result(timeout=10) == ["charged o1", "shipped o1"]
    assert not v1.show("o1")["stuck"]
    v1.close()


def test_patched_takes_old_branch_on_old_histories_and_new_branch_on_new_runs(
        db_path: Path | str) -> None:
    v1 = Engine(db_path, flows=[V1])
    with v1.worker():
        v1.start("order", "done", id="done")
        v1.signal("done", "go")
        assert v1.handle("done").result(timeout=10) == ["charged done", "shipped done"]
        v1.start("order", "midway", id="midway")
        wait_until(lambda: "ActivityCompleted" in
                   [e["type"] for e in v1.show("midway")["history"]], message="charge done")
    v1.close()
    v3 = Engine(db_path, flows=[V3])
    # A history that passed the patch point without the marker replays on the old branch.
    assert v3.replay(["done"])[0]["ok"] is True
    with v3.worker():
        v3.start("order", "new", id="new")
        v3.signal("new", "go")
        v3.signal("midway", "go")
        assert v3.handle("new").result(timeout=10) == ["charged new", "express", "shipped new"]
        # A run that reaches the patch point only now takes the new branch (as in Temporal).
        assert v3.handle("midway").result(timeout=10) == ["charged midway", "express",
                                                            "shipped midway"]
    markers = [e for e in v3.show("new")["history"] if e["type"] == "MarkerRecorded"]
    assert markers[0]["attrs"]["patch_id"] == "express-shipping"
    assert all(r["ok"] for r in v3.replay(all_runs=True))
    v3.close()


def test_retry_of_a_failed_run_with_patched_code_keeps_completed_steps(db_path: Path | str) -> None:
    v1 = Engine(db_path, flows=[V1])
    with v1.worker():
        h = v1.start("claim", "c1", id="c1")
        task = wait_until(lambda: v1.tasks(), message="approval task")[0]
        v1.complete_task(task["task_id"], "approved", by="alice")
        with pytest.raises(WorkflowFailed, match="closed"):
            h.result(timeout=10)
    failed_run = v1.show("c1")["run_id"]
    v1.close()
    v3 = Engine(db_path, flows=[V3])
    with v3.worker():
        message = v3.retry("c1")
        assert "continues from event 3" in message
        assert v3.handle("c1").result(timeout=10) == "approved paid c1 at the new bank"
    shown = v3.show("c1")
    assert shown["reset_from"] == failed_run
    assert [r["status"] for r in shown["runs"]] == ["failed", "completed"]
    types = [e["type"] for e in shown["history"]]
    assert types.count("ManualTaskCreated") == 1 and types.count("ManualTaskCompleted") == 1
    assert v3.show(failed_run)["reset_to"] == shown["run_id"]
    v3.close()


def test_reset_before_a_manual_task_and_before_a_timer(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(flows=[V1])
    with eng.worker():
        h = eng.start("resettable", "r", id="r")
        task = wait_until(lambda: eng.tasks(), message="check task")[0]
        eng.complete_task(task["task_id"], "first")
        assert h.result(timeout=10) == ["charged r", "first", "shipped r"]
        history = eng.show("r")["history"]
        created = next(e["seq"] for e in history if e["type"] == "ManualTaskCreated")
        handle = eng.reset("r", created - 1, discard_completed=True)  # ship runs again
        task = wait_until(lambda: eng.tasks(), message="task asked again after reset")[0]
        eng.complete_task(task["task_id"], "second")
        assert handle.result(timeout=10) == ["charged r", "second", "shipped r"]
        timer = next(e["seq"] for e in eng.show("r")["history"] if e["type"] == "TimerStarted")
        handle = eng.reset("r", timer - 1, discard_completed=True)
        task = wait_until(lambda: eng.tasks(), message="task after timer reset")[0]
        eng.complete_task(task["task_id"], "third")
        assert handle.result(timeout=10) == ["charged r", "third", "shipped r"]
    runs = eng.show("r")["runs"]
    assert [r["status"] for r in runs] == ["completed"] * 3
    types = [e["type"] for e in eng.show("r")["history"]]
    assert types.count("ActivityScheduled") == 2  # charge kept from history, ship new


def test_reset_refuses_points_inside_a_workflow_task(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(flows=[BASIC])
    with eng.worker():
        eng.start("fan_out", 3, id="f").result(timeout=10)
    with pytest.raises(BadInput, match="inside one workflow task"):
        eng.reset("f", 2)
    with pytest.raises(BadInput, match="out of range"):
        eng.reset("f", 999)
    assert len(eng.show("f")["runs"]) == 1


def test_pause_holds_new_attempts_and_resume_lets_go(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(flows=[BASIC])
    eng.start("three_steps", 1, id="p")
    eng.pause("p")
    assert eng.list(status="paused")[0]["id"] == "p"
    with eng.worker() as worker:
        wait_until(lambda: worker.ticks > 3, message="worker turned a few times")
        assert [e["type"] for e in eng.show("p")["history"]] == ["WorkflowStarted"]
        eng.resume("p")
        assert eng.handle("p").result(timeout=10) == 4


def test_retry_now_skips_a_backoff(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(flows=[BASIC])
    with eng.worker():
        h = eng.start("retrying", 1, 3600, id="slow-retry")
        wait_until(lambda: eng.show("slow-retry")["retrying"], message="waiting out backoff")
        assert "start now" in eng.retry("slow-retry")
        assert h.result(timeout=10) == "ok after 2"


def test_retry_refuses_a_completed_run(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(flows=[BASIC])
    with eng.worker():
        eng.start("three_steps", 1, id="done").result(timeout=10)
    with pytest.raises(BadInput, match="only failed, stuck or retrying"):
        eng.retry("done")
