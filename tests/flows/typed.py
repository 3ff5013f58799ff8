"""Typed payloads: a workflow and activities that take and return dataclasses.

The activities append one line per execution to ``$ONWARD_TEST_LOG`` saying the types they
received, so a test can see that a real dataclass (not a dict) reached the activity in
a worker process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from uuid import UUID

from onward import activity, workflow


class Currency(Enum):
    EUR = "EUR"
    USD = "USD"


@dataclass
class Line:
    what: str
    cost: Decimal
    day: date | None = None


@dataclass
class Claim:
    employee: str
    amount: float
    currency: Currency
    submitted: datetime
    lines: list[Line] = field(default_factory=list)


@dataclass
class Receipt:
    claim: Claim
    number: UUID
    total: Decimal
    checked_by: str


CLAIM = {"employee": "dana", "amount": 12.5, "currency": "EUR",
         "submitted": "2026-12-01T09:30:00Z",
         "lines": [{"what": "train", "cost": "12.50", "day": "2026-11-30"},
                   {"what": "lunch", "cost": 8}]}
"""A claim as JSON, the way an operator types it (the tests and the recorded history)."""


def _log(kind: str, **extra: object) -> None:
    path = os.environ.get("ONWARD_TEST_LOG")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"kind": kind, **extra}) + "\n")


@activity.defn(name="typed.check")
def check(claim: Claim, checker: str) -> Receipt:
    """Receives a real Claim; returns a Receipt (stored as JSON)."""
    _log("typed.check", claim=type(claim).__name__, currency=type(claim.currency).__name__,
         submitted=type(claim.submitted).__name__,
         lines=[[type(x).__name__, type(x.cost).__name__, type(x.day).__name__]
                for x in claim.lines])
    total = sum((x.cost for x in claim.lines), Decimal(0))
    return Receipt(claim, UUID(int=len(claim.employee)), total, checker)


@activity.defn(name="typed.archive")
async def archive(receipt: Receipt) -> Receipt:
    """Called by name: its result is typed by the definition the registry knows."""
    _log("typed.archive", receipt=type(receipt).__name__, number=type(receipt.number).__name__)
    return receipt


@activity.defn(name="typed.bad_result")
def bad_result(claim: Claim) -> Claim:
    """Returns a Claim whose amount has no JSON form (NaN): that attempt fails."""
    claim.amount = float("nan")
    return claim


@workflow.defn(name="reimburse")
async def reimburse(claim: Claim) -> Receipt:
    assert isinstance(claim, Claim) and isinstance(claim.submitted, datetime), claim
    receipt = await workflow.execute_activity(check, claim, "dana")  # by function
    assert isinstance(receipt, Receipt) and isinstance(receipt.total, Decimal), receipt
    archived = await workflow.execute_activity("typed.archive", receipt)  # by name
    assert isinstance(archived, Receipt), archived
    return archived


@workflow.defn(name="reimburse_badly")
async def reimburse_badly(claim: Claim) -> Claim:
    return await workflow.execute_activity(bad_result, claim)  # type: ignore[no-any-return]
