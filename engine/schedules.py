"""Firing schedules: due fires, the overlap policies, the catch-up window, backfill.

Any worker fires due schedules inside its turn's transaction, and an operator's trigger or
backfill fires inside its own. Every fire starts its run through ``start_fired_run``, with
workflow id ``{schedule}-{fire time, ISO UTC}`` taken under ``tx.lock_workflow_id``: an
id that exists means the fire already happened, so no fire starts twice whatever crashes
(the schedule's row and the run commit together or not at all).

Overlap policies, applied when a fire comes while the schedule's previous run is open:
``skip`` (counted skipped), ``buffer_one`` (start it when the previous run closes; one
fire at most is buffered, later ones are skipped), ``allow_all``, ``cancel_other``
(request the previous run's cancellation, start the new one) and ``terminate_other``
(terminate the previous run, start the new one). A fire whose time is older than the
catch-up window when a worker gets to it (after downtime) is counted missed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

from . import history, search_attributes
from .history import RunRow
from .schedule_spec import (
    Spec,
    fire_iso,
    jitter_delay,
    parse_cron,
    parse_every,
    zone,
)
from .store import schedules as store
from .store.base import Tx
from .store.schedules import ScheduleRow

__all__ = ["OVERLAP_POLICIES", "Closer", "fire", "fire_due", "fired_workflow_id", "has_due",
           "next_due", "set_next", "spec_of", "start_fired_run", "wake_at"]

OVERLAP_POLICIES = ("skip", "buffer_one", "allow_all", "cancel_other", "terminate_other")
BATCH = 50
"""Schedules fired per worker turn at most."""
BUFFER_RECHECK = 0.5
"""Seconds after which a worker looks again at a buffered fire (its previous run may have
closed in a turn that fired nothing)."""


class Closer(Protocol):
    """What closes a run (the engine's advancer): used by ``terminate_other``."""

    def close(self, tx: Tx, run: RunRow, status: str, now: float) -> None:
        """Close ``run`` with ``status``."""


def spec_of(row: ScheduleRow) -> Spec:
    """The spec of a stored schedule."""
    data = json.loads(row.spec)
    if "cron" in data:
        return parse_cron(data["cron"], zone(row.tz))
    return parse_every(data["every"])


def fired_workflow_id(schedule_id: str, fire_time: float) -> str:
    """The workflow id of the run the fire at ``fire_time`` starts."""
    return f"{schedule_id}-{fire_iso(fire_time)}"


def set_next(row: ScheduleRow, spec: Spec, nominal: float | None) -> None:
    """Make ``nominal`` the schedule's next fire (its due time with jitter added)."""
    row.next_fire = nominal
    row.due = None if nominal is None else \
        nominal + jitter_delay(row.schedule_id, nominal, row.jitter)


def start_fired_run(tx: Tx, new_id: Callable[[str], str], row: ScheduleRow,
                    fire_time: float, now: float) -> RunRow | None:
    """Start the run of ``row``'s fire at ``fire_time``; None if that fire already started
    one. The one place a schedule creates a run (and records its schedule id)."""
    workflow_id = fired_workflow_id(row.schedule_id, fire_time)
    tx.lock_workflow_id(workflow_id)
    if history.current_run(tx, workflow_id) is not None:
        return None
    run_id = new_id("run")
    run = history.insert_run(tx, run_id=run_id, workflow_id=workflow_id,
                             workflow=row.workflow, args=json.loads(row.args), now=now)
    search_attributes.save(tx, run_id, {"ScheduleId": row.schedule_id}, allow_system=True)
    store.add_fired_run(tx, row.schedule_id, fire_time, workflow_id, run_id, now)
    row.last_workflow_id = workflow_id
    row.fired += 1
    return run


def _previous_open(tx: Tx, row: ScheduleRow) -> RunRow | None:
    if row.last_workflow_id is None:
        return None
    run = history.current_run(tx, row.last_workflow_id, lock=True)
    return run if run is not None and run.is_open else None


def fire(tx: Tx, closer: Closer, new_id: Callable[[str], str], row: ScheduleRow,
         fire_time: float, now: float, overlap: str | None = None) -> str:
    """Fire ``row`` for ``fire_time`` under its overlap policy (or ``overlap``); says what
    happened: 'started', 'skipped', 'buffered' or 'exists' (fired before)."""
    workflow_id = fired_workflow_id(row.schedule_id, fire_time)
    tx.lock_workflow_id(workflow_id)
    if history.current_run(tx, workflow_id) is not None:
        return "exists"  # this fire time has its run: no policy applies, nothing counts
    policy = overlap or row.overlap
    previous = None if policy == "allow_all" else _previous_open(tx, row)
    if previous is not None:
        if policy == "skip" or (policy == "buffer_one" and row.buffered is not None):
            row.skipped += 1
            return "skipped"
        if policy == "buffer_one":
            row.buffered = fire_time
            return "buffered"
        if policy == "cancel_other":
            history.request_cancel(tx, previous, f"schedule {row.schedule_id} fired again",
                                   now)
        else:  # terminate_other
            history.append(tx, previous, "WorkflowTerminated",
                           {"reason": f"schedule {row.schedule_id} fired again"}, now)
            previous.error = json.dumps({"type": "Terminated", "message":
                                         f"schedule {row.schedule_id} fired again"})
            closer.close(tx, previous, "terminated", now)
            history.save_run_state(tx, previous)
    return "started" if start_fired_run(tx, new_id, row, fire_time, now) else "exists"


def _fire_one(tx: Tx, closer: Closer, new_id: Callable[[str], str], row: ScheduleRow,
              now: float) -> None:
    spec = spec_of(row)
    if row.buffered is not None and _previous_open(tx, row) is None:
        buffered, row.buffered = row.buffered, None
        if start_fired_run(tx, new_id, row, buffered, now) is None:
            row.skipped += 1  # a trigger or backfill started this fire time meanwhile
    while row.next_fire is not None and row.due is not None and row.due <= now:
        nominal = row.next_fire
        if now - nominal > row.catchup:  # after downtime: older than the catch-up window
            missed, first = spec.skip_before(nominal, now - row.catchup)
            row.missed += missed
            set_next(row, spec, first)
            continue
        fire(tx, closer, new_id, row, nominal, now)
        set_next(row, spec, spec.next_after(nominal))
    store.save(tx, row)


def fire_due(tx: Tx, closer: Closer, new_id: Callable[[str], str], now: float) -> int:
    """Fire every schedule due at ``now`` (a worker's turn); how many schedules fired.

    The runs started are due for their first workflow task in the same transaction."""
    ids = store.due_ids(tx, now, BATCH)
    for schedule_id in ids:
        row = store.get(tx, schedule_id, lock=True)
        if row is not None:
            _fire_one(tx, closer, new_id, row, now)
    return len(ids)


def has_due(tx: Tx, now: float) -> bool:
    """Whether a schedule has a fire to start at ``now`` (a cheap read before a write)."""
    return store.has_due(tx, now)


def next_due(tx: Tx, now: float) -> float | None:
    """When a schedule falls due next (None: none will), for the worker's wake-up."""
    due, buffered = store.next_due(tx)
    return wake_at(due, buffered, now)


def wake_at(due: float | None, buffered: bool, now: float) -> float | None:
    """When a worker looks at the schedules next, given the earliest due schedule and
    whether one holds a buffered fire (looked at again shortly)."""
    if buffered:
        due = now + BUFFER_RECHECK if due is None else min(due, now + BUFFER_RECHECK)
    return due
