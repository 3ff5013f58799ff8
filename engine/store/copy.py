"""Copying an Onward database table by table: the store operations ``onward migrate`` uses.

The source is an SQLite store held with its write lock for the whole copy; the target is a
new, empty PostgreSQL schema filled inside one transaction. Rows are read in primary-key
order on both sides, with text keys compared byte by byte (SQLite's default; ``COLLATE "C"``
on PostgreSQL), so the two sides can be checked against each other row by row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .base import Row, Tx

TABLES: dict[str, tuple[str, ...]] = {
    "runs": ("run_id",),
    "events": ("run_id", "seq"),
    "activity_tasks": ("run_id", "ref"),
    "timers": ("run_id", "ref"),
    "manual_tasks": ("task_id",),
    "workflow_types": ("name",),
    "provider_log": ("id",),
    "rate_limits": ("name",),
    "updates": ("run_id", "update_id"),
    "search_attr_types": ("name",),
    "search_attrs": ("run_id", "name", "pos"),
    "run_meta": ("run_id",),
    "schedules": ("schedule_id",),
    "schedule_runs": ("schedule_id", "workflow_id"),
}
"""The copied tables and their primary keys, parents before children (``workers`` is not
copied: the target's workers register themselves)."""

ALL_TABLES = (*TABLES, "workers")
"""Every table of a database, copied or not."""


def attached_workers(tx: Tx) -> list[Row]:
    """The workers registered on a database: rows of (worker_id, host, pid, pid_start,
    heartbeat, lease_ttl), for the caller to judge which are alive."""
    return tx.execute("SELECT worker_id, host, pid, pid_start, heartbeat, lease_ttl "
                      "FROM workers")


def first_table_with_rows(tx: Tx) -> str | None:
    """The first table of ``ALL_TABLES`` holding any row, or None for an empty database."""
    for table in ALL_TABLES:
        if tx.one(f"SELECT 1 FROM {table} LIMIT 1"):
            return table
    return None


def source_columns(tx: Tx, table: str) -> tuple[list[str], list[str]]:
    """Column names of ``table`` in an SQLite source, and their kinds (``float``, ``int``
    or ``text``) as its schema declares them."""
    columns, kinds = [], []
    for _cid, name, declared, *_ in tx.execute(f"PRAGMA table_info({table})"):
        columns.append(name)
        declared = str(declared).upper()
        kinds.append("float" if declared in ("REAL", "DOUBLE PRECISION") else
                     "int" if "INT" in declared else "text")
    return columns, kinds


def read_source_table(tx: Tx, table: str, columns: Sequence[str]) -> Iterator[Row]:
    """The rows of ``table`` in an SQLite source (``columns`` in order), in primary-key
    order, streamed."""
    return tx.stream(f"SELECT {', '.join(columns)} FROM {table} "
                     f"ORDER BY {', '.join(TABLES[table])}")


def read_copied_table(tx: Tx, table: str, columns: Sequence[str], kinds: Sequence[str]
                      ) -> Iterator[Row]:
    """The rows of ``table`` in the PostgreSQL target, in the order ``read_source_table``
    gives: primary key, text compared byte by byte (``COLLATE "C"``), streamed.

    Args: ``kinds`` of ``columns`` as ``source_columns`` gives them."""
    order = ", ".join(f'{c} COLLATE "C"' if kinds[list(columns).index(c)] == "text" else c
                      for c in TABLES[table])
    return tx.stream(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")


def copy_into(tx: Tx, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]
              ) -> int:
    """Load ``rows`` into ``table`` of the target; how many were loaded."""
    return tx.copy_rows(table, columns, rows)


def restart_serials(tx: Tx) -> None:
    """Move the PostgreSQL target's ``provider_log`` id sequence past the copied ids, so
    the next entry gets a fresh one."""
    tx.execute("SELECT setval(pg_get_serial_sequence('provider_log', 'id'), "
               "coalesce(max(id), 0) + 1, false) FROM provider_log")


def held_attempts(tx: Tx) -> list[Row]:
    """Activity attempts some worker holds: rows of (run_id, ref, owner, attempt), in key
    order."""
    return tx.execute("SELECT run_id, ref, owner, attempt FROM activity_tasks "
                      "WHERE owner IS NOT NULL ORDER BY run_id, ref")
