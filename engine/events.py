"""History events: the record a run is rebuilt from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Events the workflow code causes; replay matches them, in order, against the code's calls.
COMMAND_TYPES = frozenset({
    "ActivityScheduled", "TimerStarted", "ChildWorkflowStarted", "ManualTaskCreated",
    "MarkerRecorded", "WorkflowCompleted", "WorkflowFailed", "WorkflowCanceled",
    "WorkflowContinuedAsNew", "UpdateCompleted", "ExternalSignalSent", "ExternalCancelRequested",
    "ActivityCanceled", "TimerCanceled", "SearchAttributesUpserted",
})

# Commands recording that the code stopped waiting for an activity or timer. Histories
# from before they were recorded lack them: replay lets such a history go without them.
CANCEL_TYPES = frozenset({"ActivityCanceled", "TimerCanceled"})

# Events workflow code receives, each applied by ``WorkflowInstance._apply_<type>``.
INBOUND_TYPES = frozenset({
    "WorkflowStarted", "CancelRequested", "SignalReceived", "ActivityCompleted",
    "ActivityFailed", "TimerFired", "ManualTaskCompleted", "ManualTaskFailed",
    "ManualTaskTimedOut", "ChildWorkflowCompleted", "ChildWorkflowFailed", "UpdateAccepted",
})

# An external command (ExternalSignalSent, ExternalCancelRequested) carries its outcome in
# its own attrs: ``target_run_id`` when the target was reached, ``error`` when it was not.

# Every other type (ActivityAttemptFailed, WorkflowTaskFailed, WorkflowTerminated) is
# bookkeeping for people and the engine: workflow code never sees it.


@dataclass(slots=True)
class Event:
    """One entry of a run's history."""

    seq: int
    type: str
    time: float
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The event as in ``onward show --json``."""
        return {"seq": self.seq, "type": self.type, "time": iso(self.time),
                "attrs": self.attrs}


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO-8601 in UTC with its offset."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
