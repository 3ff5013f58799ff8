"""The pizza kitchen: payment, oven and delivery for the pizza-order flow (a saga).

Activities, each exactly-once per idempotency key however often an attempt repeats:
    ``kitchen.charge(order_id, cents) -> {"order_id", "cents", "charge_id"}``
        Takes the customer's money (ledger row keyed by the idempotency key).
    ``kitchen.bake(order_id, pizza) -> {"order_id", "pizza", "baked_at"}``
        Bakes one pizza, recorded as one line in ``pizzas.jsonl``: a retried or
        recovered attempt never bakes a second pizza.
    ``kitchen.refund(order_id, cents) -> {"order_id", "cents", "charge_id"}``
        Gives money back (a negative ledger row); the saga's compensation for ``charge``.
    ``kitchen.deliver(order_id, address) -> {"order_id", "address", "delivered_at"}``

Switches, as files in the data directory (``$ONWARD_DATA``, default ``./onward-data``):
    ``kitchen.out_of_dough``  baking fails *non-retryably* (``OutOfDough``): the order
                              cannot be made, so the flow refunds the charge.
    ``kitchen.no_driver``     delivery fails *retryably* (``NoDriver``) until removed.

Money lives in a SQLite ledger (``kitchen.sqlite3``, ``INSERT OR IGNORE`` in one
transaction); pizzas and deliveries in JSON-lines files appended under an ``fcntl`` lock.
Both are safe for several worker processes. ``pizzas_baked``, ``net_charged`` and
``deliveries`` look inside, for tests and demos.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from onward import ApplicationError, activity, hookimpl

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    idempotency_key TEXT PRIMARY KEY,
    charge_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    cents INTEGER NOT NULL,          -- positive: charge, negative: refund
    at REAL NOT NULL
);
"""


def data_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the kitchen's state (created if missing)."""
    path = Path(data_dir or os.environ.get("ONWARD_DATA", "onward-data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------- money


def _connect(data: Path) -> sqlite3.Connection:
    # Switching a new file to WAL does not wait on SQLite's busy handler: openers take
    # turns on a lock file so two first calls at once cannot see "database is locked".
    with open(data / "kitchen.sqlite3.opening", "a") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        conn = sqlite3.connect(data / "kitchen.sqlite3", timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
    return conn


def _move_money(order_id: str, cents: int) -> dict[str, Any]:
    key = activity.info().idempotency_key
    conn = _connect(data_path())
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT OR IGNORE INTO ledger VALUES (?, ?, ?, ?, ?)",
                         (key, f"ch-{uuid.uuid4().hex[:12]}", order_id, cents, time.time()))
            charge_id, booked_order, booked = conn.execute(
                "SELECT charge_id, order_id, cents FROM ledger WHERE idempotency_key = ?",
                (key,)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return {"order_id": booked_order, "cents": abs(booked), "charge_id": charge_id}


@activity.defn(name="kitchen.charge")
def charge(order_id: str, cents: int) -> dict[str, Any]:
    """Charge the customer for ``order_id``, once per idempotency key."""
    return _move_money(order_id, abs(int(cents)))


@activity.defn(name="kitchen.refund")
def refund(order_id: str, cents: int) -> dict[str, Any]:
    """Refund ``cents`` for ``order_id``, once per idempotency key."""
    return _move_money(order_id, -abs(int(cents)))


# --------------------------------------------------------------------- oven and driver


def _record_once(filename: str, record: dict[str, Any]) -> dict[str, Any]:
    """Append ``record`` to a JSON-lines file unless this idempotency key already did."""
    key = activity.info().idempotency_key
    data = data_path()
    path = data / filename
    with open(data / "kitchen.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for done in _read(path):
                if done.get("key") == key:
                    return {k: v for k, v in done.items() if k != "key"}
            torn = path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
            with open(path, "a", encoding="utf-8") as out:
                out.write(("\n" if torn else "") + json.dumps({"key": key, **record}) + "\n")
                out.flush()
                os.fsync(out.fileno())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return record


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:  # a line torn by a crash mid-write: that step never finished
            continue
    return records


@activity.defn(name="kitchen.bake")
def bake(order_id: str, pizza: str) -> dict[str, Any]:
    """Bake one ``pizza`` for ``order_id``: exactly one per idempotency key."""
    if (data_path() / "kitchen.out_of_dough").exists():
        raise ApplicationError(f"out of dough: cannot bake {pizza} for order {order_id}",
                               type="OutOfDough", non_retryable=True)
    return _record_once("pizzas.jsonl",
                        {"order_id": order_id, "pizza": pizza, "baked_at": time.time()})


@activity.defn(name="kitchen.deliver")
def deliver(order_id: str, address: str) -> dict[str, Any]:
    """Deliver ``order_id`` to ``address``; retryable while no driver is free."""
    if (data_path() / "kitchen.no_driver").exists():
        raise ApplicationError("no driver is free right now", type="NoDriver")
    return _record_once("deliveries.jsonl", {"order_id": order_id, "address": address,
                                             "delivered_at": time.time()})


@hookimpl
def onward_activities() -> list[Any]:
    return [charge, bake, refund, deliver]


# --------------------------------------------------------------------- for tests and demos


def pizzas_baked(order_id: str, data_dir: str | os.PathLike[str] | None = None) -> int:
    """How many pizzas were baked for ``order_id``."""
    return sum(1 for p in _read(data_path(data_dir) / "pizzas.jsonl")
               if p.get("order_id") == order_id)


def net_charged(order_id: str, data_dir: str | os.PathLike[str] | None = None) -> int:
    """Cents charged for ``order_id`` minus cents refunded."""
    conn = _connect(data_path(data_dir))
    try:
        (total,) = conn.execute("SELECT COALESCE(SUM(cents), 0) FROM ledger WHERE order_id = ?",
                                (order_id,)).fetchone()
    finally:
        conn.close()
    return int(total)


def deliveries(data_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every delivery made, oldest first."""
    return _read(data_path(data_dir) / "deliveries.jsonl")
