"""Workflows that set search attributes from their code (the visibility tests run them)."""

from __future__ import annotations

from datetime import UTC, datetime

from onward import workflow


@workflow.defn
async def tagger(amount: float) -> str:
    """Upserts twice around a signal: stage one, then two (and removes ``draft``)."""
    workflow.upsert_search_attributes({"stage": "one", "amount": amount, "draft": True,
                                       "seen": datetime(2026, 1, 2, tzinfo=UTC)})
    await workflow.wait_signal("go")
    workflow.upsert_search_attributes({"stage": "two", "draft": None})
    return "done"


@workflow.defn
async def wrong_type(value: str) -> str:
    """Upserts ``amount`` (a number elsewhere) with whatever it is given."""
    workflow.upsert_search_attributes({"amount": value})
    return "stored"


@workflow.defn
async def reserved() -> str:
    """Tries to set a built-in field from workflow code."""
    try:
        workflow.upsert_search_attributes({"ScheduleId": "mine"})
    except Exception as err:  # noqa: BLE001 - the refusal is the result
        return f"refused: {err}"
    return "accepted"


@workflow.defn
async def approval(assignee: str) -> str:
    """Waits on a person: the run has WaitingOnPerson and TaskAssignee until answered."""
    answer = await workflow.manual_task("approve", assignee=assignee)
    return str(answer)


@workflow.defn
async def renewing(rounds: int) -> int:
    """Continues as new ``rounds`` times; its attributes go along."""
    if rounds > 0:
        workflow.continue_as_new(rounds - 1)
    return rounds
