"""Workflows for the tests of every write path that creates runs, and of safe repairs.

Activities append one line per execution to ``$ONWARD_TEST_LOG`` (kind, idempotency key,
label), so a test can count how often each really ran, whichever process ran it.
"""

from __future__ import annotations

import json
import os

from onward import ActivityError, ApplicationError, RetryPolicy, activity, workflow
from onward.errors import ChildWorkflowError

ONCE = RetryPolicy(maximum_attempts=1)


def _log(kind: str, **extra: object) -> None:
    path = os.environ.get("ONWARD_TEST_LOG")
    if not path:
        return
    line = json.dumps({"kind": kind, "key": activity.info().idempotency_key,
                       "pid": os.getpid(), **extra}) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


@activity.defn(name="race.step")
def race_step(label: str) -> str:
    """One logged execution."""
    _log("race.step", label=label)
    return label


@activity.defn(name="race.fail")
def race_fail(label: str) -> None:
    """Logged, then fails for good."""
    _log("race.fail", label=label)
    raise ApplicationError(f"{label} failed", type="Refused", non_retryable=True)


@workflow.defn(name="two_steps")
async def two_steps(label: str) -> list[str]:
    """Two logged activities."""
    first = await workflow.execute_activity("race.step", f"{label}:1")
    second = await workflow.execute_activity("race.step", f"{label}:2")
    return [first, second]


@workflow.defn(name="fails_at_once")
async def fails_at_once() -> None:
    """Fails in its first workflow task, having done nothing."""
    raise ApplicationError("failed on purpose", non_retryable=True)


@workflow.defn(name="waits_for_go")
async def waits_for_go() -> str:
    """Stays open until signalled ``go``."""
    await workflow.wait_signal("go")
    return "went"


@workflow.defn(name="claims_child")
async def claims_child(child_id: str) -> str:
    """Starts a child under a fixed id; says whether it got it."""
    try:
        return str(await workflow.execute_child("waits_for_go", id=child_id))
    except ChildWorkflowError as err:
        return f"refused: {err}"


@workflow.defn(name="quick_child")
async def quick_child(label: str) -> str:
    """A child that runs one logged step."""
    return str(await workflow.execute_activity("race.step", f"child:{label}"))


@workflow.defn(name="parent_of_one")
async def parent_of_one(child_id: str | None, rounds: int = 0) -> str:
    """Runs one child (default or fixed id), then continues as new ``rounds`` times."""
    label = f"{workflow.info().run_id}"
    got = await workflow.execute_child("quick_child", label, id=child_id)
    if rounds > 0:
        workflow.continue_as_new(child_id, rounds - 1)
    return str(got)


@workflow.defn(name="parent_then_fail")
async def parent_then_fail(child_id: str | None) -> str:
    """Runs one child, then a step that fails: retry/reset cut before the failure."""
    got = await workflow.execute_child("quick_child", "p", id=child_id)
    await workflow.execute_activity("race.fail", "after-child", retry=ONCE)
    return str(got)


@workflow.defn(name="counts_down")
async def counts_down(n: int) -> int:
    """Continues as new ``n`` times, then completes."""
    if n > 0:
        workflow.continue_as_new(n - 1)
    return n


@workflow.defn(name="small_saga")
async def small_saga(order: str) -> str:
    """Charge, ship (fails for good), refund on failure: the shape of the pizza saga."""
    await workflow.execute_activity("race.step", f"{order}:charge")
    try:
        await workflow.execute_activity("race.fail", f"{order}:ship", retry=ONCE)
    except ActivityError:
        await workflow.execute_activity("race.step", f"{order}:refund")
        raise
    return "shipped"
