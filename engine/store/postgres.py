"""The shared store: PostgreSQL through psycopg 3, for workers on many machines.

The engine's SQL is written once with ``?`` placeholders; here each statement's placeholders
become psycopg's ``%s`` (once, cached). Writers run at READ COMMITTED and lock what they
change or claim what nobody holds, as each statement states (``Tx.lock_rows_of``); readers get a
REPEATABLE READ READ ONLY snapshot. Every write transaction that changed something ends
with a NOTIFY, which the store's :class:`~engine.store.pg_notify.ChangeFeed` turns into
``change_token()`` values, so idle workers wake at once instead of polling. A worker's
``session()`` pins one connection and its token ignores the worker's own commits.

Connections come from a psycopg_pool pool. Each one carries keepalives, a TCP user timeout
and a server-side idle-in-transaction timeout (engine/store/pg_connect.py), so a worker cut
off from the network fails its calls in seconds and the locks it held are released (its
leases then expire and other workers take its work over; its late results are fenced).

The server's clock decides the time: the store measures its offset to this host's clock
when it opens (and whenever asked, with each worker heartbeat), and engines on PostgreSQL
keep their time by it, so hosts whose clocks disagree still agree on deadlines and timers.

The schema lives in the first schema of the connection's ``search_path`` (``?options=
-csearch_path%3Dname`` in the URL; ``public`` by default), its version in the table
``onward_schema``; migrations run step by step in one transaction under an advisory lock,
so starters racing on a new database do not trip over each other (``pg_connect.migrate``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import BadInput, StoreError
from .base import Row, Store, Tx
from .pg_connect import (
    describe,
    first_line,
    migrate,
    open_error,
    raise_for,
    server_offset,
    with_defaults,
)
from .pg_notify import ChangeFeed
from .schema import APPLICATION_ID, SchemaTypes

log = logging.getLogger("onward.store.postgres")

WORKFLOW_ID_LOCKS = APPLICATION_ID + 1
"""The first key of the advisory locks that serialise run creation per workflow id (the
schema migration's lock uses ``APPLICATION_ID``)."""
POOL_MAX = 20
POOL_TIMEOUT = 15.0


@functools.lru_cache(maxsize=4096)
def translate(text: str) -> tuple[str, bool]:
    """The psycopg form of one engine statement, and whether it only reads: ``?`` becomes
    ``%s`` and a literal ``%`` is escaped; nothing else changes (a statement that locks
    rows says which itself, through ``Tx.lock_rows_of``)."""
    query = text.replace("%", "%%").replace("?", "%s")
    return query, query.lstrip()[:6].upper() == "SELECT"


class PostgresTx(Tx):
    """A transaction on one pooled connection."""

    def __init__(self, conn: psycopg.Connection[Any], where: str, *, locking: bool) -> None:
        self.conn = conn
        self.where = where
        self.dirty = False
        self.published: list[Any] = []  # (run, event) pairs for ``onward_event`` observers
        self.locking = locking  # a read-only snapshot cannot lock rows, nor needs to
        self.for_update = self.lock_rows_of()

    def lock_rows_of(self, alias: str | None = None, *, skip_locked: bool = False) -> str:
        """``FOR UPDATE [OF alias] [SKIP LOCKED]`` in a write transaction (at READ
        COMMITTED a writer must lock what it reads to change it), '' in a snapshot."""
        none = super().lock_rows_of(alias)  # (checks the alias)
        if not self.locking:
            return none
        return (" FOR UPDATE" + (f" OF {alias}" if alias else "")
                + (" SKIP LOCKED" if skip_locked else ""))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        query, reads = translate(sql)
        try:
            cur = self.conn.execute(query, tuple(params))
            rows = cur.fetchall() if cur.description is not None else []
        except psycopg.Error as err:
            raise_for(err, self.where)
        if not reads and cur.rowcount > 0:
            self.dirty = True
        return rows

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        query, _ = translate(sql)
        try:
            with self.conn.cursor() as cur:
                cur.executemany(query, rows)
        except psycopg.Error as err:
            raise_for(err, self.where)
        self.dirty = True

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000
               ) -> Iterator[Row]:
        """The rows of a query read through a server-side cursor, ``size`` at a time."""
        query, _ = translate(sql)
        try:
            with self.conn.cursor(name="onward_stream") as cur:
                cur.itersize = size
                cur.execute(query, tuple(params))
                yield from cur
        except psycopg.Error as err:
            raise_for(err, self.where)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]
                  ) -> int:
        """Bulk-load ``rows`` into ``table`` with COPY (used by ``onward migrate``)."""
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        count = 0
        try:
            with self.conn.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        except psycopg.Error as err:
            raise_for(err, self.where)
        self.dirty = self.dirty or count > 0
        return count

    def lock_workflow_id(self, workflow_id: str) -> None:
        """A transaction-scoped advisory lock on the id's hash. A row lock cannot do this
        job: there is no row to lock before an id's first run, and at READ COMMITTED a
        waiter on the current run's row finds it no longer current once it gets the lock.
        (Two ids with one hash merely wait for each other.)"""
        self.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))",
                     (WORKFLOW_ID_LOCKS, workflow_id))

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        try:
            with self.conn.transaction():  # inside our BEGIN: SAVEPOINT ... RELEASE
                yield
        except psycopg.Error as err:
            raise_for(err, self.where)


class PostgresStore(Store):
    """An Onward database in a PostgreSQL schema, shared by workers on many machines."""

    schema_types = SchemaTypes(real="DOUBLE PRECISION", rowid_key="BIGSERIAL PRIMARY KEY",
                               clustered="", binary_text='TEXT COLLATE "C"',
                               binary_collate=' COLLATE "C"')
    """DOUBLE PRECISION so floats round-trip exactly; every table is a heap; keyword
    values compare by code point, as SQLite's do."""
    plans_by_statistics = True

    def __init__(self, url: str, *, create: bool = True, pool_size: int = POOL_MAX) -> None:
        self.url = url
        self.commits = 0
        self._count_lock = threading.Lock()
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as err:
            raise BadInput(f"not a PostgreSQL URL: {first_line(err)}") from None
        self.where = describe(params)
        self._conninfo = with_defaults(url, params)
        conn = self._connect(params)
        try:
            self.schema = migrate(conn, url=url, where=self.where, create=create,
                                  migrations=self.migrations())
            self._time_offset = server_offset(conn)
        except psycopg.Error as err:
            raise_for(err, self.where)
        finally:
            conn.close()
        self.where = describe(params, self.schema)
        self.changes = ChangeFeed(self._conninfo, f"onward:{self.schema}", self.where)
        """Turns other connections' commits into change tokens."""
        self._pool = ConnectionPool(
            self._conninfo, kwargs={"autocommit": True}, min_size=1,
            max_size=max(2, pool_size), timeout=POOL_TIMEOUT, open=False,
            name=f"onward-{self.schema}")
        self._pool.open(wait=False)
        self._closed = False

    # -- connecting and the schema ------------------------------------------------------
    def _connect(self, params: dict[str, Any]) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.OperationalError as err:
            raise open_error(err, params) from None

    # -- transactions ---------------------------------------------------------------------
    def _getconn(self) -> psycopg.Connection[Any]:
        try:
            return self._pool.getconn()
        except PoolTimeout as err:
            raise StoreError(f"{self.where}: no connection within {POOL_TIMEOUT:.0f}s "
                             f"({first_line(err)}); is the server up?") from None

    @contextmanager
    def _transaction(self, begin: str, session: PostgresSession | None = None
                     ) -> Iterator[psycopg.Connection[Any]]:
        """A connection (pooled, or the session's) inside ``begin``.

        A connection that died while idle (server restart, network cut) is replaced once:
        nothing has run on it yet, so trying again is safe."""
        get = self._getconn if session is None else session._get
        put = self._pool.putconn if session is None else session._put
        for attempt in (1, 2):
            conn = get()
            try:
                conn.execute(begin)
                break
            except psycopg.Error as err:
                put(conn)  # a broken connection is discarded
                if attempt == 2 or not isinstance(err, psycopg.OperationalError):
                    raise_for(err, self.where)
                if session is None:
                    self._pool.check()  # the rest of the pool is likely stale too
        try:
            yield conn
        finally:
            if conn.info.transaction_status != pq.TransactionStatus.IDLE and not conn.broken:
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    pass
            put(conn)

    @contextmanager
    def write(self, session: PostgresSession | None = None) -> Iterator[Tx]:
        with self._transaction("BEGIN ISOLATION LEVEL READ COMMITTED", session) as conn:
            tx = PostgresTx(conn, self.where, locking=True)
            yield tx
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                raise StoreError(f"{self.where}: the transaction was aborted by an earlier "
                                 "error and rolled back")
            try:
                conn.execute(self.changes.notify_commit if tx.dirty else "COMMIT")
            except psycopg.Error as err:
                raise_for(err, self.where)
            with self._count_lock:
                self.commits += 1

    @contextmanager
    def read(self, session: PostgresSession | None = None) -> Iterator[Tx]:
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        with self._transaction(begin, session) as conn:
            yield PostgresTx(conn, self.where, locking=False)

    def session(self) -> PostgresSession:
        """A dedicated connection for one worker: its change token ignores its own commits."""
        return PostgresSession(self)

    def clock_offset(self, local: Callable[[], float], *, measure: bool = True
                     ) -> float | None:
        """Seconds to add to ``local`` to read this server's clock (without ``measure``,
        as last measured: when the store was opened, or since)."""
        if measure:
            conn = self._getconn()
            try:
                self._time_offset = server_offset(conn)
            except psycopg.Error as err:
                raise_for(err, self.where)
            finally:
                self._pool.putconn(conn)
        return self._time_offset + time.time() - local()

    def check_integrity(self) -> str:
        with self.read() as tx:
            tx.execute("SELECT 1 FROM onward_schema")
        return "ok"

    # -- noticing other processes' commits (engine.store.pg_notify) -----------------------
    def change_token(self) -> Any:
        return self.changes.token()

    def wait_for_change(self, timeout: float) -> None:
        self.changes.wait(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.changes.close()
        self._pool.close(timeout=5)


class PostgresSession:
    """One pinned connection for one worker: ``write``/``read``/``change_token`` as on the
    store, except that the token ignores this connection's own commits (PostgreSQL names
    the sending backend of each notification)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = 0
        self._lock = threading.RLock()

    def _get(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self.store._conninfo, autocommit=True)
            except psycopg.Error as err:
                raise_for(err, self.store.where)
            self._pid = self._conn.info.backend_pid
            self.store.changes.track(self._pid, True)
        return self._conn

    def _put(self, conn: psycopg.Connection[Any]) -> None:
        if conn.broken or conn.closed:
            self.store.changes.track(self._pid, False)
            conn.close()
            self._conn = None

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._lock, self.store.write(self) as tx:
            yield tx

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._lock, self.store.read(self) as tx:
            yield tx

    def change_token(self) -> Any:
        return self.store.changes.token(self._pid)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self.store.changes.track(self._pid, False)
                self._conn.close()
                self._conn = None


