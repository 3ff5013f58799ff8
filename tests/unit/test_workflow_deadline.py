"""The workflow-task deadline in one process: bad values are refused, code that cannot be
stopped is abandoned on its thread, and a deadline that lands anywhere in workflow code
leaves the engine consistent (issue 14, item 12)."""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onward import BadInput, Engine, workflow
from onward.deadline import DeadlineWatch
from onward.events import Event
from onward.instance import WorkflowInstance, WorkflowTaskError
from onward.observers import ObserverFeed
from onward.workflow_runtime import WorkflowInfo
from tests.helpers import cli, wait_until

FLOWS = str(Path(__file__).resolve().parents[1] / "flows" / "runtime.py")


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(st.floats(max_value=0), st.just(math.nan), st.just(math.inf),
                       st.just(-math.inf), st.text(max_size=3), st.none(), st.booleans()))
def test_a_deadline_that_is_not_a_positive_number_is_refused(value: Any) -> None:
    with pytest.raises(BadInput, match="workflow_task_deadline must be a number of seconds"):
        Engine(":memory:", workflow_task_deadline=value)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "abc", "-0.0"])
def test_worker_refuses_a_bad_deadline_and_creates_nothing(tmp_path: Path, value: str) -> None:
    db = tmp_path / "never.db"
    done = cli("worker", "--db", str(db), f"--workflow-deadline={value}", "--flows", FLOWS)
    assert done.returncode == 2, done.stderr
    assert "--workflow-deadline" in done.stderr and len(done.stderr.splitlines()) == 1
    assert not db.exists()


def stuck_reason(eng: Engine, ident: str) -> str:
    shown = eng.show(ident, history=False)
    return str(shown["stuck_reason"] or "") if shown["stuck"] else ""


def test_code_that_swallows_the_stop_is_held_once_it_yields(make_engine) -> None:  # type: ignore[no-untyped-def]
    """Code that catches the stop is raised at again each deadline; it holds its worker
    until it gives up (a limit of stopping code in-process), then its run is held."""
    eng: Engine = make_engine(flows=[FLOWS], workflow_task_deadline=0.3)
    with eng.worker():
        eng.start("spin_swallowing", 1.5, id="stubborn")
        reason = wait_until(lambda: stuck_reason(eng, "stubborn"), message="held")
        assert "did not yield within 0.3 s" in reason and "runtime.py" in reason
        assert eng.start("quick", 5, id="next").result(timeout=30) == 5
    assert eng.advancer.watch is not None and eng.advancer.watch.stopped >= 1


def work(i: int) -> int:
    return 100_000 * (i % 4)


def test_a_deadline_landing_anywhere_leaves_runs_completed_or_held(make_engine) -> None:  # type: ignore[no-untyped-def]
    """A deadline so short that it strikes at arbitrary points of ordinary workflow code:
    every run either completes or is held with the deadline reason, the dispatcher never
    fails, and with a sane deadline `retry` completes the held ones with the same result."""
    ids = [f"b{i}" for i in range(12)]
    eng: Engine = make_engine(flows=[FLOWS], workflow_task_deadline=0.001)
    with eng.worker() as worker:
        for i, ident in enumerate(ids):
            eng.start("busy_steps", 3, work(i), id=ident)
        wait_until(lambda: all(stuck_reason(eng, i) or
                               eng.show(i, history=False)["status"] == "completed"
                               for i in ids), timeout=60, message="every run settled")
        assert worker.error is None
    held = [i for i in ids if stuck_reason(eng, i)]
    assert held, "steps of 300,000 iterations should overrun a 1 ms deadline"
    for ident in held:
        assert "did not yield within 0.001 s" in stuck_reason(eng, ident)
    patient: Engine = make_engine(flows=[FLOWS])
    for ident in held:
        assert "retr" in patient.retry(ident)
    with patient.worker():
        for i, ident in enumerate(ids):
            expected = 3 * (sum(j * j for j in range(work(i))) % 7) + sum(range(3))
            assert patient.handle(ident).result(timeout=30) == expected
    assert patient.store.check_integrity() == "ok"


def test_observers_see_every_event_on_their_own_thread() -> None:
    seen: list[int] = []
    threads: set[str] = set()
    done = threading.Event()

    def deliver(event: dict[str, Any]) -> None:
        seen.append(event["seq"])
        threads.add(threading.current_thread().name)
        if len(seen) == 100:
            done.set()

    feed = ObserverFeed(deliver)
    for seq in range(100):
        feed.put({"seq": seq})
    assert done.wait(10)
    feed.close()
    assert seen == list(range(100)) and threads == {"onward-observers"}


def test_a_stuck_observer_makes_the_feed_drop_not_block() -> None:
    release = threading.Event()
    feed = ObserverFeed(lambda event: release.wait(), size=3)
    for seq in range(10):
        feed.put({"seq": seq})  # never blocks
    assert 6 <= feed.dropped <= 7  # one may already be in the observer's hands
    release.set()
    feed.close()


@workflow.defn(name="busy_for")
async def busy_for(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


def test_the_stop_never_lands_outside_workflow_code() -> None:
    """A stress test: code that runs about as long as the deadline, again and again, so
    the stop comes at every kind of moment (also as the code ends); engine code after
    each activation never sees it, and every stop holds its activation."""
    watch = DeadlineWatch(0.002)
    rng = random.Random(14)
    held = completed = 0
    try:
        for i in range(300):
            instance = WorkflowInstance(busy_for, WorkflowInfo("w", f"r{i}", "busy_for", 0.0),
                                        watch=watch)
            started = Event(1, "WorkflowStarted", 0.0, {"input": [rng.uniform(0, 0.012)]})
            try:
                instance.activate([started])
                completed += 1
            except WorkflowTaskError as err:
                assert err.kind == "deadline", err
                held += 1
            total = 0
            for j in range(3000):  # engine code: a stop landing here would escape the test
                total += j
            assert asyncio._get_running_loop() is None
    finally:
        watch.close()
    assert held and completed and watch.stopped == held


@pytest.mark.timeout(60)
def test_query_and_replay_of_a_spinning_run_stop_at_the_deadline(make_engine) -> None:  # type: ignore[no-untyped-def]
    """Read-only commands replay workflow code too: a run held for spinning is reported as
    such by ``query`` and ``replay``, within the deadline, instead of hanging them."""
    eng: Engine = make_engine(flows=[FLOWS], workflow_task_deadline=0.3)
    with eng.worker():
        eng.start("spin", id="spinner")
        wait_until(lambda: "deadline" in stuck_reason(eng, "spinner"), timeout=20,
                   message="the spinning run held")
    with pytest.raises(BadInput, match="deadline"):
        eng.query("spinner", "anything")
    [report] = eng.replay(["spinner"])
    assert report["ok"] is False and "deadline" in report["error"], report


def test_the_watchdog_reads_frames_with_the_collector_held_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A collection starting inside ``sys._current_frames()`` deadlocks CPython 3.11
    (python/cpython#106883): the watchdog turns the collector off around the read, and
    back on after it, as it was."""
    import gc
    import sys

    from onward import deadline
    seen: list[bool] = []
    real = sys._current_frames

    def frames() -> dict[int, Any]:
        seen.append(gc.isenabled())
        return real()

    monkeypatch.setattr(sys, "_current_frames", frames)
    assert gc.isenabled()
    where = deadline._where(threading.get_ident())
    assert seen == [False] and gc.isenabled()
    assert where.startswith("test_workflow_deadline.py:")
    gc.disable()
    try:
        deadline._where(threading.get_ident())
        assert seen == [False, False] and not gc.isenabled()  # left off, as it was
    finally:
        gc.enable()
