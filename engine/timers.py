"""Timers in the store: firing those that are due, and when the next work falls due.

A durable timer (``workflow.sleep``) and a manual task's timeout are rows of the store's
timer queue. Firing one appends its event (TimerFired, or ManualTaskTimedOut and the task
closed) to the run, whose workflow task is then due; each timer fires once, whichever
worker gets to it first.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import history, schedules
from .history import RunRow
from .store import queues
from .store.base import Tx

LIMITED_RECHECK = 0.2
"""Seconds after which a worker with rate-limited activities looks for work again."""


def fire_due_timers(tx: Tx, now: float, limit: int) -> Iterator[RunRow]:
    """Fire up to ``limit`` due timers; yields each run a timer fired for, locked and with
    its workflow task due, before firing the next (the caller settles it)."""
    for run_id, ref, kind in queues.due_timers(tx, now, limit):
        run = history.get_run(tx, run_id, lock=True)
        if not queues.remove_timer(tx, run_id, ref):
            continue  # another worker fired it first
        if run is None or not run.is_open:
            continue
        if kind == "task":
            row = queues.time_out_task(tx, run_id, ref, now)
            if row is None:
                continue
            history.append(tx, run, "ManualTaskTimedOut",
                           {"ref": ref, "task_id": row[0], "kind": row[1]}, now, wake=True)
        else:
            history.append(tx, run, "TimerFired", {"ref": ref}, now, wake=True)
        yield run


def next_due(tx: Tx, now: float, *, limited: bool) -> float:
    """When a timer, a ready attempt or a schedule falls due next (an hour away if nothing does);
    ``limited``: activities under rate limits are looked at again shortly."""
    timer, ready, schedule, buffered = queues.next_due(tx, now)
    candidates = [t for t in (timer, ready, schedules.wake_at(schedule, buffered, now))
                  if t is not None]
    if limited:
        candidates.append(now + LIMITED_RECHECK)
    return min(candidates) if candidates else now + 3600.0
