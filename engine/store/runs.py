"""Runs, their events, workflow types and the provider log: the store operations on them.

Every function here takes an open transaction (``Tx``) and does one thing the engine needs
(find a run, create one, append an event, save a run's state, ...) in SQL both backends
accept. Row locks are taken with ``tx.for_update``, which is empty where the backend's
writers are serialised anyway. The engine's bookkeeping around these rows (events just
appended, observers to tell) lives in ``engine.history``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import payloads
from ..errors import StoreError
from ..events import Event
from .base import Row, Tx

RUN_COLUMNS = (
    "run_id, workflow_id, workflow, status, input, result, error, started, updated, closed, "
    "last_seq, wf_pending, stuck, stuck_reason, paused, retrying, parent_run_id, parent_id, "
    "parent_ref, continued_from, reset_from, reset_to, is_current, step, lineage, "
    "updates_pending"
)
"""The columns of ``runs`` in ``RunRow``'s field order."""

OPEN = "running"
"""The status of a run that has not closed."""

LOOKUP_ROUNDS = 20
"""How often a locking lookup follows an id whose current run changed while it waited."""


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
    updates_pending: int = 0
    """Update requests wait for this run's next workflow task to validate them."""
    fresh: list[Event] = field(default_factory=list, repr=False)
    """Events appended in this transaction since the row was read (newest last)."""
    loaded_seq: int = -1
    stored_status: str = field(default="", repr=False)
    """The status as read or inserted (``create_run``): ``save_run_state`` leaves the
    column (and the indexes on it) alone while ``status`` still equals it."""
    stored_closed: float | None = field(init=False, repr=False)
    """``closed`` as read or inserted (likewise, for ``runs_by_close``)."""

    def __post_init__(self) -> None:
        if self.loaded_seq < 0:
            self.loaded_seq = self.last_seq
        if not self.stored_status:
            self.stored_status = self.status
        self.stored_closed = self.closed

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def args(self) -> list[Any]:
        return payloads.loads(self.input) or []


def runs_from(rows: Iterable[Row]) -> list[RunRow]:
    """``RunRow``s of rows selected with ``RUN_COLUMNS``."""
    return [RunRow(*row) for row in rows]


# -- finding runs -------------------------------------------------------------------------

def get_run(tx: Tx, run_id: str, *, lock: bool = False) -> RunRow | None:
    """The run with this run id.

    Args: ``run_id``; ``lock``: hold the row until the transaction ends (write
    transactions only have an effect).
    Returns: the run, or None if there is none."""
    suffix = tx.for_update if lock else ""
    row = tx.one(_GET_RUN_SQL + suffix if suffix else _GET_RUN_SQL, (run_id,))
    return RunRow(*row) if row else None


_GET_RUN_SQL = f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?"
"""``get_run``'s query, built once (the lock suffix added where the backend has one)."""


def current_run(tx: Tx, workflow_id: str, *, lock: bool = False) -> RunRow | None:
    """The latest run of a workflow id; with ``lock``, locked until the transaction ends.

    The row is found first and then locked by its run id. (Locking by ``is_current = 1``
    would, on PostgreSQL, wait for a transaction that replaces the current run, such as a
    continue-as-new, and then find the old row no longer current and return nothing.)
    If the run stopped being current while we waited, the id is looked up again.

    Returns: the run, or None if the id has none.
    Raises: StoreError if the current run kept changing for ``LOOKUP_ROUNDS`` lookups."""
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
    """A run by workflow id (its latest run) or by run id; None if neither names one.

    ``lock`` as for ``current_run``."""
    return current_run(tx, ident, lock=lock) or get_run(tx, ident, lock=lock)


def running_runs_of(tx: Tx, workflows: Sequence[str]) -> list[RunRow]:
    """Open runs of these workflow types (in no particular order); [] for no types."""
    if not workflows:
        return []
    marks = ",".join("?" * len(workflows))
    return runs_from(tx.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' "
                                f"AND workflow IN ({marks})", list(workflows)))


def all_runs(tx: Tx) -> list[RunRow]:
    """Every run, oldest start first."""
    return runs_from(tx.execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started"))


def open_runs(tx: Tx) -> list[RunRow]:
    """Every open run (in no particular order)."""
    return runs_from(tx.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running'"))


def recently_closed_runs(tx: Tx, limit: int) -> list[RunRow]:
    """Up to ``limit`` runs that completed, failed, were canceled or continued as new
    (terminated ones are left out), latest change first."""
    return runs_from(tx.execute(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE status IN ('completed', 'failed', "
        "'canceled', 'continued_as_new') ORDER BY updated DESC LIMIT ?", (limit,)))


# -- rows read ahead (engine.store.batched) ------------------------------------------------

def hold(tx: Tx, runs: Iterable[RunRow]) -> None:
    """Keep ``runs`` (read and locked in ``tx`` ahead of their use) for ``take_held``.

    A held row is dropped as soon as ``tx`` saves that run or appends to it any other
    way (``save_run_state``, ``add_event``): a row taken is always the run as stored."""
    held = tx.held_runs
    if held is None:
        held = tx.held_runs = {}
    for run in runs:
        held[run.run_id] = run


def take_held(tx: Tx, run_id: str) -> RunRow | None:
    """The held row of ``run_id`` (no longer held), or None: read it the ordinary way."""
    held = tx.held_runs
    if not held:
        return None
    run: RunRow | None = held.pop(run_id, None)
    return run


def drop_held(tx: Tx) -> None:
    """Forget every held row (the batch that read them is over)."""
    tx.held_runs = None


# -- writing runs ---------------------------------------------------------------------------

def create_run(tx: Tx, run: RunRow, *, replaces_current: bool = True,
               runs_inline: bool = False) -> None:
    """Store a new run as its id's current run.

    Args: ``run`` (its ``run_id`` new); ``replaces_current``: an earlier run of the id may
    be current and stops being so (False only for a workflow id known to be new);
    ``runs_inline``: its first workflow task runs in this transaction, which saves the
    row again (``save_run_state``), so it is stored not due (``wf_pending`` 0) and never
    enters the ``runs_pending`` index only to leave it before the commit.
    The caller holds ``tx.lock_workflow_id`` and has found no open run of the id.
    Raises: the backend's integrity error if the id already has an open run (the index
    ``runs_open`` refuses a second one) or the run id exists."""
    if replaces_current:
        tx.execute("UPDATE runs SET is_current = 0 WHERE workflow_id = ? AND is_current = 1",
                   (run.workflow_id,))
    tx.execute(
        "INSERT INTO runs (run_id, workflow_id, workflow, status, input, started, updated, "
        "last_seq, wf_pending, parent_run_id, parent_id, parent_ref, continued_from, "
        "reset_from, is_current, step, lineage) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?,?)",
        (run.run_id, run.workflow_id, run.workflow, run.status, run.input, run.started,
         run.updated, run.last_seq, 0 if runs_inline else run.wf_pending,
         run.parent_run_id, run.parent_id,
         run.parent_ref, run.continued_from, run.reset_from, run.step, run.lineage))
    run.stored_status, run.stored_closed = run.status, run.closed


_SAVE_STATE_SQL = (
    "UPDATE runs SET status = ?, result = ?, error = ?, updated = ?, closed = ?, "
    "last_seq = ?, wf_pending = ?, stuck = ?, stuck_reason = ?, paused = ?, "
    "retrying = ?, reset_to = ?, step = ?, updates_pending = ? WHERE run_id = ?")
_SAVE_STEP_SQL = (
    "UPDATE runs SET result = ?, error = ?, updated = ?, "
    "last_seq = ?, wf_pending = ?, stuck = ?, stuck_reason = ?, paused = ?, "
    "retrying = ?, reset_to = ?, step = ?, updates_pending = ? WHERE run_id = ?")
"""Without ``status`` and ``closed``: SQLite rewrites every index an UPDATE names a column
of, changed or not; three indexes hang on ``status`` (``runs_by_status``, ``runs_open``,
``runs_by_status_type``) and one on ``closed`` (``runs_by_close``). Leaving them out while
they are unchanged spares ~3 of the ~8 pages a step's commit would write."""


def save_run_state(tx: Tx, run: RunRow) -> None:
    """Write back the mutable columns of ``run`` (status, result, error, times, last_seq,
    flags, reset link, step) after appends and status changes."""
    if tx.held_runs:
        tx.held_runs.pop(run.run_id, None)
    if run.status == run.stored_status and run.closed == run.stored_closed:
        tx.execute(_SAVE_STEP_SQL, (
            run.result, run.error, run.updated, run.last_seq, run.wf_pending, run.stuck,
            run.stuck_reason, run.paused, run.retrying, run.reset_to, run.step,
            run.updates_pending, run.run_id))
    else:
        tx.execute(_SAVE_STATE_SQL, (
            run.status, run.result, run.error, run.updated, run.closed, run.last_seq,
            run.wf_pending, run.stuck, run.stuck_reason, run.paused, run.retrying,
            run.reset_to, run.step, run.updates_pending, run.run_id))


# -- events -------------------------------------------------------------------------------

def add_event(tx: Tx, run_id: str, event: Event, attrs_text: str | None = None) -> None:
    """Store one event of a run (its attributes as JSON: ``attrs_text`` if given, the
    caller's encoding of ``event.attrs``).

    Raises: the backend's integrity error if the run already has an event ``event.seq``."""
    if tx.held_runs:
        tx.held_runs.pop(run_id, None)
    tx.execute("INSERT INTO events (run_id, seq, type, time, attrs) VALUES (?,?,?,?,?)",
               (run_id, event.seq, event.type, event.time,
                payloads.encode(event.attrs) if attrs_text is None else attrs_text))


def load_events(tx: Tx, run_id: str, after: int = 0, upto: int | None = None) -> list[Event]:
    """Events of a run with ``after < seq <= upto`` (no upper bound if None), in order."""
    if upto is None:
        rows = tx.execute("SELECT seq, type, time, attrs FROM events WHERE run_id = ? AND "
                          "seq > ? ORDER BY seq", (run_id, after))
    else:
        rows = tx.execute("SELECT seq, type, time, attrs FROM events WHERE run_id = ? AND "
                          "seq > ? AND seq <= ? ORDER BY seq", (run_id, after, upto))
    loads = payloads.decode
    return [Event(seq, kind, when, loads(attrs)) for seq, kind, when, attrs in rows]


def cancel_was_requested(tx: Tx, run_id: str) -> bool:
    """Whether the run's history holds a CancelRequested event."""
    return tx.scalar("SELECT 1 FROM events WHERE run_id = ? AND type = 'CancelRequested' "
                     "LIMIT 1", (run_id,)) is not None


# -- workflow types and the provider log ----------------------------------------------------

def register_workflow_types(tx: Tx, names: Iterable[str], now: float) -> None:
    """Remember workflow types that a worker or console can run (``onward start`` checks);
    a name already known gets ``now`` as its registration time."""
    tx.executemany("INSERT INTO workflow_types (name, registered) VALUES (?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET registered = excluded.registered",
                   [(name, now) for name in names])


def workflow_type_known(tx: Tx, name: str) -> bool:
    """Whether a worker or console ever registered the workflow type ``name``."""
    return tx.scalar("SELECT 1 FROM workflow_types WHERE name = ?", (name,)) is not None


def workflow_type_names(tx: Tx) -> list[str]:
    """Every registered workflow type, sorted by name."""
    return [row[0] for row in tx.execute("SELECT name FROM workflow_types ORDER BY name")]


def add_provider_log_entry(tx: Tx, *, time: float, worker_id: str | None, provider: str,
                           version: str | None, action: str, message: str | None) -> None:
    """Keep one provider load, reload or error in the database's provider log."""
    tx.execute("INSERT INTO provider_log (time, worker_id, provider, version, action, "
               "message) VALUES (?,?,?,?,?,?)",
               (time, worker_id, provider, version, action, message))


def provider_log(tx: Tx) -> list[Row]:
    """The stored provider log, oldest first: rows of (time, worker_id, provider, version,
    action, message)."""
    return tx.execute("SELECT time, worker_id, provider, version, action, message "
                      "FROM provider_log ORDER BY id")
