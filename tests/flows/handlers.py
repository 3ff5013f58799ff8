"""Workflows with signal, query and update handlers, in both styles (class and function).

``approval`` waits (wait_condition) for a decision that a signal or an update brings;
``counter`` is a function workflow that sets its handlers while running; ``slow_update``
has an update handler that awaits an activity, so a worker can be killed between the
update's acceptance and its completion. Activities log each execution to $ONWARD_TEST_LOG.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from onward import ActivityError, ApplicationError, activity, workflow


def _log(label: str, **fields: object) -> None:
    path = os.environ.get("ONWARD_TEST_LOG")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"label": label, **fields}) + "\n")


@activity.defn(name="handlers.record")
def record(text: str) -> str:
    _log("record", text=text, key=activity.info().idempotency_key)
    return text.upper()


@activity.defn(name="handlers.gate")
def gate(path: str) -> str:
    """Wait until the file ``path`` exists (a test creates it), then return its text."""
    _log("gate", path=path, attempt=activity.info().attempt)
    while not Path(path).exists():
        time.sleep(0.02)
    return Path(path).read_text()


@workflow.defn(name="approval")
class Approval:
    def __init__(self) -> None:
        self.decision: str | None = None
        self.notes: list[str] = []

    @workflow.run
    async def run(self, claim: str, days: float = 3.0) -> str:
        workflow.logger.info("waiting for a decision on %s", claim)
        try:
            await workflow.wait_condition(lambda: self.decision is not None,
                                          timeout=timedelta(days=days))
        except TimeoutError:
            return f"{claim}: timed out"
        await workflow.execute_activity(record, f"{claim} {self.decision}")
        return f"{claim}: {self.decision}"

    @workflow.signal
    def decide(self, decision: str) -> None:
        self.decision = decision

    @workflow.signal(name="note")
    async def add_note(self, text: str) -> None:
        self.notes.append(await workflow.execute_activity(record, text))

    @workflow.query
    def status(self) -> dict[str, object]:
        return {"decision": self.decision, "notes": self.notes}

    @workflow.update
    def approve(self, by: str) -> str:
        self.decision = f"approved by {by}"
        return self.decision

    @approve.validator
    def _check_approver(self, by: str) -> None:
        if not by:
            raise ValueError("who approves?")
        if self.decision is not None:
            raise ValueError(f"already decided: {self.decision}")

    @workflow.update
    async def amend(self, text: str) -> int:
        """An update that awaits an activity; a bad text fails the update, not the run."""
        if text == "bad":
            raise ApplicationError("cannot amend with 'bad'")
        self.notes.append(await workflow.execute_activity(record, text))
        return len(self.notes)


@workflow.defn(name="counter")
async def counter(stop_at: int) -> dict[str, object]:
    state = {"total": 0, "seen": []}

    def add(amount: int) -> None:
        state["total"] += amount  # type: ignore[operator]
        state["seen"].append(amount)  # type: ignore[attr-defined]

    def bump(by: int) -> int:
        add(by)
        return state["total"]  # type: ignore[return-value]

    def check_bump(by: int) -> None:
        if by <= 0:
            raise ValueError("bump by a positive amount")

    await workflow.sleep(0.01)  # signals sent before the handler is set stay buffered
    workflow.set_signal_handler("add", add)
    workflow.set_update_handler("bump", bump, validator=check_bump)
    workflow.set_query_handler("total", lambda: state["total"])
    await workflow.wait_condition(lambda: state["total"] >= stop_at)  # type: ignore[operator]
    info = workflow.info()
    return {**state, "history_length": info.history_length,
            "suggested": info.is_continue_as_new_suggested(),
            "dice": workflow.random().randint(1, 6)}


@workflow.defn(name="slow_update")
class SlowUpdate:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "finished"

    @workflow.update
    async def wait_gate(self, path: str) -> str:
        text = await workflow.execute_activity(gate, path)
        self.done = True
        return f"gate says {text}"


@activity.defn(name="chain.fail")
def fail_deposit() -> None:
    activity.logger.warning("the bank said no")
    raise ApplicationError("insufficient funds", type="BankError", non_retryable=True)


@workflow.defn(name="chain")
async def chain() -> str:
    """Catches an activity's failure and raises its own from it: three links of causes."""
    try:
        await workflow.execute_activity(fail_deposit)
    except ActivityError as err:
        assert err.cause is not None
        raise ApplicationError(f"caught {err.cause.type}: {err.cause}",  # type: ignore[attr-defined]
                               type="Refused") from err
    return "unreachable"


@dataclass
class Claim:
    employee: str
    amount: float


@dataclass
class Decision:
    approved: bool
    by: str


@workflow.defn(name="typed_approval")
class TypedApproval:
    """Dataclasses in and out of the run, the update and the signal."""

    def __init__(self) -> None:
        self.decision: Decision | None = None

    @workflow.run
    async def run(self, claim: Claim) -> Decision:
        assert isinstance(claim, Claim)
        await workflow.wait_condition(lambda: self.decision is not None)
        assert self.decision is not None
        return self.decision

    @workflow.signal
    def decide(self, decision: Decision) -> None:
        assert isinstance(decision, Decision)
        self.decision = decision

    @workflow.update
    def approve(self, by: str, limit: float) -> Decision:
        self.decision = Decision(approved=True, by=f"{by} (limit {limit:g})")
        return self.decision


@workflow.defn(name="updatable_timer")
class UpdatableTimer:
    """Temporal's updatable-timer sample: sleep until a moment an update may move."""

    def __init__(self) -> None:
        self.wake_at = 0.0
        self.moved = False

    @workflow.run
    async def run(self, wake_at: float) -> float:
        self.wake_at = wake_at
        while (delay := self.wake_at - workflow.now().timestamp()) > 0:
            self.moved = False
            try:
                await workflow.wait_condition(lambda: self.moved, timeout=delay)
            except TimeoutError:
                break
        return self.wake_at

    @workflow.update
    def set_wake_at(self, wake_at: float) -> float:
        self.wake_at, self.moved = wake_at, True
        return wake_at

    @workflow.query
    def get_wake_at(self) -> float:
        return self.wake_at
