"""Run bookkeeping on the engine's side of the store: creating runs and appending events.

The rows themselves are read and written by ``engine.store.runs``; this module keeps what
the engine tracks around them within one transaction: the events appended to a run since it
was read (``RunRow.fresh``), its ``last_seq``, and the (run, event) pairs a transaction
publishes to ``onward_event`` observers. The store's run operations that the engine uses
everywhere are re-exported here, so a caller needs one name for "runs and their history".
"""

from __future__ import annotations

from typing import Any

from . import payloads
from .events import Event
from .store import runs, search_attrs
from .store.base import Tx
from .store.runs import (
    OPEN,
    RunRow,
    current_run,
    find_run,
    get_run,
    load_events,
    register_workflow_types,
    save_run_state,
)

__all__ = [
    "OPEN", "RunRow", "append", "current_run", "find_run", "get_run",
    "insert_run", "load_events", "register_workflow_types",
    "request_cancel", "save_run_state",
]


def insert_run(tx: Tx, *, run_id: str, workflow_id: str, workflow: str, args: list[Any],
               now: float, parent: tuple[str, str, int] | None = None,
               continued_from: str | None = None, reset_from: str | None = None,
               start_attrs: dict[str, Any] | None = None, lineage: str | None = None,
               first_event: bool = True, first_of_id: bool = False,
               runs_inline: bool = False) -> RunRow:
    """Create a run with its WorkflowStarted event, due for its first workflow task.

    The caller holds ``tx.lock_workflow_id`` and has found no open run of the id (the index
    ``runs_open`` refuses a second one). ``first_of_id``: the workflow id is new
    (generated), so no earlier run is current. ``runs_inline``: the caller runs the first
    workflow task in this transaction and saves the returned row after it whatever happens
    (``Worker.start_inline``); the row is stored not due meanwhile."""
    input_text = payloads.dumps(args, "workflow input")
    parent_run_id, parent_id, parent_ref = parent if parent else (None, None, None)
    run = RunRow(run_id, workflow_id, workflow, OPEN, input_text, None, None, now, now, None,
                 1, 1, 0, None, 0, 0, parent_run_id, parent_id, parent_ref, continued_from,
                 reset_from, None, 1, "starting", lineage or run_id)
    runs.create_run(tx, run, replaces_current=not first_of_id, runs_inline=runs_inline)
    if continued_from or reset_from:  # the new run keeps its search attributes and memo
        search_attrs.copy_meta(tx, str(continued_from or reset_from), run_id)
    if not first_event:
        return run
    attrs: dict[str, Any] = {"workflow": workflow, "input": args, "workflow_id": workflow_id}
    if parent:
        attrs["parent_run_id"], attrs["parent_id"] = parent_run_id, parent_id
    if continued_from:
        attrs["continued_from"] = continued_from
    if reset_from:
        attrs["reset_from"] = reset_from
    if start_attrs:
        attrs.update(start_attrs)
    event = Event(1, "WorkflowStarted", now, attrs)
    runs.add_event(tx, run_id, event)
    _note_published(tx, run, event)
    run.loaded_seq = 0
    run.fresh.append(event)
    return run


def append(tx: Tx, run: RunRow, event_type: str, attrs: dict[str, Any], now: float,
           *, wake: bool = False, seq: int | None = None, attrs_text: str | None = None
           ) -> Event:
    """Append one event to ``run`` (whose ``last_seq`` is kept current in memory).

    ``attrs_text``: ``attrs`` as the JSON that encoding them writes, if the caller has it."""
    seq = run.last_seq + 1 if seq is None else seq
    event = Event(seq, event_type, now, attrs)
    runs.add_event(tx, run.run_id, event, attrs_text)
    run.last_seq = seq
    run.updated = now
    if wake:
        run.wf_pending = 1
    run.fresh.append(event)
    _note_published(tx, run, event)
    return event


def _note_published(tx: Tx, run: RunRow, event: Event) -> None:
    """Note ``event`` for after ``tx`` commits (``onward_event`` observers, metrics,
    traces, failure logs), if ``tx`` keeps such notes."""
    published = getattr(tx, "published", None)
    if published is not None:
        published.append((run, event))


def request_cancel(tx: Tx, run: RunRow, reason: str, now: float) -> bool:
    """Record a CancelRequested for ``run`` unless it already has one; True if recorded.

    A cancel request is a state, not a stream: asking again must not interrupt the
    compensation that the first request started."""
    if runs.cancel_was_requested(tx, run.run_id):
        return False
    append(tx, run, "CancelRequested", {"reason": reason} if reason else {}, now, wake=True)
    save_run_state(tx, run)
    return True
