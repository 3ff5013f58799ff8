"""Workflows only the benchmarks use (loaded with ``--flows bench/flows.py``)."""

from __future__ import annotations

from engine import activity, workflow


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
