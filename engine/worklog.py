"""What a worker logs about a committed turn: failed and timed-out attempts, failed and
stuck runs, one WARNING record each with the run's ids as fields."""

from __future__ import annotations

import logging
from typing import Any

from .history import RunRow
from .store.base import Tx

log = logging.getLogger("onward.worker")


def log_failures(tx: Tx) -> None:
    """Log at WARNING the failed and timed-out attempts and the failed and stuck runs
    that ``tx`` (now committed) recorded, with their ids as fields of each record."""
    for run, event in getattr(tx, "published", ()):
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
