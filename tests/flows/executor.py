"""Workflows and activities for the executor and activity-option tests (test_executor.py).

Loaded in-process, so tests reach the shared objects here (the barrier, the bank) through
``engine.registry.flows[0].module``.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

from onward import ApplicationError, BadInput, RetryPolicy, activity, workflow

GATHERED = 5
BARRIER = threading.Barrier(GATHERED, timeout=15)
"""Every gathered activity waits here until all of them are running at once."""


@activity.defn(name="meet")
def meet(index: int) -> int:
    """Wait until every gathered activity has started: passes only if they overlap."""
    BARRIER.wait()
    return index


@workflow.defn(name="gather_meeting")
async def gather_meeting() -> list[int]:
    """Gather activities that can only finish if they all run side by side.

    A first activity leaves an idle thread behind, and a timer has the dispatcher (not
    that thread) schedule the gathered ones: the pool must still start one per attempt.
    """
    await workflow.execute_activity("quick", 0)
    await workflow.sleep(0.01)
    return list(await asyncio.gather(*(
        workflow.execute_activity("meet", i, retry=RetryPolicy(maximum_attempts=1))
        for i in range(GATHERED))))


@activity.defn(name="always_down")
def always_down() -> None:
    """A provider that never answers (a bank outage that lasts for days)."""
    raise RuntimeError("the bank is down")


@workflow.defn(name="outage")
async def outage() -> None:
    """Retry an always-failing activity forever, under the default retry policy."""
    await workflow.execute_activity("always_down", start_to_close_timeout=timedelta(days=1))


@activity.defn(name="quick")
def quick(value: int) -> int:
    return value + 1


@workflow.defn(name="quick_one")
async def quick_one(value: int) -> int:
    """One quick activity: proves a worker still makes progress."""
    return int(await workflow.execute_activity(
        "quick", value, start_to_close_timeout=timedelta(days=1)))


COUNTS: dict[str, int] = {}


@activity.defn(name="counted")
def counted(label: str) -> str:
    COUNTS[label] = COUNTS.get(label, 0) + 1
    return label


async def _call(call: str, kwargs: dict[str, Any]) -> None:
    """Make one authoring call with ``kwargs`` (each built fresh inside the workflow)."""
    if call == "execute_activity":
        await workflow.execute_activity("counted", "bad", **kwargs)
    elif call == "RetryPolicy":
        await workflow.execute_activity("counted", "bad", retry=RetryPolicy(**kwargs))
    elif call == "sleep":
        await workflow.sleep(kwargs["duration"])
    elif call == "wait_signal":
        await workflow.wait_signal("never", **kwargs)
    elif call == "manual_task":
        await workflow.manual_task("never", **kwargs)
    else:
        raise ValueError(call)


@workflow.defn(name="bad_option")
async def bad_option(call: str, kwargs: dict[str, Any]) -> str:
    """Make a call with a bad option; the refusal's message (the call must not go ahead)."""
    try:
        await _call(call, kwargs)
    except BadInput as err:
        return str(err)
    raise ApplicationError(f"{call}({kwargs}) was accepted")


@workflow.defn(name="negative_timeout")
async def negative_timeout() -> None:
    """The reported case, not caught: a negative start-to-close timeout."""
    await workflow.execute_activity("counted", "bad", start_to_close_timeout=-1)


class Bank:
    """An activity provider written as a class: its activities are bound methods."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.deposits: list[int] = []

    @activity.defn(name="flows_bank.deposit")
    def deposit(self, cents: int) -> str:
        self.deposits.append(cents)
        return f"{self.name} took {cents}"

    @activity.defn(name="flows_bank.audit")
    async def audit(self) -> int:
        return sum(self.deposits)


BANK = Bank("flows bank")
deposit = BANK.deposit
audit = BANK.audit


@workflow.defn(name="bank_visit")
async def bank_visit(cents: int) -> list[Any]:
    """Deposit through a bound-method activity (by name and by the method), then audit."""
    one = await workflow.execute_activity("flows_bank.deposit", cents,
                                          retry=RetryPolicy(maximum_attempts=1))
    two = await workflow.execute_activity(BANK.deposit, cents + 1,
                                          retry=RetryPolicy(maximum_attempts=1))
    total = await workflow.execute_activity(audit, retry=RetryPolicy(maximum_attempts=1))
    return [one, two, total]
