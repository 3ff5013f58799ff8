"""Worker membership in the store: the ``workers`` table.

A worker registers when it starts, renews its heartbeat while it lives, advertises the
activities it offers, and deregisters when it stops; a live worker reads the others to
judge which died (engine.liveness decides) and takes their work over. Each operation
takes an open transaction (``Tx``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .base import Tx


@dataclass(frozen=True, slots=True)
class WorkerEntry:
    """What another worker last recorded about itself."""

    worker_id: str
    host: str
    pid: int
    pid_start: str
    heartbeat: float
    lease_ttl: float


def _advertisement(activities: Sequence[str]) -> str:
    return json.dumps({"activities": list(activities)})


def register_worker(tx: Tx, worker_id: str, *, host: str, pid: int, pid_start: str,
                    now: float, lease_ttl: float, concurrency: int,
                    activities: Sequence[str]) -> None:
    """Record worker ``worker_id`` (process ``pid``, started at ``pid_start``, on ``host``)
    as alive at ``now``, offering ``activities``. A worker already registered under that id
    (one presumed dead that rejoins) keeps its row: only its heartbeat and offer change."""
    tx.execute(
        "INSERT INTO workers (worker_id, host, pid, pid_start, started, heartbeat, "
        "lease_ttl, concurrency, info) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (worker_id) "
        "DO UPDATE SET heartbeat = excluded.heartbeat, info = excluded.info",
        (worker_id, host, pid, pid_start, now, now, lease_ttl, concurrency,
         _advertisement(activities)))


def advertise_activities(tx: Tx, worker_id: str, activities: Sequence[str]) -> None:
    """Record that worker ``worker_id`` now offers ``activities`` (after code was loaded)."""
    tx.execute("UPDATE workers SET info = ? WHERE worker_id = ?",
               (_advertisement(activities), worker_id))


def offered_activities(tx: Tx) -> set[str]:
    """Every activity name some registered worker offers (unreadable offers are ignored)."""
    offered: set[str] = set()
    for (info,) in tx.execute("SELECT info FROM workers"):
        try:
            offered.update(json.loads(info).get("activities", []))
        except (ValueError, AttributeError):
            continue
    return offered


def renew_heartbeat(tx: Tx, worker_id: str, value: float) -> bool:
    """Set worker ``worker_id``'s heartbeat to ``value`` (others see it alive while the
    value changes); False when it is no longer registered (it was presumed dead)."""
    return bool(tx.execute("UPDATE workers SET heartbeat = ? WHERE worker_id = ? "
                           "RETURNING worker_id", (value, worker_id)))


def other_workers(tx: Tx, worker_id: str) -> list[WorkerEntry]:
    """Every registered worker but ``worker_id``: the candidates it judges for death."""
    return [WorkerEntry(*row) for row in tx.execute(
        "SELECT worker_id, host, pid, pid_start, heartbeat, lease_ttl FROM workers "
        "WHERE worker_id <> ?", (worker_id,))]


def deregister_worker(tx: Tx, worker_id: str) -> None:
    """Remove worker ``worker_id`` (stopped, or taken over from after it died)."""
    tx.execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))


def registered_workers(tx: Tx) -> list[tuple[str, str, int, float, float, float, int, str]]:
    """Every registered worker for operators to read: rows of (worker_id, host, pid,
    started, heartbeat, lease_ttl, concurrency, info JSON), by worker id."""
    return [tuple(row) for row in tx.execute(
        "SELECT worker_id, host, pid, started, heartbeat, lease_ttl, concurrency, info "
        "FROM workers ORDER BY worker_id")]


def held_attempts(tx: Tx) -> list[tuple[str, str, str, int, str, int, float | None]]:
    """Activity attempts some worker is running: rows of (owner, workflow_id, run_id, ref,
    activity name, attempt, attempt_started), by owner then start."""
    return [tuple(row) for row in tx.execute(
        "SELECT a.owner, r.workflow_id, a.run_id, a.ref, a.name, a.attempt, "
        "a.attempt_started FROM activity_tasks a JOIN runs r ON r.run_id = a.run_id "
        "WHERE a.owner IS NOT NULL ORDER BY a.owner, a.attempt_started")]
