"""Running attempts: side by side up to the worker's concurrency, never after the engine
gave up on them; retries that go on for ever; options refused where they are passed; and
activities that are bound methods."""

from __future__ import annotations

import asyncio
import math
import queue
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onward import BadInput, Engine, RetryPolicy, workflow
from onward.activity import ActivityDefinition
from onward.attempts import Attempt, lease_columns
from onward.executor import ActivityExecutor, Outcome
from onward.retry import MAX_SECONDS, duration
from tests.helpers import wait_until

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "executor.py")


@pytest.fixture
def eng(make_engine, any_db: str | Path) -> Engine:  # type: ignore[no-untyped-def]
    """An engine on SQLite, then on PostgreSQL."""
    return make_engine(db=any_db, flows=[FLOWS])


def flows_module(eng: Engine) -> Any:
    return eng.registry.flows[0].module


# -- item 6: gathered activities run side by side -------------------------------------------

def test_gathered_sync_activities_run_side_by_side(eng: Engine) -> None:
    """Five gathered activities each wait until all five are running: they must overlap."""
    with eng.worker(concurrency=8):
        result = eng.start("gather_meeting", id="meet").result(timeout=60)
    assert result == [0, 1, 2, 3, 4]
    assert not flows_module(eng).BARRIER.broken


def _attempt(ref: int) -> Attempt:
    return Attempt("run-1", ref, f"job{ref}", [], {}, 1, None, "wf", "")


def test_an_abandoned_attempt_that_never_got_a_thread_never_starts() -> None:
    """An attempt given up on while it waited for a thread is dropped, not started late."""
    release = threading.Event()
    started: list[int] = []

    def job(ref: int) -> Any:
        def run() -> int:
            started.append(ref)
            if ref < 10:  # the attempts that hold every thread
                release.wait(30)
            return ref
        return run

    outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    definitions = {f"job{ref}": ActivityDefinition(f"job{ref}", job(ref), False)
                   for ref in (1, 2, 3, 4, 5, 99, 100)}
    executor = ActivityExecutor(1, definitions.get, outcomes, lambda: None,
                                lambda attempt, details: None)
    try:
        holders = [1, 2, 3, 4, 5]
        for ref in holders:
            executor.submit(_attempt(ref))
        wait_until(lambda: started, 10, "a holder to start")
        executor.submit(_attempt(99))  # waits: every thread the pool may have is busy
        executor.submit(_attempt(100))  # queued behind it
        assert 99 not in started
        executor.abandon("run-1", 99)  # timed out (or fenced, or cancelled) while queued
        release.set()
        finished = wait_for_outcomes(outcomes, {100}, "the attempt queued after it to finish")
        assert 99 not in started
        assert 99 not in finished
        assert sorted(started) == [*holders, 100]
    finally:
        release.set()
        executor.shutdown(wait=True)


def test_threads_stuck_in_abandoned_attempts_do_not_hold_up_new_ones() -> None:
    """Attempts that ignore being given up on keep their threads; the worker claims others
    in their place (it no longer counts them), and those start at once, not after them."""
    release = threading.Event()
    started: list[int] = []

    def job(ref: int) -> Any:
        def run() -> int:
            started.append(ref)
            if ref < 10:
                release.wait(30)  # a hung call that never checks for cancellation
            return ref
        return run

    outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    definitions = {f"job{ref}": ActivityDefinition(f"job{ref}", job(ref), False)
                   for ref in (1, 2, 3, 4, 11, 12)}
    executor = ActivityExecutor(1, definitions.get, outcomes, lambda: None,
                                lambda attempt, details: None)
    try:
        for ref in (1, 2):  # every thread the pool may have (concurrency 1: two)
            executor.submit(_attempt(ref))
        wait_until(lambda: len(started) == 2, 10, "the first attempts to start")
        for ref in (1, 2):
            executor.abandon("run-1", ref)  # timed out: the worker stops counting them
        assert executor.busy == 0
        executor.submit(_attempt(11))
        executor.submit(_attempt(12))
        wait_for_outcomes(outcomes, {11, 12}, "the attempts claimed in their place to run")
        assert sorted(started) == [1, 2, 11, 12]
    finally:
        release.set()
        executor.shutdown(wait=True)


def test_an_abandoned_async_attempt_that_never_reached_the_loop_never_starts() -> None:
    """The same for async attempts: one given up on while the loop was busy never starts."""
    release = threading.Event()
    started: list[int] = []

    def job(ref: int) -> Any:
        async def run() -> int:
            started.append(ref)
            if ref == 1:
                release.wait(30)  # holds the activity loop (an async activity that blocks)
            return ref
        return run

    outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    definitions = {f"job{ref}": ActivityDefinition(f"job{ref}", job(ref), True)
                   for ref in (1, 99, 100)}
    executor = ActivityExecutor(1, definitions.get, outcomes, lambda: None,
                                lambda attempt, details: None)
    try:
        executor.submit(_attempt(1))
        wait_until(lambda: started, 10, "the blocking attempt to start")
        executor.submit(_attempt(99))
        executor.submit(_attempt(100))
        executor.abandon("run-1", 99)
        release.set()
        finished = wait_for_outcomes(outcomes, {100}, "the attempt submitted after it to finish")
        assert started == [1, 100]
        assert 99 not in finished
    finally:
        release.set()
        executor.shutdown(wait=True)


def wait_for_outcomes(outcomes: queue.SimpleQueue[Outcome], refs: set[int],
                      what: str) -> list[int]:
    """The refs of every outcome reported until those of ``refs`` are all in (bounded)."""
    finished: list[int] = []

    def arrived() -> bool:
        while not outcomes.empty():
            finished.append(outcomes.get().attempt.ref)
        return refs <= set(finished)

    wait_until(arrived, 10, what)
    return finished


# -- item 11: retries go on for ever --------------------------------------------------------

class FastClock:
    """Wall-clock time that runs ``speed`` times faster: days of retries pass in seconds."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.base = time.time()
        self.origin = time.monotonic()

    def __call__(self) -> float:
        return self.base + (time.monotonic() - self.origin) * self.speed


def _attempt_of(eng: Engine, ident: str) -> int:
    with eng.store.read() as tx:
        value = tx.scalar("SELECT a.attempt FROM activity_tasks a JOIN runs r ON "
                          "r.run_id = a.run_id WHERE r.workflow_id = ?", (ident,))
    return int(value or 0)


def test_retries_past_attempt_2000_keep_the_worker_healthy(make_engine, db_path: Path
                                                            ) -> None:  # type: ignore[no-untyped-def]
    """A default-policy retry well past the point where 2**(attempt-1) overflows a float
    (attempt 1025, about 28 hours of outage): the worker goes on, other runs progress,
    and the worker stops cleanly."""
    clock = FastClock(speed=200_000.0)  # the 100 s maximum interval passes in 0.5 ms
    eng = make_engine(db=db_path, flows=[FLOWS], clock=clock, synchronous="OFF")
    with eng.worker(concurrency=4, poll_interval=0.002) as worker:
        eng.start("outage", id="outage")
        wait_until(lambda: _attempt_of(eng, "outage") >= 2000, 90,
                   "the failing activity to reach attempt 2000")
        assert worker.error is None
        assert eng.start("quick_one", 41, id="after").result(timeout=30) == 42
        failures = [e for e in eng.show("outage")["history"]
                    if e["type"] == "ActivityAttemptFailed"][-3:]
        assert all(e["attrs"]["next_retry"] for e in failures)
    assert eng.show("outage")["status"] == "running"


@given(initial=st.floats(min_value=1e-6, max_value=1e7),
       coefficient=st.floats(min_value=1.0, max_value=1e6),
       ceiling_factor=st.one_of(st.none(), st.floats(min_value=1.0, max_value=300.0)),
       attempts=st.lists(st.integers(min_value=1, max_value=10**30), min_size=2, max_size=6))
@settings(max_examples=300, deadline=None)
def test_interval_after_is_finite_bounded_and_never_shrinks(
        initial: float, coefficient: float, ceiling_factor: float | None,
        attempts: list[int]) -> None:
    ceiling = None if ceiling_factor is None else initial * ceiling_factor
    policy = RetryPolicy(initial_interval=initial, backoff_coefficient=coefficient,
                         maximum_interval=ceiling)
    top = initial * 100 if ceiling is None else ceiling
    intervals = [policy.interval_after(n) for n in sorted(attempts)]
    for value in intervals:
        assert math.isfinite(value) and 0 <= value <= top
    assert intervals == sorted(intervals)
    assert policy.interval_after(1) == pytest.approx(min(initial, top))
    assert policy.interval_after(10**30) == pytest.approx(initial if coefficient == 1 else top)


def test_a_policy_stored_before_policies_were_checked_still_reads() -> None:
    """Options stored by an older version (a negative interval, say) never stop the engine:
    each bad field reads as its default, bad timeouts as none or the default."""
    policy = RetryPolicy.from_json({"initial_interval": -1, "backoff_coefficient": 0.5,
                                    "maximum_interval": float("nan"), "maximum_attempts": 3,
                                    "non_retryable_error_types": ["Fatal"]})
    assert policy == RetryPolicy(maximum_attempts=3, non_retryable_error_types=("Fatal",))
    assert lease_columns({"start_to_close": -5, "heartbeat": -1}, 1000.0) == (1300.0, None)
    assert lease_columns({"start_to_close": 5, "heartbeat": 2}, 1000.0) == (1005.0, 1002.0)


# -- item 13: bad options are refused where they are passed ---------------------------------

# Every duration (and retry option) of the authoring API: (call, parameter, what it takes).
POSITIVE, NON_NEGATIVE, COEFFICIENT, COUNT = "positive", "non-negative", "coefficient", "count"
PARAMETERS = [
    ("execute_activity", "start_to_close_timeout", POSITIVE),
    ("execute_activity", "schedule_to_close_timeout", POSITIVE),
    ("execute_activity", "heartbeat_timeout", POSITIVE),
    ("RetryPolicy", "initial_interval", POSITIVE),
    ("RetryPolicy", "maximum_interval", POSITIVE),
    ("RetryPolicy", "backoff_coefficient", COEFFICIENT),
    ("RetryPolicy", "maximum_attempts", COUNT),
    ("sleep", "duration", NON_NEGATIVE),
    ("wait_signal", "timeout", POSITIVE),
    ("manual_task", "timeout", POSITIVE),
]

WRONG_TYPES = st.sampled_from(["5", b"5", [5], {"s": 5}, True, object(), 1j])
NOT_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NEGATIVE = st.one_of(st.floats(max_value=-1e-9, allow_nan=False),
                     st.integers(max_value=-1),
                     st.integers(min_value=1, max_value=10**6).map(
                         lambda s: timedelta(seconds=-s)))
TOO_LONG = st.sampled_from([1e12, 10**15, timedelta.max])


def bad_values(kind: str) -> st.SearchStrategy[Any]:
    """Values a parameter of ``kind`` must refuse."""
    common = st.one_of(WRONG_TYPES, NOT_FINITE, NEGATIVE)
    if kind == POSITIVE:
        return st.one_of(common, st.sampled_from([0, 0.0, timedelta(0)]), TOO_LONG)
    if kind == NON_NEGATIVE:
        return st.one_of(common, TOO_LONG)
    if kind == COEFFICIENT:
        return st.one_of(WRONG_TYPES.filter(lambda v: not isinstance(v, list)), NOT_FINITE,
                         st.floats(max_value=0.999, allow_nan=False, allow_infinity=False),
                         st.just(timedelta(seconds=2)))
    return st.one_of(WRONG_TYPES, st.integers(max_value=-1), st.sampled_from([1.5, 2.0]))


def make_call(call: str, parameter: str, value: Any) -> None:
    """Make ``call`` with ``parameter=value`` (outside a workflow: refused before anything)."""
    if call == "RetryPolicy":
        RetryPolicy(**{parameter: value})
        return
    function = getattr(workflow, call)
    if call == "execute_activity":
        coroutine = function("counted", "x", **{parameter: value})
    elif call == "sleep":
        coroutine = function(value)
    else:  # wait_signal, manual_task
        coroutine = function("never", timeout=value)
    asyncio.run(coroutine)


@pytest.mark.parametrize(("call", "parameter", "kind"), PARAMETERS,
                         ids=[f"{c}-{p}" for c, p, _ in PARAMETERS])
@given(data=st.data())
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_bad_option_is_refused_naming_its_parameter(
        call: str, parameter: str, kind: str, data: st.DataObject) -> None:
    value = data.draw(bad_values(kind), label=parameter)
    with pytest.raises(BadInput) as refused:
        make_call(call, parameter, value)
    message = str(refused.value)
    assert parameter in message and call in message
    assert "\n" not in message


@given(value=st.one_of(st.floats(min_value=1e-6, max_value=MAX_SECONDS),
                       st.integers(min_value=1, max_value=int(MAX_SECONDS)),
                       st.timedeltas(min_value=timedelta(microseconds=1),
                                     max_value=timedelta(seconds=MAX_SECONDS))))
@settings(max_examples=200, deadline=None)
def test_good_durations_are_accepted_as_given(value: float | int | timedelta) -> None:
    secs = value.total_seconds() if isinstance(value, timedelta) else float(value)
    assert duration(value, "timeout", "wait_signal") == secs
    policy = RetryPolicy(initial_interval=value, maximum_interval=value)
    assert policy.interval_after(3) == pytest.approx(secs)


def test_a_maximum_interval_below_the_initial_one_is_refused() -> None:
    with pytest.raises(BadInput, match="maximum_interval"):
        RetryPolicy(initial_interval=10, maximum_interval=5)


@pytest.mark.parametrize(("call", "kwargs", "parameter"), [
    ("execute_activity", {"start_to_close_timeout": -5}, "start_to_close_timeout"),
    ("execute_activity", {"heartbeat_timeout": -1}, "heartbeat_timeout"),
    ("execute_activity", {"schedule_to_close_timeout": 0}, "schedule_to_close_timeout"),
    ("RetryPolicy", {"backoff_coefficient": 0.5}, "backoff_coefficient"),
    ("sleep", {"duration": -3}, "duration"),
    ("wait_signal", {"timeout": -1}, "timeout"),
    ("manual_task", {"timeout": 0}, "timeout"),
])
def test_a_bad_option_fails_its_await_in_the_workflow_and_runs_nothing(
        eng: Engine, call: str, kwargs: dict[str, Any], parameter: str) -> None:
    """The workflow sees the refusal at its await (and can catch it); nothing was scheduled."""
    with eng.worker():
        message = eng.start("bad_option", call, kwargs, id="bad").result(timeout=30)
    assert parameter in message and call in message
    assert flows_module(eng).COUNTS.get("bad", 0) == 0
    kinds = {e["type"] for e in eng.show("bad")["history"]}
    assert kinds == {"WorkflowStarted", "WorkflowCompleted"}


def test_an_uncaught_bad_option_holds_the_run_with_a_reason_naming_it(eng: Engine) -> None:
    """Uncaught, the refusal holds the run (a bug in workflow code: fix and reload) and the
    activity never runs, instead of timing out at once attempt after attempt."""
    with eng.worker():
        eng.start("negative_timeout", id="neg")
        wait_until(lambda: eng.show("neg")["stuck"], 30, "the run to be held")
    shown = eng.show("neg")
    assert "execute_activity(start_to_close_timeout=-1)" in shown["stuck_reason"]
    assert flows_module(eng).COUNTS.get("bad", 0) == 0
    assert "ActivityScheduled" not in {e["type"] for e in shown["history"]}


# -- item 14: bound-method activities -------------------------------------------------------

def test_bound_method_activities_in_a_flows_module_get_their_self(eng: Engine) -> None:
    with eng.worker():
        result = eng.start("bank_visit", 100, id="visit").result(timeout=30)
    assert result == ["flows bank took 100", "flows bank took 101", 201]
    assert flows_module(eng).BANK.deposits == [100, 101]


PROVIDER = textwrap.dedent("""
    from onward import activity, workflow
    from onward.hookspecs import hookimpl


    class Ledger:
        def __init__(self, owner):
            self.owner = owner
            self.entries = []

        @activity.defn(name="ledger.deposit")
        def deposit(self, cents):
            self.entries.append(cents)
            return f"{self.owner}: {sum(self.entries)}"

        @activity.defn(name="ledger.count")
        async def count(self):
            return len(self.entries)


    LEDGER = Ledger("plugin ledger")


    @workflow.defn(name="ledger_visit")
    async def ledger_visit(cents):
        first = await workflow.execute_activity("ledger.deposit", cents)
        second = await workflow.execute_activity("ledger.deposit", cents)
        return [first, second, await workflow.execute_activity("ledger.count")]


    @hookimpl
    def onward_activities():
        return [LEDGER.deposit, LEDGER.count]


    @hookimpl
    def onward_workflows():
        return [ledger_visit]
""")


def test_bound_method_activities_from_a_plugin_get_their_self(make_engine, tmp_path: Path
                                                              ) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "providers"
    folder.mkdir()
    (folder / "ledger.py").write_text(PROVIDER)
    eng = make_engine(plugins=[folder])
    with eng.worker():
        result = eng.start("ledger_visit", 7, id="ledger").result(timeout=30)
    assert result == ["plugin ledger: 7", "plugin ledger: 14", 2]
    failed = [e for e in eng.show("ledger")["history"] if e["type"] == "ActivityAttemptFailed"]
    assert failed == []
