"""Workflows with business-day deadlines (tests/unit/test_business_deadline_replay.py)."""

from __future__ import annotations

from typing import Any

from onward import workflow


@workflow.defn(name="approval_deadline")
async def approval_deadline(days: int, tz: str, holidays: Any) -> dict[str, Any]:
    """A manual task due ``days`` business days from now; what the code saw, and the answer."""
    start = workflow.now()
    timeout = workflow.business_days(days, tz=tz, holidays=holidays)
    try:
        answer = await workflow.manual_task("approve", timeout=timeout)
    except TimeoutError:
        answer = "timed out"
    return {"start": start.isoformat(), "seconds": timeout.total_seconds(), "answer": answer}


@workflow.defn(name="deadline_in_no_zone")
async def deadline_in_no_zone() -> None:
    """Names a time zone that does not exist: the workflow task fails, naming ``tz``."""
    await workflow.sleep(workflow.business_days(3, tz="Mars/Olympus"))
