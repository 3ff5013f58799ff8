"""The bank: a pretend payment system that pays each idempotency key at most once.

Activities
    ``bank.deposit(account, cents) -> {"receipt", "account", "cents"}``
        Pays ``cents`` into ``account``. The attempt's idempotency key (stable across
        retries, crashes and worker moves) is the primary key of the payment ledger, and
        the insert and the read-back share one transaction, so however often an attempt
        is repeated the money moves once and every repeat gets the original receipt.
        At most four deposits run at once across all workers (``max_concurrent=4``).
    ``bank.balance(account) -> int``
        The account's balance in cents.

Switches an operator (or a test) can flip, as files in the data directory
(``$ONWARD_DATA``, default ``./onward-data``):
    ``bank.outage``   the bank is down: calls fail with a *retryable* ``BankOutage``;
                      runs keep retrying and finish once the file is removed.
    ``bank.closed``   the bank has closed for good: a *non-retryable* ``BankClosed``.

The ledger is a SQLite file (``bank.sqlite3``) written with ``BEGIN IMMEDIATE``, so any
number of worker processes may pay through it at once. ``paid_count(key)``,
``call_count(key)`` and ``ledger_rows()`` let tests and demos look inside.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from onward import ApplicationError, activity, hookimpl

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    idempotency_key TEXT PRIMARY KEY,
    receipt TEXT NOT NULL,
    account TEXT NOT NULL,
    cents INTEGER NOT NULL,
    paid_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    called_at REAL NOT NULL
);
"""


def data_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the bank's state (created if missing)."""
    path = Path(data_dir or os.environ.get("ONWARD_DATA", "onward-data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _connect(data: Path) -> sqlite3.Connection:
    # Switching a new file to WAL does not wait on SQLite's busy handler: openers take
    # turns on a lock file so two first calls at once cannot see "database is locked".
    with open(data / "bank.sqlite3.opening", "a") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        conn = sqlite3.connect(data / "bank.sqlite3", timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
    return conn


def _check_open(data: Path) -> None:
    if (data / "bank.closed").exists():
        raise ApplicationError("bank has closed for good", type="BankClosed", non_retryable=True)
    if (data / "bank.outage").exists():
        raise ApplicationError("bank is down (outage)", type="BankOutage")


@activity.defn(name="bank.deposit", max_concurrent=4)
def deposit(account: str, cents: int) -> dict[str, Any]:
    """Pay ``cents`` into ``account`` once per idempotency key; return the receipt."""
    info = activity.info()
    data = data_path()
    conn = _connect(data)
    try:
        conn.execute("INSERT INTO calls (idempotency_key, attempt, called_at) VALUES (?, ?, ?)",
                     (info.idempotency_key, info.attempt, time.time()))
        _check_open(data)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT OR IGNORE INTO payments (idempotency_key, receipt, account, cents, paid_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (info.idempotency_key, f"rcpt-{uuid.uuid4().hex[:12]}", account, cents,
                 time.time()))
            receipt, paid_account, paid_cents = conn.execute(
                "SELECT receipt, account, cents FROM payments WHERE idempotency_key = ?",
                (info.idempotency_key,)).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    if (paid_account, paid_cents) != (account, cents):
        raise ApplicationError(
            f"idempotency key {info.idempotency_key} already paid {paid_cents} cents into "
            f"{paid_account}; refusing a different payment under the same key",
            type="IdempotencyConflict", non_retryable=True)
    return {"receipt": receipt, "account": account, "cents": cents}


@activity.defn(name="bank.balance")
def balance(account: str) -> int:
    """The balance of ``account`` in cents."""
    data = data_path()
    _check_open(data)
    conn = _connect(data)
    try:
        (total,) = conn.execute("SELECT COALESCE(SUM(cents), 0) FROM payments WHERE account = ?",
                                (account,)).fetchone()
    finally:
        conn.close()
    return int(total)


@hookimpl
def onward_activities() -> list[Any]:
    return [deposit, balance]


# --------------------------------------------------------------------- for tests and demos


def paid_count(key: str, data_dir: str | os.PathLike[str] | None = None) -> int:
    """How many payments the ledger holds for idempotency ``key`` (0 or 1, never more)."""
    return sum(1 for row in ledger_rows(data_dir) if row["idempotency_key"] == key)


def call_count(key: str, data_dir: str | os.PathLike[str] | None = None) -> int:
    """How many times ``bank.deposit`` was called with idempotency ``key`` (any outcome)."""
    conn = _connect(data_path(data_dir))
    try:
        (count,) = conn.execute("SELECT COUNT(*) FROM calls WHERE idempotency_key = ?",
                                (key,)).fetchone()
    finally:
        conn.close()
    return int(count)


def ledger_rows(data_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every payment, oldest first."""
    conn = _connect(data_path(data_dir))
    try:
        cursor = conn.execute("SELECT idempotency_key, receipt, account, cents, paid_at "
                              "FROM payments ORDER BY paid_at, rowid")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.close()


def set_outage(on: bool = True, data_dir: str | os.PathLike[str] | None = None) -> None:
    """Take the bank down (retryable failures) or bring it back."""
    _switch(data_path(data_dir) / "bank.outage", on)


def set_closed(on: bool = True, data_dir: str | os.PathLike[str] | None = None) -> None:
    """Close the bank for good (non-retryable failures) or reopen it."""
    _switch(data_path(data_dir) / "bank.closed", on)


def _switch(path: Path, on: bool) -> None:
    if on:
        path.touch()
    else:
        path.unlink(missing_ok=True)
