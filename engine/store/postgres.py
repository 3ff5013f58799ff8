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

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import BadInput, StoreError
from .base import Store, Tx
from .pg_connect import (
    describe,
    first_line,
    idle_and_alive,
    migrate,
    open_error,
    primary,
    raise_for,
    server_offset,
    with_defaults,
)
from .pg_notify import ChangeFeed
from .pg_tx import (  # noqa: F401 - WORKFLOW_ID_LOCKS, translate: re-exported
    WORKFLOW_ID_LOCKS,
    PostgresTx,
    translate,
)
from .schema import SchemaTypes

log = logging.getLogger("onward.store.postgres")

POOL_MAX = 20
POOL_TIMEOUT = 15.0


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
        self.round_trips = 0
        """Waits for the server by transactions of this store, counted as they end."""
        self.transactions = 0
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
    def _transaction(self, begin: str, session: PostgresSession | None, *, locking: bool
                     ) -> Iterator[PostgresTx]:
        """A transaction on a connection (pooled, or the session's), in pipeline mode.

        ``BEGIN`` is queued, not waited for (pg_tx.py), so a connection that died while
        idle (server restart) is noticed before it is used, without a round trip, and
        replaced: nothing has run on it yet, so trying another is safe."""
        get = self._getconn if session is None else session._get
        put = self._pool.putconn if session is None else session._put

        def live() -> psycopg.Connection[Any]:
            for attempt in (1, 2, 3):
                conn = get()
                if attempt == 3 or idle_and_alive(conn):
                    return conn
                conn.close()
                put(conn)  # a closed connection is discarded
                if session is None:
                    self._pool.check()  # the rest of the pool is likely stale too
            raise AssertionError("unreachable")

        def reconnect(dead: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
            put(dead)  # a broken connection is discarded
            if session is None:
                self._pool.check()
            return live()

        tx = PostgresTx(live(), self.where, locking=locking, pipelined=True,
                        reconnect=reconnect)
        failed = False
        try:
            tx.begin(begin)
            try:
                yield tx
            except (StoreError, psycopg.Error):
                failed = True
                raise
            except Exception:  # the caller's own: a queued statement's failure comes first
                try:
                    tx.surface_queued_error()
                except psycopg.Error as err:
                    failed = True
                    raise_for(primary(err), self.where)
                raise
        finally:
            tx.abandon()  # (nothing to do after a commit)
            conn = tx.conn
            if (failed or tx.errors) and tx.pipelined_once:
                conn.close()  # psycopg's prepared statements may not match the server's
                # after an aborted pipeline: a new connection starts clean
            elif conn.info.transaction_status != pq.TransactionStatus.IDLE and \
                    not conn.broken:
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    pass
            put(conn)
            self._count_round_trips(tx)

    def _count_round_trips(self, tx: PostgresTx) -> None:
        with self._count_lock:
            self.round_trips += tx.round_trips
            self.transactions += 1

    @contextmanager
    def write(self, session: PostgresSession | None = None) -> Iterator[Tx]:
        with self._transaction("BEGIN ISOLATION LEVEL READ COMMITTED", session,
                               locking=True) as tx:
            yield tx
            tx.finish(self.changes.notify)
            with self._count_lock:
                self.commits += 1

    @contextmanager
    def read(self, session: PostgresSession | None = None) -> Iterator[Tx]:
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        with self._transaction(begin, session, locking=False) as tx:
            yield tx
            # A read whose error the caller caught has nothing to commit: in pipeline mode
            # the connection may not say INERROR until the next sync, so ask the
            # transaction whether the server reported an error.
            if not tx.errors and tx.conn.info.transaction_status != pq.TransactionStatus.INERROR:
                tx.finish(None)  # COMMIT, not ROLLBACK: psycopg forgets its prepared
                # statements on a ROLLBACK

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


