"""Runs and their event histories in the store: the SQL every other module goes through."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import payloads
from .errors import StoreError
from .events import Event
from .store.base import Tx

RUN_COLUMNS = (
    "run_id, workflow_id, workflow, status, input, result, error, started, updated, closed, "
    "last_seq, wf_pending, stuck, stuck_reason, paused, retrying, parent_run_id, parent_id, "
    "parent_ref, continued_from, reset_from, reset_to, is_current, step, lineage"
)

OPEN = "running"
CLOSED_STATUSES = ("completed", "failed", "canceled", "terminated", "continued_as_new")


@dataclass(slots=True)
class RunRow:
    """One run as stored."""

    run_id: str
    workflow_id: str
    workflow: str
    status: str
    input: str | None
    result: str | None
    error: str | None
    started: float
    updated: float
    closed: float | None
    last_seq: int
    wf_pending: int
    stuck: int
    stuck_reason: str | None
    paused: int
    retrying: int
    parent_run_id: str | None
    parent_id: str | None
    parent_ref: int | None
    continued_from: str | None
    reset_from: str | None
    reset_to: str | None
    is_current: int
    step: str | None
    lineage: str
    fresh: list[Event] = field(default_factory=list, repr=False)
    """Events appended in this transaction since the row was read (newest last)."""
    loaded_seq: int = -1

    def __post_init__(self) -> None:
        if self.loaded_seq < 0:
            self.loaded_seq = self.last_seq

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def args(self) -> list[Any]:
        return payloads.loads(self.input) or []


def pending_runs_sql(workflow_count: int) -> str:
    """Open runs due a workflow task, of these workflow types, oldest change first.

    Written to use the partial index ``runs_pending``: closed runs never keep wf_pending
    set, so the query does not name ``status`` (an index on it would be picked instead)."""
    marks = ",".join("?" * workflow_count)
    return ("SELECT run_id FROM runs WHERE wf_pending = 1 AND paused = 0 "
            f"AND workflow IN ({marks}) ORDER BY updated LIMIT ?")


CHILDREN_SQL = "SELECT run_id, status FROM runs WHERE parent_run_id = ?"
"""A run's children with their status (uses ``runs_by_parent``; filter status in code)."""


def get_run(tx: Tx, run_id: str, *, lock: bool = False) -> RunRow | None:
    """The run with this run id."""
    row = tx.one(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?"
                 + (tx.for_update if lock else ""), (run_id,))
    return RunRow(*row) if row else None


LOOKUP_ROUNDS = 20
"""How often a locking lookup follows an id whose current run changed while it waited."""


def current_run(tx: Tx, workflow_id: str, *, lock: bool = False) -> RunRow | None:
    """The latest run of a workflow id; with ``lock``, locked until the transaction ends.

    The row is found first and then locked by its run id. (Locking by ``is_current = 1``
    would, on PostgreSQL, wait for a transaction that replaces the current run, such as a
    continue-as-new, and then find the old row no longer current and return nothing.)
    If the run stopped being current while we waited, the id is looked up again."""
    for _ in range(LOOKUP_ROUNDS):
        row = tx.one(f"SELECT {RUN_COLUMNS} FROM runs WHERE workflow_id = ? AND is_current = 1",
                     (workflow_id,))
        if row is None or not lock:
            return RunRow(*row) if row else None
        run = get_run(tx, row[0], lock=True)
        if run is not None and run.is_current:
            return run
    raise StoreError(f"the current run of {workflow_id} kept changing while it was being "
                     "locked; try again")


def find_run(tx: Tx, ident: str, *, lock: bool = False) -> RunRow | None:
    """A run by workflow id (its latest run) or by run id."""
    return current_run(tx, ident, lock=lock) or get_run(tx, ident, lock=lock)


def insert_run(tx: Tx, *, run_id: str, workflow_id: str, workflow: str, args: list[Any],
               now: float, parent: tuple[str, str, int] | None = None,
               continued_from: str | None = None, reset_from: str | None = None,
               start_attrs: dict[str, Any] | None = None, lineage: str | None = None,
               first_event: bool = True, first_of_id: bool = False) -> RunRow:
    """Create a run with its WorkflowStarted event, due for its first workflow task.

    The caller holds ``tx.lock_workflow_id`` and has found no open run of the id (the index
    ``runs_open`` refuses a second one). ``first_of_id``: the workflow id is new
    (generated), so no earlier run is current."""
    if not first_of_id:
        tx.execute("UPDATE runs SET is_current = 0 WHERE workflow_id = ? AND is_current = 1",
                   (workflow_id,))
    input_text = payloads.dumps(args, "workflow input")
    parent_run_id, parent_id, parent_ref = parent if parent else (None, None, None)
    tx.execute(
        "INSERT INTO runs (run_id, workflow_id, workflow, status, input, started, updated, "
        "last_seq, wf_pending, parent_run_id, parent_id, parent_ref, continued_from, "
        "reset_from, is_current, step, lineage) "
        "VALUES (?,?,?,?,?,?,?,1,1,?,?,?,?,?,1,'starting',?)",
        (run_id, workflow_id, workflow, OPEN, input_text, now, now, parent_run_id,
         parent_id, parent_ref, continued_from, reset_from, lineage or run_id))
    run = RunRow(run_id, workflow_id, workflow, OPEN, input_text, None, None, now, now, None,
                 1, 1, 0, None, 0, 0, parent_run_id, parent_id, parent_ref, continued_from,
                 reset_from, None, 1, "starting", lineage or run_id)
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
    tx.execute("INSERT INTO events (run_id, seq, type, time, attrs) VALUES (?,?,?,?,?)",
               (run_id, 1, "WorkflowStarted", now, _attrs_json(attrs)))
    run.loaded_seq = 0
    run.fresh.append(Event(1, "WorkflowStarted", now, attrs))
    return run


def _attrs_json(attrs: dict[str, Any]) -> str:
    return payloads.encode(attrs)


def append(tx: Tx, run: RunRow, event_type: str, attrs: dict[str, Any], now: float,
           *, wake: bool = False, seq: int | None = None) -> Event:
    """Append one event to ``run`` (whose ``last_seq`` is kept current in memory)."""
    seq = run.last_seq + 1 if seq is None else seq
    tx.execute("INSERT INTO events (run_id, seq, type, time, attrs) VALUES (?,?,?,?,?)",
               (run.run_id, seq, event_type, now, _attrs_json(attrs)))
    run.last_seq = seq
    run.updated = now
    if wake:
        run.wf_pending = 1
    event = Event(seq, event_type, now, attrs)
    run.fresh.append(event)
    published = getattr(tx, "published", None)
    if published is not None:
        published.append((run, event))
    return event


def request_cancel(tx: Tx, run: RunRow, reason: str, now: float) -> bool:
    """Record a CancelRequested for ``run`` unless it already has one; True if recorded.

    A cancel request is a state, not a stream: asking again must not interrupt the
    compensation that the first request started."""
    if tx.scalar("SELECT 1 FROM events WHERE run_id = ? AND type = 'CancelRequested' "
                 "LIMIT 1", (run.run_id,)) is not None:
        return False
    append(tx, run, "CancelRequested", {"reason": reason} if reason else {}, now, wake=True)
    save_run_state(tx, run)
    return True


def save_run_state(tx: Tx, run: RunRow) -> None:
    """Write back the mutable columns of ``run`` after appends and status changes."""
    tx.execute(
        "UPDATE runs SET status = ?, result = ?, error = ?, updated = ?, closed = ?, "
        "last_seq = ?, wf_pending = ?, stuck = ?, stuck_reason = ?, paused = ?, "
        "retrying = ?, reset_to = ?, step = ? WHERE run_id = ?",
        (run.status, run.result, run.error, run.updated, run.closed, run.last_seq,
         run.wf_pending, run.stuck, run.stuck_reason, run.paused, run.retrying,
         run.reset_to, run.step, run.run_id))


def load_events(tx: Tx, run_id: str, after: int = 0, upto: int | None = None) -> list[Event]:
    """Events of a run with ``after < seq <= upto``, in order."""
    if upto is None:
        rows = tx.execute("SELECT seq, type, time, attrs FROM events WHERE run_id = ? AND "
                          "seq > ? ORDER BY seq", (run_id, after))
    else:
        rows = tx.execute("SELECT seq, type, time, attrs FROM events WHERE run_id = ? AND "
                          "seq > ? AND seq <= ? ORDER BY seq", (run_id, after, upto))
    loads = json.loads
    return [Event(seq, kind, when, loads(attrs)) for seq, kind, when, attrs in rows]


def register_workflow_types(tx: Tx, names: list[str], now: float) -> None:
    """Remember workflow types that a worker or console can run (``onward start`` checks)."""
    tx.executemany("INSERT INTO workflow_types (name, registered) VALUES (?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET registered = excluded.registered",
                   [(name, now) for name in names])
