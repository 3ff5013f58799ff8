"""The narrow interface every store backend offers: connections, transactions, changes.

The engine's SQL lives in the store's operation modules (``engine.store.queues``,
``engine.store.membership``, ...), written once with ``?`` placeholders in SQL both
backends accept. Where the backends differ, the difference is stated here, as a method or
attribute of ``Tx`` or ``Store`` (``Tx.lock_rows_of``, ``Store.schema_types``), and each
backend implements it: no backend rewrites the engine's SQL. A backend supplies
connections, transactions and savepoints, the words of its DDL, and a cheap way to notice
that another process committed.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .schema import SchemaTypes, migrations

Row = tuple[Any, ...]
COPY_BATCH = 1000
"""Rows per ``executemany`` in the default ``Tx.copy_rows``."""


class Tx(abc.ABC):
    """An open transaction on one connection."""

    for_update: str = ""
    """Suffix of a one-table SELECT that locks the rows it reads until the transaction
    ends: the value of ``lock_rows_of()``, as an attribute."""

    def lock_rows_of(self, alias: str | None = None, *, skip_locked: bool = False) -> str:
        """The clause that ends a SELECT to lock, until this transaction ends, the rows it
        reads of ``alias`` (a table or alias named in its FROM; None: of every table).

        With ``skip_locked``, rows another transaction holds are passed over instead of
        waited for (how concurrent claimers share a queue). The default, for backends
        whose write transactions exclude each other (SQLite) and for read-only snapshots,
        is '' (nothing to lock). Raises ValueError for an ``alias`` that is not a plain
        identifier."""
        _check_alias(alias)
        return ""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; all result rows."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a statement's result, or None."""
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.one(sql, params)
        return row[0] if row else None

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""

    batch_reads: bool = False
    """Whether each read waits for a round trip to a server (PostgreSQL), so that the
    engine groups the reads of a turn's runs (``engine.store.batched``, in that backend's
    dialect); False where a read costs no more alone (SQLite)."""

    held_runs: dict[str, Any] | None = None
    """Run rows read and locked ahead of their use in this transaction (``runs.hold``)."""

    def execute_together(self, statements: Sequence[tuple[str, Sequence[Any]]]
                         ) -> list[list[Row]]:
        """Run ``statements`` (sql, params) in order; each one's rows. A backend that can
        sends them all before waiting for any answer (one round trip)."""
        return [self.execute(sql, params) for sql, params in statements]

    # -- optional capabilities: a backend overrides them where it has a better way ------
    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000
               ) -> Iterator[Row]:
        """The rows of a query, read ``size`` at a time where the backend can (a server-side
        cursor); by default all at once through ``execute``."""
        yield from self.execute(sql, params)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]
                  ) -> int:
        """Bulk-load ``rows`` (values in ``columns`` order) into ``table``; how many.

        By default one ``INSERT`` per row through ``executemany``, ``COPY_BATCH`` rows at a
        time; a backend with a bulk path (PostgreSQL's COPY) overrides it. ``table`` and
        ``columns`` are the engine's own names, never user input."""
        statement = (f"INSERT INTO {table} ({', '.join(columns)}) "
                     f"VALUES ({', '.join('?' * len(columns))})")
        count = 0
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= COPY_BATCH:
                self.executemany(statement, batch)
                count, batch = count + len(batch), []
        if batch:
            self.executemany(statement, batch)
            count += len(batch)
        return count

    @abc.abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: rolled back alone if its block raises."""

    @abc.abstractmethod
    def lock_workflow_id(self, workflow_id: str) -> None:
        """Hold back, until this transaction ends, every other transaction that creates a
        run of ``workflow_id`` (start, rerun, retry, reset, child start).

        Taken before the id is looked up, so the lookup sees what the previous holder
        committed. A backend whose writers are serialised anyway does nothing."""


class Store(abc.ABC):
    """A database holding runs, histories, queues and tasks."""

    url: str
    commits: int
    schema_types: SchemaTypes
    """The words of DDL this backend uses (float column, assigned integer key, clustered
    table suffix), formatted into ``engine.store.schema.migrations``."""
    plans_by_statistics: bool = False
    """Whether the database plans queries from statistics it keeps (PostgreSQL); if not
    (SQLite, without ANALYZE), list-filter pages are planned by ``engine.store.query_plan``."""
    batch_isolation: str = "savepoint"
    """How the group committer keeps the jobs of one shared transaction apart
    (``engine.group_commit.ISOLATIONS``): each in a savepoint where one job's statements
    may lose to another transaction (PostgreSQL: a conflict rolls back that job alone);
    ``redo`` where they cannot (SQLite's one writer): the batch runs without savepoints
    and only a batch in which a job raised is rolled back and done again isolated."""

    @classmethod
    def migrations(cls) -> list[list[str]]:
        """The schema migrations in this backend's DDL; entry i upgrades version i to i+1."""
        return migrations(cls.schema_types)

    @abc.abstractmethod
    def write(self) -> AbstractContextManager[Tx]:
        """A write transaction (exclusive of other writers where the backend needs it)."""

    @abc.abstractmethod
    def read(self) -> AbstractContextManager[Tx]:
        """A read-only snapshot."""

    @abc.abstractmethod
    def change_token(self) -> Any:
        """A value that differs after any other connection has committed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close every connection."""

    def wait_for_change(self, timeout: float) -> None:  # pragma: no cover - overridden
        """Block until another connection commits or ``timeout`` passes."""
        time.sleep(timeout)

    def session(self) -> Any:
        """An object with ``write()``, ``read()``, ``change_token()`` and ``close()`` for one
        worker; backends may pin a connection so its own commits do not look like news."""
        return _SharedSession(self)

    def clock_offset(self, local: Callable[[], float], *, measure: bool = True
                     ) -> float | None:
        """Seconds to add to ``local`` to read the database server's clock (measured now,
        or without ``measure`` as last measured), or None where the database has no clock
        of its own (an SQLite file shares this machine's)."""
        return None

    def check_integrity(self) -> str:
        """'ok', or what the database's own check reports."""
        return "ok"


def _check_alias(alias: str | None) -> None:
    if alias is not None and not alias.isidentifier():
        raise ValueError(f"not a table alias: {alias!r}")


class _SharedSession:
    """The default session: the store's own pool."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self) -> AbstractContextManager[Tx]:
        return self.store.write()

    def read(self) -> AbstractContextManager[Tx]:
        return self.store.read()

    def change_token(self) -> Any:
        return self.store.change_token()

    def close(self) -> None:
        pass
