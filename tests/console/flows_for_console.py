"""Small workflows the console tests drive: a manual task, a failure, a signal, a backoff."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from onward import ApplicationError, RetryPolicy, activity, workflow


@activity.defn(name="console.record")
def record(note: str) -> str:
    """Pretend to write ``note`` somewhere; always works."""
    return f"recorded {note}"


@activity.defn(name="console.charge")
def charge(flag: str, cents: int) -> dict[str, Any]:
    """Charge ``cents``; fails for good until the file ``flag`` exists (the operator's fix)."""
    if not Path(flag).exists():
        raise ApplicationError(f"card declined (no {Path(flag).name})", type="CardDeclined",
                               non_retryable=True)
    return {"charged": cents}


@activity.defn(name="console.flaky")
def flaky(what: str) -> str:
    """Always fails with a retryable error: the run keeps backing off."""
    raise ApplicationError(f"{what} is unreachable", type="Unreachable")


@workflow.defn(name="approval")
async def approval(request: dict[str, Any]) -> dict[str, Any]:
    """Wait for a person to approve (``hours`` to answer, 48 by default), then record it."""
    decision = await workflow.manual_task(
        "approve", assignee=request.get("manager", "alice"),
        instructions=f"Approve {request.get('what', 'this')}", data=request,
        timeout=timedelta(hours=request.get("hours", 48)))
    await workflow.execute_activity("console.record", f"approved: {decision}")
    return {"decision": decision}


@workflow.defn(name="fragile")
async def fragile(flag: str, cents: int) -> dict[str, Any]:
    """One charge that fails non-retryably until the operator fixes things."""
    await workflow.execute_activity("console.record", "charging")
    charged: dict[str, Any] = await workflow.execute_activity(
        "console.charge", flag, cents, retry=RetryPolicy(maximum_attempts=1))
    return charged


@workflow.defn(name="waiter")
async def waiter(name: str) -> Any:
    """Wait for the signal ``go`` and return its payload."""
    payload = await workflow.wait_signal("go")
    return {"name": name, "go": payload}


@workflow.defn(name="backoff")
async def backoff(what: str) -> str:
    """Retry an unreachable service with long pauses between attempts."""
    result: str = await workflow.execute_activity(
        "console.flaky", what, retry=RetryPolicy(initial_interval=timedelta(minutes=5)))
    return result


@workflow.defn(name="console_approval")
class ConsoleApproval:
    """A class workflow with a signal, a query and an update (with a validator)."""

    def __init__(self) -> None:
        self.decision: str | None = None

    @workflow.run
    async def run(self, claim: str) -> str:
        await workflow.wait_condition(lambda: self.decision is not None)
        return f"{claim}: {self.decision}"

    @workflow.signal
    def decide(self, decision: str) -> None:
        self.decision = decision

    @workflow.query
    def status(self) -> str:
        return self.decision or "waiting"

    @workflow.update
    def approve(self, by: str) -> str:
        self.decision = f"approved by {by}"
        return self.decision

    @approve.validator
    def _check(self, by: str) -> None:
        if not by:
            raise ValueError("who approves?")
