"""A PostgreSQL transaction in psycopg's pipeline mode: writes that need no answer do not wait.

A workflow step is a handful of statements, most of which return nothing the engine reads
(``INSERT`` / ``UPDATE`` / ``DELETE`` without ``RETURNING``). Sent one by one, each costs a
round trip to the server. Here a write transaction keeps its connection in pipeline mode
(https://www.psycopg.org/psycopg3/docs/advanced/pipeline.html): ``BEGIN`` and those
statements are queued and sent without waiting, and the next statement whose rows the engine
needs (a ``SELECT``, a ``RETURNING``, a lock) syncs the pipeline, as does the commit. So a
step costs one round trip per read plus one for the commit.

Errors: a queued statement that fails is reported at the next sync, by the call that synced
(the next read, the end of a savepoint, or the commit), as the same engine error
(``raise_for``) it would have been reported as at once. The transaction is aborted by it, as
before, and rolled back whole. A savepoint syncs when it opens and when it ends
(psycopg's nested pipeline), so a statement queued inside it fails inside it and rolls back
that savepoint only, and one queued before it fails before it. Read-only snapshots queue
only their ``BEGIN``: every statement there answers at once.
"""

from __future__ import annotations

import functools
import os
import select
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg import pq, sql

from .base import Row, Tx
from ..errors import StoreError
from .pg_connect import raise_for
from .schema import APPLICATION_ID

WORKFLOW_ID_LOCKS = APPLICATION_ID + 1
"""The first key of the advisory locks that serialise run creation per workflow id (the
schema migration's lock uses ``APPLICATION_ID``)."""

PIPELINE = os.environ.get("ONWARD_PG_PIPELINE", "1") != "0"
"""Whether write transactions use pipeline mode (``ONWARD_PG_PIPELINE=0``: every statement
waits for its answer, as before; for comparison and for poolers without pipeline support)."""

ANSWERS, CHANGES, MAY_CHANGE = 0, 1, 2
"""How a statement is sent in a pipelined write: ANSWERS waits for its rows; CHANGES (a plain
``INSERT ... VALUES``: it adds a row or fails) and MAY_CHANGE (an ``UPDATE``, ``DELETE`` or
conditional insert, whose row count says whether it changed anything) are queued."""


@functools.lru_cache(maxsize=4096)
def translate(text: str) -> tuple[str, bool]:
    """The psycopg form of one engine statement, and whether it only reads: ``?`` becomes
    ``%s`` and a literal ``%`` is escaped; nothing else changes (a statement that locks
    rows says which itself, through ``Tx.lock_rows_of``)."""
    query = text.replace("%", "%%").replace("?", "%s")
    return query, query.lstrip()[:6].upper() == "SELECT"


@functools.lru_cache(maxsize=4096)
def plan(text: str) -> int:
    """ANSWERS, CHANGES or MAY_CHANGE for one engine statement (see those)."""
    words = text.upper().split()
    if not words or words[0] not in ("INSERT", "UPDATE", "DELETE") or "RETURNING" in words:
        return ANSWERS
    if words[0] == "INSERT" and "VALUES" in words and "CONFLICT" not in words \
            and "SELECT" not in words:
        return CHANGES
    return MAY_CHANGE


def idle_and_alive(conn: psycopg.Connection[Any]) -> bool:
    """False for an idle connection the server has closed or is closing (it has sent
    something unasked: an idle connection of ours is sent nothing else), without a round
    trip. Checked before ``BEGIN`` is queued, since a queued ``BEGIN`` reports a dead
    connection only once the caller's statements have run."""
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


class PostgresTx(Tx):
    """A transaction on one connection; a write one in pipeline mode (``pipelined``)."""

    def __init__(self, conn: psycopg.Connection[Any], where: str, *, locking: bool,
                 pipelined: bool = False) -> None:
        self.conn = conn
        self.where = where
        self.dirty = False
        self.published: list[Any] = []  # (run, event) pairs for ``onward_event`` observers
        self.locking = locking  # a read-only snapshot cannot lock rows, nor needs to
        self.for_update = self.lock_rows_of()
        self.round_trips = 0
        """Waits for the server so far: statements answered, syncs, the end."""
        self._pipe_cm: AbstractContextManager[psycopg.Pipeline] | None = None
        self._pipeline: psycopg.Pipeline | None = None
        self._unsure: list[psycopg.Cursor[Any]] = []  # queued; their row counts say `dirty`
        self.queued = 0
        """Statements queued since the last sync."""
        if pipelined and PIPELINE:
            self._pipe_cm = conn.pipeline()
            self._pipeline = self._pipe_cm.__enter__()

    @property
    def pipelined(self) -> bool:
        """True while statements that need no answer are queued rather than waited for."""
        return self._pipeline is not None

    def lock_rows_of(self, alias: str | None = None, *, skip_locked: bool = False) -> str:
        """``FOR UPDATE [OF alias] [SKIP LOCKED]`` in a write transaction (at READ
        COMMITTED a writer must lock what it reads to change it), '' in a snapshot."""
        none = super().lock_rows_of(alias)  # (checks the alias)
        if not self.locking:
            return none
        return (" FOR UPDATE" + (f" OF {alias}" if alias else "")
                + (" SKIP LOCKED" if skip_locked else ""))

    # -- the pipeline ---------------------------------------------------------------------
    def begin(self, statement: str) -> None:
        """Start the transaction: queued in pipeline mode, else waited for."""
        if self._pipeline is not None:
            self.conn.execute(statement)
            self.queued += 1
        else:
            self.conn.execute(statement)
            self.round_trips += 1

    def sync(self) -> None:
        """Send what is queued and wait for all of it: a queued statement's error is raised
        here (as the engine's error)."""
        if self._pipeline is None:
            return
        try:
            self.round_trips += 1
            self.queued = 0
            self._pipeline.sync()
        except psycopg.Error as err:
            raise_for(err, self.where)
        finally:
            self._settle_unsure()

    def _settle_unsure(self) -> None:
        for cur in self._unsure:
            try:
                if cur.rowcount > 0:
                    self.dirty = True
            except psycopg.Error:
                pass
        self._unsure.clear()

    def leave_pipeline(self) -> None:
        """Sync and leave pipeline mode (COPY and server-side cursors need it); the rest of
        the transaction waits for each statement."""
        if self._pipe_cm is None:
            return
        self.sync()
        cm, self._pipe_cm, self._pipeline = self._pipe_cm, None, None
        try:
            cm.__exit__(None, None, None)
        except psycopg.Error as err:
            raise_for(err, self.where)

    def finish(self, notify: str | None) -> None:
        """Commit: with ``notify`` (the change feed's NOTIFY) first when something changed.
        In pipeline mode one round trip, or two when only the server knows whether an
        UPDATE or DELETE changed anything."""
        if self._unsure and not self.dirty:
            self.sync()
        if self.conn.info.transaction_status == pq.TransactionStatus.INERROR:
            raise StoreError(f"{self.where}: the transaction was aborted by an earlier "
                             "error and rolled back")
        try:
            if self.dirty and notify:
                self.conn.execute(notify)
            self.conn.execute("COMMIT")
            self.round_trips += 1
            if self._pipe_cm is not None:
                cm, self._pipe_cm, self._pipeline = self._pipe_cm, None, None
                cm.__exit__(None, None, None)  # sends the commit and waits for it
        except psycopg.Error as err:
            raise_for(err, self.where)

    def abandon(self) -> None:
        """After a failure: drain and leave the pipeline, ignoring what it reports (the
        caller rolls the transaction back)."""
        if self._pipe_cm is None:
            return
        cm, self._pipe_cm, pipeline, self._pipeline = self._pipe_cm, None, self._pipeline, None
        if not self.conn.broken and pipeline is not None:
            try:
                pipeline.sync()
            except psycopg.Error:
                pass
        try:
            cm.__exit__(None, None, None)
        except psycopg.Error:
            pass
        self._unsure.clear()

    # -- statements -----------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        query, reads = translate(sql)
        if self._pipeline is not None and self.locking:
            how = plan(sql)
            if how != ANSWERS:
                self._queue(query, tuple(params), how)
                return []
        try:
            cur = self.conn.execute(query, tuple(params))
            if self._pipeline is not None:
                self.sync()
            else:
                self.round_trips += 1
            rows = cur.fetchall() if cur.description is not None else []
        except psycopg.Error as err:
            raise_for(err, self.where)
        if not reads and cur.rowcount > 0:
            self.dirty = True
        return rows

    def _queue(self, query: str, params: tuple[Any, ...], how: int) -> None:
        try:
            cur = self.conn.cursor()
            cur.execute(query, params)
        except psycopg.Error as err:
            raise_for(err, self.where)
        self.queued += 1
        if how == CHANGES:
            self.dirty = True  # it adds its row, or the transaction fails
        else:
            self._unsure.append(cur)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        query, _ = translate(sql)
        if self._pipeline is not None and self.locking and plan(sql) != ANSWERS:
            for row in rows:
                self._queue(query, tuple(row), CHANGES)
            return
        try:
            with self.conn.cursor() as cur:
                cur.executemany(query, rows)
        except psycopg.Error as err:
            raise_for(err, self.where)
        self.round_trips += 1
        self.dirty = True

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000
               ) -> Iterator[Row]:
        """The rows of a query read through a server-side cursor, ``size`` at a time."""
        self.leave_pipeline()
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
        self.leave_pipeline()
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
        """SAVEPOINT ... RELEASE inside our BEGIN. In pipeline mode psycopg syncs as it
        opens (what was queued before fails before it) and as it ends (what was queued
        inside fails inside, and only the savepoint is rolled back)."""
        if self._pipeline is not None:
            self.round_trips += 2
            self.queued = 0
        try:
            with self.conn.transaction():
                yield
        except psycopg.Error as err:
            raise_for(err, self.where)
        finally:
            self._settle_unsure()
