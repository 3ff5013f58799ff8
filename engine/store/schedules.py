"""The store's schedule operations: schedule rows, the runs their fires started.

A schedule row carries its spec and policies, its counts, the fire it has buffered and its
next fire (``next_fire`` nominal, ``due`` with jitter added). ``schedule_runs`` records,
for each fire that started a run, the fire time and the run.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from typing import Any

from .base import Tx

__all__ = ["ScheduleRow", "add_fired_run", "delete", "due_ids", "get", "has_due", "insert",
           "list_all", "next_due", "recent_runs", "save"]


@dataclass
class ScheduleRow:
    """One schedule as stored (``args`` and ``spec`` are JSON text)."""

    schedule_id: str
    workflow: str
    args: str
    spec: str
    tz: str
    overlap: str
    catchup: float
    jitter: float
    paused: int
    note: str | None
    created: float
    fired: int
    skipped: int
    missed: int
    buffered: float | None
    last_workflow_id: str | None
    next_fire: float | None
    due: float | None


_COLUMNS = ", ".join(f.name for f in fields(ScheduleRow))
_MUTABLE = [f.name for f in fields(ScheduleRow)][8:]
_OPEN_PREVIOUS = ("EXISTS (SELECT 1 FROM runs WHERE runs.workflow_id = "
                  "schedules.last_workflow_id AND runs.status = 'running')")


def insert(tx: Tx, row: ScheduleRow) -> bool:
    """Add ``row`` unless its schedule id exists (also when another transaction adds it
    at the same moment); whether it was added."""
    return bool(tx.execute(
        f"INSERT INTO schedules ({_COLUMNS}) VALUES ({', '.join('?' * 18)}) "
        "ON CONFLICT (schedule_id) DO NOTHING RETURNING schedule_id", astuple(row)))


def get(tx: Tx, schedule_id: str, *, lock: bool = False) -> ScheduleRow | None:
    """The schedule ``schedule_id`` (locked until the transaction ends with ``lock``)."""
    row = tx.one(f"SELECT {_COLUMNS} FROM schedules WHERE schedule_id = ?"
                 + (tx.for_update if lock else ""), (schedule_id,))
    return ScheduleRow(*row) if row else None


def list_all(tx: Tx) -> list[ScheduleRow]:
    """Every schedule, by id."""
    return [ScheduleRow(*r) for r in
            tx.execute(f"SELECT {_COLUMNS} FROM schedules ORDER BY schedule_id")]


def save(tx: Tx, row: ScheduleRow) -> None:
    """Write the fields of ``row`` that change after it is created."""
    sets = ", ".join(f"{name} = ?" for name in _MUTABLE)
    values = [getattr(row, name) for name in _MUTABLE]
    tx.execute(f"UPDATE schedules SET {sets} WHERE schedule_id = ?",
               (*values, row.schedule_id))


def delete(tx: Tx, schedule_id: str) -> bool:
    """Remove a schedule and its record of fired runs (the runs stay); whether it existed."""
    if not tx.one("SELECT 1 FROM schedules WHERE schedule_id = ?", (schedule_id,)):
        return False
    tx.execute("DELETE FROM schedule_runs WHERE schedule_id = ?", (schedule_id,))
    tx.execute("DELETE FROM schedules WHERE schedule_id = ?", (schedule_id,))
    return True


def due_ids(tx: Tx, now: float, limit: int) -> list[str]:
    """Unpaused schedules with a fire due at ``now``, or a buffered fire whose previous
    run has closed; locked, skipping those another transaction holds."""
    rows = tx.execute(
        "SELECT schedule_id FROM schedules WHERE paused = 0 AND (due <= ? OR "
        f"(buffered IS NOT NULL AND NOT {_OPEN_PREVIOUS})) ORDER BY due LIMIT ?"
        + tx.lock_rows_of("schedules", skip_locked=True), (now, limit))
    return [r[0] for r in rows]


def has_due(tx: Tx, now: float) -> bool:
    """Whether ``due_ids`` would find anything (a cheap look before a write)."""
    return tx.one(
        "SELECT 1 FROM schedules WHERE paused = 0 AND (due <= ? OR "
        f"(buffered IS NOT NULL AND NOT {_OPEN_PREVIOUS})) LIMIT 1", (now,)) is not None


def next_due(tx: Tx) -> tuple[float | None, bool]:
    """The earliest due time of an unpaused schedule, and whether any holds a buffered
    fire (which starts when its previous run closes)."""
    due = tx.scalar("SELECT min(due) FROM schedules WHERE paused = 0")
    buffered = tx.one("SELECT 1 FROM schedules WHERE paused = 0 AND buffered IS NOT NULL "
                      "LIMIT 1") is not None
    return due, buffered


def add_fired_run(tx: Tx, schedule_id: str, fire_time: float, workflow_id: str,
                  run_id: str, now: float) -> None:
    """Record that the fire of ``schedule_id`` at ``fire_time`` started ``run_id``."""
    tx.execute("INSERT INTO schedule_runs (schedule_id, fire_time, workflow_id, run_id, "
               "started) VALUES (?,?,?,?,?)", (schedule_id, fire_time, workflow_id, run_id,
                                              now))


def recent_runs(tx: Tx, schedule_id: str, limit: int) -> list[tuple[Any, ...]]:
    """The latest ``limit`` fires that started runs: (fire time, workflow id, run id,
    run status), newest first."""
    return tx.execute(
        "SELECT s.fire_time, s.workflow_id, s.run_id, r.status FROM schedule_runs AS s "
        "LEFT JOIN runs AS r ON r.run_id = s.run_id WHERE s.schedule_id = ? "
        "ORDER BY s.fire_time DESC LIMIT ?", (schedule_id, limit))
