"""The workers read model: who is registered on the database, how alive each looks and
which activity attempts (of which runs) each one holds — the console's Workers screen and
``Engine.workers()`` read it."""

from __future__ import annotations

import json
from typing import Any

from .events import iso
from .store import membership
from .store.base import Tx


def _activities(info: str) -> list[str]:
    try:
        return [str(name) for name in json.loads(info).get("activities", [])]
    except (ValueError, AttributeError):
        return []


def workers(tx: Tx, now: float) -> list[dict[str, Any]]:
    """One dict per registered worker: ``id``, ``host``, ``pid``, ``started``,
    ``concurrency``, ``lease_ttl``, ``heartbeat`` (its own clock's reading),
    ``heartbeat_age`` (``now`` minus that, meaningful when the clocks agree), ``read_at``
    (``now``: the engine's clock, which follows the database server's where it has one,
    so a reader on a host with a skewed clock measures ages against it), ``activities``
    it offers, and ``running``: the attempts it holds, each with ``id``,
    ``run_id``, ``ref``, ``name``, ``attempt`` and ``started``."""
    held: dict[str, list[dict[str, Any]]] = {}
    for owner, ident, run_id, ref, name, attempt, started in membership.held_attempts(tx):
        held.setdefault(owner, []).append({
            "id": ident, "run_id": run_id, "ref": ref, "name": name, "attempt": attempt,
            "started": iso(started) if started is not None else None})
    return [{
        "id": worker_id, "host": host, "pid": pid, "started": iso(started),
        "concurrency": concurrency, "lease_ttl": lease_ttl, "heartbeat": iso(heartbeat),
        "heartbeat_age": round(max(0.0, now - heartbeat), 3), "read_at": iso(now),
        "activities": _activities(info), "running": held.get(worker_id, []),
    } for worker_id, host, pid, started, heartbeat, lease_ttl, concurrency, info
        in membership.registered_workers(tx)]
