"""Plain functions over a run's history for the detail screen: which events a filter keeps,
activities folded into one row each, and the spans (attempts, timers, tasks, children) a
chart draws. No widgets, so they are easy to test."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .format import countdown, error_text, parse_time

OPENERS = {"ActivityScheduled": "activity", "TimerStarted": "timer",
           "ManualTaskCreated": "task", "ChildWorkflowStarted": "child"}
"""Events that open a step, by the kind of step."""
ACTIVITY_EVENTS = ("ActivityScheduled", "ActivityAttemptFailed", "ActivityCompleted",
                   "ActivityFailed")


def event_types(events: list[dict[str, Any]]) -> list[str]:
    """The event types present in a history, in the order they first appear."""
    return list(dict.fromkeys(str(e.get("type", "")) for e in events))


def event_text(event: dict[str, Any]) -> str:
    """The text a search looks in: the event's JSON, case folded."""
    return json.dumps(event, ensure_ascii=False, default=str).casefold()


def matches(event: dict[str, Any], kind: str | None, needle: str,
            text_of: Callable[[dict[str, Any]], str] = event_text) -> bool:
    """Whether ``event`` has type ``kind`` (any when None) and contains ``needle`` (case
    folded, anywhere in its JSON; everything matches an empty needle). ``text_of`` gives
    the searched text (a caller searching the same events again passes a cached one)."""
    if kind and event.get("type") != kind:
        return False
    if not needle:
        return True
    return needle.casefold() in text_of(event)


@dataclass
class Row:
    """One timeline row: an event, or an activity's events folded together (``folded``
    lists them all; ``event`` is then the newest one)."""

    event: dict[str, Any]
    folded: list[dict[str, Any]] = field(default_factory=list)


def rows(events: list[dict[str, Any]], *, kind: str | None = None, needle: str = "",
         compact: bool = False, text_of: Callable[[dict[str, Any]], str] = event_text
         ) -> list[Row]:
    """The rows to show: events that pass the filter, and with ``compact`` each activity
    (its schedule, attempts and outcome) as one row at the place it was scheduled."""
    if not compact:
        return [Row(e) for e in events if matches(e, kind, needle, text_of)]
    groups: dict[int, list[dict[str, Any]]] = {}
    order: list[tuple[str, Any]] = []
    for event in events:
        attrs = event.get("attrs") or {}
        if event.get("type") == "ActivityScheduled":
            groups[int(event["seq"])] = [event]
            order.append(("group", int(event["seq"])))
        elif event.get("type") in ACTIVITY_EVENTS and attrs.get("ref") in groups:
            groups[int(attrs["ref"])].append(event)
        else:
            order.append(("event", event))
    shown: list[Row] = []
    for what, item in order:
        if what == "event":
            if matches(item, kind, needle, text_of):
                shown.append(Row(item))
            continue
        members = groups[item]
        if any(matches(e, kind, needle, text_of) for e in members):
            shown.append(Row(members[-1], members) if len(members) > 1 else Row(members[0]))
    return shown


def fold_text(folded: list[dict[str, Any]], now: float) -> str:
    """An activity in one line: "bank.deposit × 7, last BankOutage, next in 42s"."""
    first = folded[0].get("attrs") or {}
    name = str(first.get("name", "activity"))
    tries = [e for e in folded if e.get("type") in ("ActivityAttemptFailed",
                                                    "ActivityCompleted")]
    attempts = max([int((e.get("attrs") or {}).get("attempt") or 0) for e in tries] or [0])
    last = folded[-1]
    attrs = last.get("attrs") or {}
    text = f"{name} × {attempts}"
    if last.get("type") == "ActivityCompleted":
        return text + ", completed"
    if last.get("type") == "ActivityFailed":
        return text + f", failed: {error_text(attrs.get('error'))}"
    if last.get("type") == "ActivityAttemptFailed":
        error = attrs.get("error")
        kind = error.get("type") if isinstance(error, dict) else None
        text += f", last {kind or error_text(error)}"
        nxt = attrs.get("next_retry")
        return text + (f", next {countdown(nxt, now)}" if nxt else ", no more retries")
    return text + ", scheduled"


def split_tracebacks(value: Any) -> tuple[Any, list[tuple[str, str]]]:
    """``value`` with every ``traceback`` string taken out, and those tracebacks as
    (where, text) pairs, so they can be shown as text rather than one escaped string."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, item in node.items():
                path = f"{where}.{key}" if where else str(key)
                if key == "traceback" and isinstance(item, str) and item:
                    found.append((path, item))
                    out[key] = "(shown below)"
                else:
                    out[key] = walk(item, path)
            return out
        if isinstance(node, list):
            return [walk(item, f"{where}[{i}]") for i, item in enumerate(node)]
        return node

    return walk(value, ""), found


@dataclass
class Span:
    """A bar on the chart: ``start``/``end`` in epoch seconds (``end`` None: still open);
    ``outcome`` is ok, failed, waiting (backoff) or open."""

    start: float
    end: float | None
    outcome: str


@dataclass
class Lane:
    """One row of the chart: an activity with its attempts, a timer, a task or a child."""

    kind: str
    label: str
    spans: list[Span] = field(default_factory=list)


RUN_ENDS = {"WorkflowCompleted": "ok", "WorkflowContinuedAsNew": "ok",
            "WorkflowFailed": "failed", "WorkflowTerminated": "failed",
            "WorkflowCanceled": "failed"}
"""Events that end the run, with how its own lane ends."""


def lanes(events: list[dict[str, Any]]) -> list[Lane]:
    """The run itself, then its steps over time, in the order they began."""
    by_ref: dict[int, Lane] = {}
    out: list[Lane] = []
    for event in events:
        kind = str(event.get("type", ""))
        attrs = event.get("attrs") or {}
        when = parse_time(event.get("time"))
        if when is None:
            continue
        if kind == "WorkflowStarted":
            out.insert(0, Lane("run", f"run {attrs.get('workflow', '')}".strip(),
                               [Span(when, None, "open")]))
        elif kind in RUN_ENDS and out and out[0].kind == "run":
            out[0].spans[-1].end, out[0].spans[-1].outcome = when, RUN_ENDS[kind]
        if kind in OPENERS:
            label = {"activity": str(attrs.get("name", "activity")),
                     "timer": f"{attrs.get('purpose') or 'sleep'} timer",
                     "task": f"task {attrs.get('kind', '')}".strip(),
                     "child": f"child {attrs.get('child_id') or attrs.get('workflow', '')}",
                     }[OPENERS[kind]]
            lane = Lane(OPENERS[kind], label, [Span(when, None, "open")])
            by_ref[int(event["seq"])] = lane
            out.append(lane)
            continue
        ref = attrs.get("ref")
        lane_or_none = by_ref.get(ref) if isinstance(ref, int) else None
        if lane_or_none is None:
            continue
        current = lane_or_none.spans[-1]
        if current.end is not None:
            continue
        current.end = when
        if kind == "ActivityAttemptFailed":
            current.outcome = "failed"
            retry = parse_time(attrs.get("next_retry"))
            if retry is not None:
                lane_or_none.spans.append(Span(when, retry, "waiting"))
                lane_or_none.spans.append(Span(retry, None, "open"))
        elif kind in ("ActivityFailed", "ChildWorkflowFailed", "ManualTaskFailed",
                      "ManualTaskTimedOut"):
            current.outcome = "failed"
        else:
            current.outcome = "ok"
    return out
