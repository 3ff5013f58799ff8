"""What a worker reports about a committed turn.

Each transaction a worker commits (a turn of its dispatcher, an outcome settled inline, a
run's eager first workflow task) is reported once it is durable: failed and timed-out
attempts, failed, stuck, terminated runs and timed-out manual tasks are logged at WARNING
with the run's ids as fields of the record, and every :class:`TurnReporter` of the worker
(metrics, traces) reads the events the turn published and the workflow tasks it ran.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .history import RunRow
from .store.base import Tx

if TYPE_CHECKING:
    from .attempts import Attempt

log = logging.getLogger("onward.worker")

V = TypeVar("V")

CLOSES = {"WorkflowCompleted": "completed", "WorkflowFailed": "failed",
          "WorkflowCanceled": "canceled", "WorkflowTerminated": "terminated",
          "WorkflowContinuedAsNew": "continued_as_new"}
"""Closing events and the final status each gives its run."""

CANCELLATIONS = frozenset({"CancelledError", "CanceledError"})
"""Error types of an attempt that ended because it was canceled."""


def attempt_outcome(event_type: str, attrs: dict[str, Any]) -> str:
    """completed, failed, timed_out or canceled: how the attempt an event records ended."""
    if event_type == "ActivityCompleted":
        return "completed"
    kind = str((attrs.get("error") or {}).get("type") or "")
    if kind.endswith("Timeout"):
        return "timed_out"
    return "canceled" if kind in CANCELLATIONS else "failed"


class PerRun(Generic[V]):
    """Values by run and key, awaiting an outcome: a run's are forgotten together when it
    closes; beyond ``max_runs`` runs, those least recently touched are forgotten first
    (their outcomes, if they come, are then recorded elsewhere or not at all)."""

    def __init__(self, max_runs: int = 50_000) -> None:
        self.max_runs = max_runs
        self._runs: collections.OrderedDict[str, dict[Hashable, V]] = \
            collections.OrderedDict()

    def put(self, run_id: str, key: Hashable, value: V) -> None:
        """Remember ``value`` for ``key`` of ``run_id``."""
        values = self._runs.get(run_id)
        if values is None:
            values = self._runs[run_id] = {}
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(run_id)
        values[key] = value

    def get(self, run_id: str, key: Hashable) -> V | None:
        """The value for ``key`` of ``run_id``, if remembered."""
        return self._runs.get(run_id, {}).get(key)

    def pop(self, run_id: str, key: Hashable) -> V | None:
        """Forget and return the value for ``key`` of ``run_id``, if remembered."""
        values = self._runs.get(run_id)
        if values is None:
            return None
        value = values.pop(key, None)
        if not values:
            del self._runs[run_id]
        return value

    def forget(self, run_id: str) -> dict[Hashable, V]:
        """Forget everything about ``run_id``; what was remembered."""
        return self._runs.pop(run_id, {})


@dataclass(slots=True)
class WorkflowTask:
    """One workflow task a transaction ran: its run, when it ran (epoch seconds of this
    host's clock) and whether it went through (False: the run was held stuck)."""

    run: RunRow
    started: float
    ended: float
    ok: bool


class TurnReporter(Protocol):
    """Something told about every turn a worker commits (engine/metrics.py,
    engine/tracing.py). Called on the committing thread: it must be quick."""

    def started(self, attempts: Sequence[Attempt]) -> None:
        """``attempts`` were claimed by a committed turn and start now."""

    def committed(self, tx: Tx) -> None:
        """``tx`` committed: read ``published_events(tx)`` and ``workflow_tasks(tx)``."""


def note_workflow_task(tx: Tx, task: WorkflowTask) -> None:
    """Remember in ``tx`` that it ran ``task`` (reported if ``tx`` commits)."""
    vars(tx).setdefault("workflow_tasks", []).append(task)


def workflow_tasks(tx: Tx) -> list[WorkflowTask]:
    """The workflow tasks ``tx`` ran, in order."""
    tasks: list[WorkflowTask] = getattr(tx, "workflow_tasks", [])
    return tasks


def published_events(tx: Tx) -> list[tuple[RunRow, Any]]:
    """The (run, event) pairs ``tx`` appended, in order."""
    published: list[tuple[RunRow, Any]] = getattr(tx, "published", [])
    return published


def report_turn(tx: Tx, reporters: Sequence[TurnReporter]) -> None:
    """Log what ``tx`` (now committed) recorded going wrong, and tell ``reporters``; a
    reporter that raises is logged and never stops the worker."""
    log_failures(tx)
    for reporter in reporters:
        try:
            reporter.committed(tx)
        except Exception:  # noqa: BLE001 - telemetry must never stop a worker
            log.exception("reporting a committed turn to %r failed", reporter)


def report_started(attempts: Sequence[Attempt], reporters: Sequence[TurnReporter]) -> None:
    """Tell ``reporters`` that ``attempts`` start now."""
    if not attempts:
        return
    for reporter in reporters:
        try:
            reporter.started(attempts)
        except Exception:  # noqa: BLE001 - telemetry must never stop a worker
            log.exception("reporting started attempts to %r failed", reporter)


def log_failures(tx: Tx) -> None:
    """Log at WARNING the failed and timed-out attempts, the failed, stuck and terminated
    runs and the timed-out manual tasks that ``tx`` (now committed) recorded, with their
    ids as fields of each record."""
    for run, event in published_events(tx):
        attrs = event.attrs
        if event.type == "ActivityAttemptFailed":
            _log_attempt_failed(run, attrs)
        elif event.type == "WorkflowFailed":
            error = attrs.get("error") or {}
            _warn(run, None, None, "run %s (%s, workflow %s) failed: %s: %s",
                  run.workflow_id, run.run_id, run.workflow, error.get("type", "Error"),
                  _first_line(error.get("message")))
        elif event.type == "WorkflowTaskFailed":
            _warn(run, None, None, "run %s (%s, workflow %s) held stuck: %s",
                  run.workflow_id, run.run_id, run.workflow,
                  _first_line(attrs.get("message")))
        elif event.type == "WorkflowTerminated":
            _warn(run, None, None, "run %s (%s, workflow %s) terminated: %s",
                  run.workflow_id, run.run_id, run.workflow,
                  _first_line(attrs.get("reason")) or "no reason given")
        elif event.type == "ManualTaskTimedOut":
            _warn(run, None, None, "manual task %s (%s) of run %s (%s) timed out",
                  attrs.get("kind"), attrs.get("task_id"), run.workflow_id, run.run_id)


def _first_line(text: object, limit: int = 500) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0][:limit] if lines else ""


def _warn(run: RunRow, activity: str | None, attempt: int | None, message: str,
          *args: object) -> None:
    log.warning(message, *args, extra={"workflow_id": run.workflow_id, "run_id": run.run_id,
                                       "activity": activity, "attempt": attempt})


def _log_attempt_failed(run: RunRow, attrs: dict[str, Any]) -> None:
    """One failed attempt: what went wrong, and whether and when it is retried."""
    error = attrs.get("error") or {}
    kind = str(error.get("type") or "Error")
    what = (f"timed out ({kind})" if kind.endswith("Timeout")
            else f"failed: {kind}: {_first_line(error.get('message'))}")
    retry = f"retry at {attrs['next_retry']}" if attrs.get("next_retry") else "no retry"
    name, attempt = attrs.get("name"), attrs.get("attempt")
    _warn(run, name, attempt, "activity %s attempt %s of run %s (%s) %s; %s", name, attempt,
          run.workflow_id, run.run_id, what, retry)
