"""Workflows only the benchmarks use (loaded with ``--flows bench/flows.py``)."""

from __future__ import annotations

from onward import activity, workflow


@activity.defn(name="bench_step")
def bench_step(i: int) -> int:
    """A trivial durable step."""
    return i


@workflow.defn(name="long_history")
async def long_history(n: int) -> int:
    """``n`` activities one after another: a history of about ``2 n`` events."""
    total = 0
    for i in range(n):
        total += await workflow.execute_activity("bench_step", i)
    return total


@activity.defn(name="plain_step")
def plain_step(label: str, value: int) -> int:
    """The benchmarks' durable step: no test hooks, like the DBOS step it is compared with."""
    return value + 1


@workflow.defn(name="plain_three_steps")
async def plain_three_steps(start: int) -> int:
    """Three activities in a row (the throughput sections' workflow)."""
    a = await workflow.execute_activity("plain_step", "a", start)
    b = await workflow.execute_activity("plain_step", "b", a)
    return await workflow.execute_activity("plain_step", "c", b)


@workflow.defn(name="bench_updatable")
class BenchUpdatable:
    """Waits until told to stop; each ``bump`` update adds one and returns the count."""

    def __init__(self) -> None:
        self.count = 0
        self.stop = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.stop)
        return self.count

    @workflow.update
    def bump(self) -> int:
        self.count += 1
        return self.count

    @workflow.signal
    def finish(self) -> None:
        self.stop = True
