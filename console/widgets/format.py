"""Plain formatting for runs, events and times; no widgets, so it is easy to test and reuse."""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from typing import Any

# status -> (symbol, label, theme colour variable)
STATUS_LOOK: dict[str, tuple[str, str, str]] = {
    "running": ("●", "running", "text-success"),
    "completed": ("✓", "completed", "text-primary"),
    "failed": ("✗", "failed", "text-error"),
    "canceled": ("⊘", "canceled", "text-warning"),
    "terminated": ("■", "terminated", "text-error"),
    "continued_as_new": ("↪", "continued", "text-secondary"),
    # operator filters over open runs
    "open": ("●", "open", "text-success"),
    "stuck": ("⚠", "stuck", "text-warning"),
    "retrying": ("⟳", "retrying", "text-warning"),
    "paused": ("⏸", "paused", "text-accent"),
    "waiting": ("✎", "waiting", "text-accent"),
    "overdue": ("⚑", "overdue", "text-error"),
}

FILTER_LABELS: dict[str, str] = {
    "all": "All runs",
    "open": "Open (running)",
    "stuck": "Stuck",
    "retrying": "Retrying",
    "paused": "Paused",
    "waiting": "Waiting on a person",
    "overdue": "Overdue tasks",
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
    "terminated": "Terminated",
    "continued_as_new": "Continued as new",
}

EVENT_COLOURS: dict[str, str] = {
    "WorkflowStarted": "text-primary",
    "WorkflowCompleted": "text-success",
    "WorkflowFailed": "text-error",
    "WorkflowTerminated": "text-error",
    "WorkflowCanceled": "text-warning",
    "WorkflowContinuedAsNew": "text-secondary",
    "WorkflowTaskFailed": "text-warning",
    "CancelRequested": "text-warning",
    "ActivityCompleted": "text-success",
    "ActivityAttemptFailed": "text-warning",
    "ActivityFailed": "text-error",
    "ManualTaskCreated": "text-accent",
    "ManualTaskCompleted": "text-success",
    "ManualTaskFailed": "text-error",
    "ManualTaskTimedOut": "text-error",
    "ChildWorkflowCompleted": "text-success",
    "ChildWorkflowFailed": "text-error",
    "SignalReceived": "text-accent",
}


def run_look(run: dict[str, Any]) -> tuple[str, str, str]:
    """(symbol, label, colour variable) of a run, letting stuck/paused/retrying show through."""
    status = str(run.get("status", ""))
    if status == "running":
        for flag in ("stuck", "paused", "retrying"):
            if run.get(flag):
                return STATUS_LOOK[flag]
    return STATUS_LOOK.get(status, ("?", status or "unknown", "text-secondary"))


def parse_time(value: str | float | None) -> float | None:
    """Epoch seconds from the engine's ISO-8601 strings or epoch numbers (None stays None)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    if value.endswith("Z") or (len(value) > 6 and value[-6] in "+-"):
        return _parse_iso(value)  # with an offset: the same instant in any time zone
    try:
        return datetime.fromisoformat(value).timestamp()  # local time: not cached
    except ValueError:
        return None


@functools.lru_cache(maxsize=8192)
def _parse_iso(text: str) -> float | None:
    """The epoch seconds of an ISO-8601 string with an offset (cached: a table re-renders
    the same times every second)."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def clock_time(text: str | float | None, now: float, *, millis: bool = False) -> str:
    """Local wall-clock time of an ISO string or epoch: the time today, else the date too."""
    ts = parse_time(text)
    if ts is None:
        return ""
    moment = datetime.fromtimestamp(ts)
    if moment.date() == datetime.fromtimestamp(now).date():
        shown = moment.strftime("%H:%M:%S")
    else:
        shown = moment.strftime("%b %d %H:%M:%S")
    if millis:
        shown += f".{moment.microsecond // 1000:03d}"
    return shown


def span(seconds: float) -> str:
    """A short human duration: 0.012s, 4.5s, 3m04s, 2h05m, 3d04h."""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{seconds:.3f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def ago(text: str | None, now: float) -> str:
    """How long ago an ISO time was: 'just now', '12s ago', '5m ago', '3h ago', '2d ago'."""
    ts = parse_time(text)
    if ts is None:
        return ""
    delta = now - ts
    if delta < 1:
        return "just now"
    if delta < 60:
        return f"{int(delta)}s ago"
    if delta < 3600:
        return f"{int(delta // 60)}m ago"
    if delta < 86400:
        return f"{int(delta // 3600)}h ago"
    return f"{int(delta // 86400)}d ago"


ISO_TIME = re.compile(r"(?:\bat )?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?"
                      r"(?:Z|[+-]\d\d:\d\d)?)")


def relative_times(text: str, now: float) -> str:
    """``text`` with every ISO-8601 time in it (and an ``at`` before it) said relative to
    now ('retry at 2026-…' becomes 'retry in 42s'), so no raw timestamp is cut off at a
    column's edge."""
    def relative(match: re.Match[str]) -> str:
        ts = parse_time(match.group(1))
        if ts is None:
            return match.group(0)
        return f"in {short_span(ts - now)}" if ts >= now else ago(match.group(1), now)
    return ISO_TIME.sub(relative, text)


def local_times(text: str, now: float) -> str:
    """``text`` with every ISO-8601 time in it shown as the local clock time with how far
    off it is ('retry at 2026-…T09:31:00Z' becomes 'retry at 10:31:00 (in 42s)'): the run
    detail's summary, where there is room for both."""
    def local(match: re.Match[str]) -> str:
        ts = parse_time(match.group(1))
        if ts is None:
            return match.group(0)
        lead = "at " if match.group(0).startswith("at ") else ""
        off = f"in {short_span(ts - now)}" if ts >= now else ago(match.group(1), now)
        return f"{lead}{clock_time(ts, now)} ({off})"
    return ISO_TIME.sub(local, text)


def short_span(seconds: float) -> str:
    """A countdown's duration in whole units: 42s, 4m59s, 3h05m, 2d04h."""
    whole = int(abs(seconds))
    return span(whole) if whole >= 60 else f"{whole}s"


def next_due_text(run: dict[str, Any], due: dict[str, str | None] | None, now: float
                  ) -> str:
    """The list's countdown: 'retry in 42s' for a run backing off, 'due in 3h05m' or
    'overdue 5m00s' for an open manual task's deadline; '' when nothing is due."""
    if not due or run.get("status") != "running":
        return ""
    retry = parse_time(due.get("retry"))
    if retry is not None and run.get("retrying") and retry > now:
        return f"retry in {short_span(retry - now)}"
    deadline = parse_time(due.get("deadline"))
    if deadline is not None:
        left = deadline - now
        return f"due in {short_span(left)}" if left >= 0 else \
            f"overdue {short_span(-left)}"
    return ""


def countdown(text: str | None, now: float) -> str:
    """Time left until an ISO deadline ('in 2d03h'), or how overdue it is."""
    ts = parse_time(text)
    if ts is None:
        return "no deadline"
    left = ts - now
    if left < 0:
        return f"overdue {span(-left)}"
    return f"in {span(left)}"


def compact_json(value: Any, limit: int = 80) -> str:
    """One-line JSON, cut to ``limit`` characters with an ellipsis."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def pretty_json(value: Any) -> str:
    """Indented JSON for panes and exports."""
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def call_text(name: str, args: Any, limit: int = 60) -> str:
    """``name(arg, arg)`` from a JSON argument list, cut to about ``limit`` characters."""
    if isinstance(args, list):
        inner = compact_json(args, 10_000)[1:-1]
    else:
        inner = compact_json(args, 10_000)
    if len(inner) > limit:
        inner = inner[: limit - 1] + "…"
    return f"{name}({inner})"


def error_text(error: Any) -> str:
    """``Type: message`` of an error dict (first line of the message)."""
    if not isinstance(error, dict):
        return str(error or "")
    message = str(error.get("message", "")).splitlines()[0] if error.get("message") else ""
    kind = error.get("type")
    return f"{kind}: {message}" if kind else message


def _provider(attrs: dict[str, Any]) -> str:
    provider = attrs.get("provider")
    if not provider:
        return ""
    version = attrs.get("provider_version")
    return f"  [{provider}@{version}]" if version else f"  [{provider}]"


def describe_event(event: dict[str, Any], now: float) -> str:
    """The key attributes of one history event, in a line a person can read."""
    kind = event.get("type", "")
    a: dict[str, Any] = event.get("attrs") or {}
    name = a.get("name", "")
    if kind == "WorkflowStarted":
        text = call_text(str(a.get("workflow", "")), a.get("input", []))
        if a.get("reset_from"):
            text += (f"  (reset from run {str(a['reset_from'])[:12]} at event "
                     f"{a.get('reset_event')})")
        return text
    if kind == "WorkflowCompleted":
        return "result " + compact_json(a.get("result"))
    if kind in ("WorkflowFailed", "ChildWorkflowFailed"):
        return error_text(a.get("error"))
    if kind == "WorkflowTerminated":
        return str(a.get("reason") or "terminated by an operator")
    if kind == "WorkflowContinuedAsNew":
        return "new input " + compact_json(a.get("input"))
    if kind == "WorkflowTaskFailed":
        message = str(a.get("message", "")).splitlines()
        return f"{a.get('kind', '')}: {message[0] if message else ''}"
    if kind == "ActivityScheduled":
        return call_text(str(name), a.get("args", []))
    if kind == "ActivityAttemptFailed":
        text = f"{name} attempt {a.get('attempt')}: {error_text(a.get('error'))}"
        nxt = a.get("next_retry")
        text += f"; retry at {clock_time(nxt, now)}" if nxt else "; no more retries"
        return text + _provider(a)
    if kind == "ActivityCompleted":
        return (f"{name} attempt {a.get('attempt')} → {compact_json(a.get('result'), 50)}"
                + _provider(a))
    if kind == "ActivityFailed":
        timeout = " (timed out)" if a.get("timeout") else ""
        return (f"{name} after {a.get('attempts')} attempt(s){timeout}: "
                f"{error_text(a.get('error'))}")
    if kind == "TimerStarted":
        when = clock_time(a.get("fire_at"), now)
        return f"{a.get('purpose', 'sleep')} {span(float(a.get('seconds') or 0))}, fires {when}"
    if kind == "TimerFired":
        return f"timer of event {a.get('ref')}"
    if kind == "SignalReceived":
        return f"{a.get('name')}: {compact_json(a.get('payload'))}"
    if kind == "ManualTaskCreated":
        who = f" for {a['assignee']}" if a.get("assignee") else ""
        what = f": {a['instructions']}" if a.get("instructions") else ""
        return f"{a.get('kind', 'task')}{who}{what}"
    if kind == "ManualTaskCompleted":
        by = f" by {a['by']}" if a.get("by") else ""
        return f"{a.get('kind', 'task')}{by} → {compact_json(a.get('result'))}"
    if kind == "ManualTaskFailed":
        by = f" by {a['by']}" if a.get("by") else ""
        return f"{a.get('kind', 'task')}{by}: {a.get('reason') or 'failed'}"
    if kind == "ManualTaskTimedOut":
        return f"{a.get('kind', 'task')} timed out"
    if kind == "ChildWorkflowStarted":
        return call_text(str(a.get("workflow", "")), a.get("args", [])) + (
            f" as {a['child_id']}" if a.get("child_id") else "")
    if kind == "ChildWorkflowCompleted":
        return "result " + compact_json(a.get("result"))
    if kind == "MarkerRecorded":
        return f"patch {a['patch_id']}" if a.get("patch_id") else compact_json(a)
    if kind == "CancelRequested":
        return "cancel requested"
    return compact_json(a) if a else ""
