"""The asyncio client (issue 16, item 6): each ``*_async`` call against its sync twin, a
loop that never stalls under 200 concurrent runs, waits woken from other processes and
engines, and cancelled waits that leave the run alone and no waiter behind."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from onward import BadInput, Engine, NotFound, RunStillOpen, WorkflowFailed
from onward.aio import AsyncClient
from onward.errors import OnwardError, StoreError, UnknownWorkflow
from onward.handle import RunHandle
from tests.helpers import WorkerProcess, env_for, wait_until

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")


@pytest.fixture
def eng(make_engine, any_db: str | Path) -> Engine:  # type: ignore[no-untyped-def]
    return make_engine(db=any_db, flows=[FLOWS])


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run one test body on a fresh event loop."""
    return asyncio.run(main())


async def until(predicate: Callable[[], Any], message: str) -> Any:
    """``wait_until`` on a thread, so the loop goes on while it polls."""
    return await asyncio.to_thread(wait_until, predicate, 20.0, message)


def sync_outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "returned", call()
    except OnwardError as err:
        return type(err).__name__, (str(err), getattr(err, "status", None),
                                    getattr(err, "error", None))


async def async_outcome(call: Awaitable[Any]) -> tuple[str, Any]:
    try:
        return "returned", await call
    except OnwardError as err:
        return type(err).__name__, (str(err), getattr(err, "status", None),
                                    getattr(err, "error", None))


# -- the same calls --------------------------------------------------------------------------

def test_each_async_twin_takes_its_sync_twins_parameters() -> None:
    twins = [name for name in vars(AsyncClient) if name.endswith("_async")]
    assert {"start_async", "signal_async", "query_async", "cancel_async", "terminate_async",
            "show_async", "list_async", "complete_task_async"} <= set(twins)
    for name in [*twins, "RunHandle.result_async", "RunHandle.status_async"]:
        owner, name = (RunHandle, name.split(".")[1]) if "." in name else (Engine, name)
        mine, theirs = getattr(owner, name), getattr(owner, name.removesuffix("_async"))
        assert inspect.iscoroutinefunction(mine), name
        assert inspect.signature(mine).parameters == inspect.signature(theirs).parameters, name
        assert mine.__doc__, name


def test_reads_answer_as_their_sync_twins(eng: Engine) -> None:
    async def main() -> None:
        with eng.worker():
            done = await eng.start_async("three_steps", 1, id="done")
            assert await done.result_async(timeout=20) == 4 == done.result(timeout=0)
            waiting = await eng.start_async("signals", 2, id="waiting")
            await eng.signal_async("waiting", "item", {"n": 1})
            await until(lambda: eng.query("waiting", "received"), "the signal handled")
        assert await eng.show_async("done") == eng.show("done")
        assert await eng.show_async("waiting", history=False) == eng.show("waiting",
                                                                          history=False)
        assert await eng.list_async() == eng.list()
        assert await eng.list_async("running", limit=5) == eng.list("running", limit=5)
        assert await eng.query_async("waiting", "received") == [{"n": 1}]
        assert await waiting.status_async() == waiting.status() == "running"
    run(main)


def test_writes_do_what_their_sync_twins_do(eng: Engine) -> None:
    async def main() -> None:
        with eng.worker():
            again = await eng.start_async("three_steps", 1, id="done")
            same = await eng.start_async("three_steps", 5, id="done")
            assert again.created and not same.created and same.run_id == again.run_id
            assert await same.result_async(timeout=20) == 4

            await eng.start_async("signals", 1, id="sig")
            await eng.signal_async("sig", "item", "hello")
            assert await eng.handle("sig").result_async(timeout=20) == ["hello"]

            await eng.start_async("saga", id="saga")
            assert await eng.cancel_async("saga") == "asked run saga to cancel"
            with pytest.raises(WorkflowFailed) as failed:
                await eng.handle("saga").result_async(timeout=20)
            assert failed.value.status == "canceled"

            await eng.start_async("signals", 1, id="term")
            await eng.terminate_async("term", "enough")
            with pytest.raises(WorkflowFailed, match="terminated: enough"):
                await eng.handle("term").result_async(timeout=20)

            task_run = await eng.start_async("approval", id="task")
            task = (await until(eng.tasks, "the manual task"))[0]
            await eng.complete_task_async(task["task_id"], {"ok": True}, by="alice")
            assert await task_run.result_async(timeout=20) == {"ok": True}

            failing = await eng.start_async("approval", id="rejected")
            task = (await until(eng.tasks, "the second manual task"))[0]
            await eng.fail_task_async(task["task_id"], "no", by="bob")
            with pytest.raises(WorkflowFailed):
                await failing.result_async(timeout=20)
    run(main)


def test_bad_input_and_failures_raise_as_in_the_sync_twins(eng: Engine) -> None:
    with eng.worker():
        eng.start("refused", "non_retryable", id="refused")
        eng.start("three_steps", 1, id="closed").result(timeout=20)
        wait_until(lambda: eng.show("refused", history=False)["status"] == "failed",
                   message="the refused run failing")
    eng.start("signals", 1, id="open")
    pairs: list[tuple[Callable[[], Any], Callable[[], Awaitable[Any]]]] = [
        (lambda: eng.show("nope"), lambda: eng.show_async("nope")),
        (lambda: eng.signal("nope", "item"), lambda: eng.signal_async("nope", "item")),
        (lambda: eng.signal("open", ""), lambda: eng.signal_async("open", "")),
        (lambda: eng.query("nope", "received"), lambda: eng.query_async("nope", "received")),
        (lambda: eng.cancel("closed"), lambda: eng.cancel_async("closed")),
        (lambda: eng.terminate("nope"), lambda: eng.terminate_async("nope")),
        (lambda: eng.complete_task("nope"), lambda: eng.complete_task_async("nope")),
        (lambda: eng.start("three_steps", id=""), lambda: eng.start_async("three_steps", id="")),
        (lambda: eng.start("no_such_flow"), lambda: eng.start_async("no_such_flow")),
        (lambda: eng.start("three_steps", {1, 2}), lambda: eng.start_async("three_steps", {1, 2})),
        (lambda: eng.list("no-such-status"), lambda: eng.list_async("no-such-status")),
        (lambda: RunHandle(eng, "nope", "r").result(), RunHandle(eng, "nope", "r").result_async),
        (lambda: eng.handle("refused").result(), eng.handle("refused").result_async),
        (lambda: eng.handle("open").result(timeout=0),
         lambda: eng.handle("open").result_async(timeout=0)),
    ]

    async def main() -> list[tuple[str, Any]]:
        return [await async_outcome(make()) for _, make in pairs]

    expected = [sync_outcome(call) for call, _ in pairs]
    assert run(main) == expected
    kinds = [kind for kind, _ in expected]
    for error in (NotFound, BadInput, UnknownWorkflow, WorkflowFailed, RunStillOpen):
        assert error.__name__ in kinds  # each kind of failure was compared
    assert "returned" not in kinds
    assert eng.show("open", history=False)["status"] == "running"


# -- never blocking the loop -------------------------------------------------------------------

class ControlTicker(threading.Thread):
    """A plain thread ticking every 5 ms: it stalls too when the whole process does
    (descheduled on a loaded host), but not when only the event loop is blocked."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.ticks: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            self.ticks.append(time.monotonic())

    def process_stalled(self, start: float, end: float) -> bool:
        """Whether this thread, too, missed most of ``start``..``end``."""
        inside = [start, *(t for t in self.ticks if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(inside)) > (end - start) / 2


def test_200_concurrent_starts_and_results_never_stall_the_loop(eng: Engine) -> None:
    gaps: list[tuple[float, float]] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append((last, now))
            last = now

    async def one(n: int) -> Any:
        started = await eng.start_async("three_steps", n)
        return await started.result_async()  # (no timeout: a last look hides lost wake-ups)

    async def main() -> list[Any]:
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        try:
            async with asyncio.timeout(60):
                return list(await asyncio.gather(*(one(n) for n in range(200))))
        finally:
            stop.set()
            await ticking

    control = ControlTicker()
    control.start()
    try:
        with eng.worker(concurrency=8):  # (started and stopped off the loop: both block)
            assert run(main) == [n + 3 for n in range(200)]
    finally:
        control.done.set()
        control.join()
    assert len(gaps) > 5
    longest = max(end - start for start, end in gaps)
    print(f"longest tick gap {longest * 1000:.0f} ms")  # (pytest -s shows it)
    blocked = [f"{(end - start) * 1000:.0f} ms" for start, end in gaps
               if end - start >= 0.1 and not control.process_stalled(start, end)]
    assert blocked == [], "the event loop alone stalled (a plain thread kept ticking)"
    assert eng.aio.waiters.count() == 0


# -- waking -----------------------------------------------------------------------------------

def test_result_async_wakes_when_a_worker_process_closes_the_run(
        make_engine, any_db: str | Path) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(db=any_db, flows=[FLOWS])

    async def main() -> Any:
        handle = await eng.start_async("three_steps", 10, id="remote")
        waiting = asyncio.create_task(handle.result_async())
        await until(lambda: eng.aio.waiters.checks and eng.aio.waiters.count() == 1,
                    "the wait registered and its first look made")
        assert not waiting.done()
        with WorkerProcess(any_db, flows=[FLOWS], env=env_for()):
            async with asyncio.timeout(60):  # without a wake-up this fails, never passes
                return await waiting

    assert run(main) == 13
    assert eng.aio.waiters.count() == 0


def test_result_async_wakes_when_another_engine_closes_the_run(
        make_engine, any_db: str | Path) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(db=any_db, flows=[FLOWS])
    other = make_engine(db=any_db, flows=[FLOWS])

    async def main() -> None:
        handle = await eng.start_async("signals", 1, id="elsewhere")
        waiting = asyncio.create_task(handle.result_async())
        await until(lambda: eng.aio.waiters.checks and eng.aio.waiters.count() == 1,
                    "the wait registered")
        other.terminate("elsewhere", "from the other engine")
        async with asyncio.timeout(30):
            with pytest.raises(WorkflowFailed, match="from the other engine"):
                await waiting

    run(main)


# -- giving up --------------------------------------------------------------------------------

def test_a_cancelled_or_timed_out_wait_leaves_the_run_running_and_no_waiter(
        eng: Engine) -> None:
    async def main() -> None:
        with eng.worker():
            handle = await eng.start_async("signals", 1, id="patient")
            waiting = asyncio.create_task(handle.result_async())
            await until(lambda: eng.aio.waiters.count() == 1, "the wait registered")
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert eng.aio.waiters.count() == 0

            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await handle.result_async()
            assert eng.aio.waiters.count() == 0
            with pytest.raises(RunStillOpen, match="still running"):
                await handle.result_async(timeout=0.05)
            assert eng.aio.waiters.count() == 0

            shown = await eng.show_async("patient")
            assert shown["status"] == "running"
            assert not any("Cancel" in e["type"] for e in shown["history"])
            await eng.signal_async("patient", "item", "still here")
            assert await handle.result_async(timeout=20) == ["still here"]
    run(main)


def test_close_ends_waits_and_stops_the_async_threads(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "onward.db", flows=[FLOWS])
    try:
        async def main() -> None:
            handle = await eng.start_async("signals", 1, id="orphan")
            waiting = asyncio.create_task(handle.result_async())
            await until(lambda: eng.aio.waiters.count() == 1, "the wait registered")
            assert [t for t in threading.enumerate() if t.name.startswith("onward-aio")]
            eng.close()
            with pytest.raises(StoreError, match="engine was closed while waiting"):
                await waiting
            with pytest.raises(StoreError, match="engine is closed"):
                await eng.show_async("orphan")
        run(main)
    finally:
        eng.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("onward-aio")]
