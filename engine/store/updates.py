"""Update requests: stored before a worker validates them, then followed to their end.

A row's status goes pending → accepted → completed | failed, or pending → rejected (a
validator said no, or the run closed first: nothing is recorded in history then).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Tx

FINISHED = ("completed", "failed", "rejected")
"""Statuses after which a request's row no longer changes."""


@dataclass(slots=True)
class UpdateRow:
    """One update request as stored (``args``, ``result``, ``error``: JSON text)."""

    run_id: str
    update_id: str
    workflow_id: str
    name: str
    args: str
    status: str
    result: str | None
    error: str | None
    seq: int | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


_COLUMNS = "run_id, update_id, workflow_id, name, args, status, result, error, seq"


def add_request(tx: Tx, run_id: str, update_id: str, workflow_id: str, name: str, args: str,
                now: float) -> None:
    """Store a new pending request (the caller checked that ``update_id`` is new)."""
    tx.execute("INSERT INTO updates (run_id, update_id, workflow_id, name, args, status, "
               "created) VALUES (?,?,?,?,?,'pending',?)",
               (run_id, update_id, workflow_id, name, args, now))


def get(tx: Tx, run_id: str, update_id: str) -> UpdateRow | None:
    """The request ``update_id`` of run ``run_id``, if there is one."""
    row = tx.one(f"SELECT {_COLUMNS} FROM updates WHERE run_id = ? AND update_id = ?",
                 (run_id, update_id))
    return UpdateRow(*row) if row else None


def pending(tx: Tx, run_id: str) -> list[UpdateRow]:
    """The run's requests waiting for validation, oldest first."""
    rows = tx.execute(f"SELECT {_COLUMNS} FROM updates WHERE run_id = ? AND status = 'pending' "
                      "ORDER BY created, update_id", (run_id,))
    return [UpdateRow(*row) for row in rows]


def accept(tx: Tx, run_id: str, update_id: str, seq: int) -> None:
    """The request became history event ``seq`` (UpdateAccepted)."""
    tx.execute("UPDATE updates SET status = 'accepted', seq = ? WHERE run_id = ? AND "
               "update_id = ?", (seq, run_id, update_id))


def finish(tx: Tx, run_id: str, update_id: str, status: str, now: float, *,
           result: str | None = None, error: str | None = None) -> None:
    """End a request: ``completed`` (with ``result``), ``failed`` or ``rejected`` (``error``)."""
    tx.execute("UPDATE updates SET status = ?, result = ?, error = ?, finished = ? WHERE "
               "run_id = ? AND update_id = ?", (status, result, error, now, run_id, update_id))


def end_unfinished(tx: Tx, run_id: str, error: str, now: float) -> None:
    """A closing run ends its open requests: pending ones rejected, accepted ones failed."""
    tx.execute("UPDATE updates SET status = CASE status WHEN 'pending' THEN 'rejected' ELSE "
               "'failed' END, error = ?, finished = ? WHERE run_id = ? AND status IN "
               "('pending', 'accepted')", (error, now, run_id))
