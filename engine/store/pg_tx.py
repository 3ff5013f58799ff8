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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NoReturn

import psycopg
from psycopg import pq, sql

from ..errors import StoreError
from .base import Row, Tx
from .pg_connect import primary, wrap
from .schema import APPLICATION_ID

WORKFLOW_ID_LOCKS = APPLICATION_ID + 1
"""The first key of the advisory locks that serialise run creation per workflow id (the
schema migration's lock uses ``APPLICATION_ID``)."""

PIPELINE = os.environ.get("ONWARD_PG_PIPELINE", "1") != "0"
"""Whether write transactions use pipeline mode (``ONWARD_PG_PIPELINE=0``: every statement
waits for its answer, as before; for comparison and for poolers without pipeline support)."""

BATCH_READS = os.environ.get("ONWARD_PG_BATCH", "1") != "0"
"""Whether a turn reads its runs together (``Tx.batch_reads``; ``ONWARD_PG_BATCH=0``: one
run at a time, as before; for comparison)."""

ANSWERS, CHANGES, MAY_CHANGE, UNREAD = 0, 1, 2, 3
"""How a statement is sent in a pipelined write: ANSWERS waits for its rows; CHANGES (a plain
``INSERT ... VALUES``: it adds a row or fails), MAY_CHANGE (an ``UPDATE``, ``DELETE`` or
conditional insert, whose row count says whether it changed anything) and UNREAD (a lock
whose answer nobody reads) are queued."""


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


Reconnect = Callable[[psycopg.Connection[Any]], psycopg.Connection[Any]]
"""Gives back a broken connection and returns a live one (the store's pool or session)."""


class PostgresTx(Tx):
    """A transaction on one connection; a write one in pipeline mode (``pipelined``).

    With ``reconnect``, a connection found dead by the transaction's first sync is
    replaced and what was queued is sent again on the new one, unless that sync is the
    commit (the server may have committed before the connection dropped). Nothing was
    answered before that sync and no COMMIT was sent, so nothing of it was kept."""

    batch_reads = BATCH_READS

    def __init__(self, conn: psycopg.Connection[Any], where: str, *, locking: bool,
                 pipelined: bool = False, reconnect: Reconnect | None = None) -> None:
        self.conn = conn
        self.where = where
        self.dirty = False
        self.published: list[Any] = []  # (run, event) pairs for ``onward_event`` observers
        self.closed_runs: list[str] = []  # runs closed here, announced after the commit
        self.locking = locking  # a read-only snapshot cannot lock rows, nor needs to
        self.for_update = self.lock_rows_of()
        self.round_trips = 0
        """Waits for the server so far: statements answered, syncs, the end."""
        self.replaced = 0
        """Dead connections replaced at the first sync."""
        self._reconnect = reconnect
        self._pipe_cm: AbstractContextManager[psycopg.Pipeline] | None = None
        self._pipeline: psycopg.Pipeline | None = None
        self._unsure: list[psycopg.Cursor[Any]] = []  # queued; their row counts say `dirty`
        self._unanswered: list[tuple[str, tuple[Any, ...], int]] | None = []
        """What was sent before the first sync (to send again on a new connection)."""
        self._current: psycopg.Cursor[Any] | None = None  # the cursor last sent
        self._sent: list[psycopg.Cursor[Any]] | None = None  # (execute_together's)
        self._errors = 0  # errors the server reported
        self._savepoints = 0  # open savepoints
        self._aborted_by: BaseException | None = None  # the error that aborted it
        self.pipelined_once = pipelined and PIPELINE
        """Whether this transaction began in pipeline mode."""
        if self.pipelined_once:
            self._enter_pipeline()

    @property
    def errors(self) -> int:
        """How many errors the server reported in this transaction."""
        return self._errors

    def _enter_pipeline(self) -> None:
        self._pipe_cm = self.conn.pipeline()
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
        if self._pipeline is None:
            try:
                self.conn.execute(statement)
            except psycopg.Error as err:
                self._fail(err)
            self.round_trips += 1
            self._unanswered = None
        else:
            self._send_or_replace(statement, (), ANSWERS)

    def _send_or_replace(self, query: str, params: tuple[Any, ...], how: int) -> None:
        """``_send``, or where sending finds the connection dead before anything was
        answered, the same statements again on a new connection."""
        try:
            self._send(query, params, how)
        except psycopg.OperationalError as err:
            if not self._replace_dead():
                self._fail(err)

    def _send(self, query: str, params: tuple[Any, ...], how: int) -> psycopg.Cursor[Any]:
        """Queue one statement (pipeline mode); its cursor."""
        if self._unanswered is not None:
            self._unanswered.append((query, params, how))
        cur = self.conn.cursor()
        cur.execute(query, params)
        self._current = cur
        if self._sent is not None:
            self._sent.append(cur)
        if how == CHANGES:
            self.dirty = True  # it adds its row, or the transaction fails
        elif how == MAY_CHANGE:
            self._unsure.append(cur)
        return cur

    def sync(self) -> None:
        """Send what is queued and wait for all of it: a queued statement's error is raised
        here (as the engine's error). A dead connection found by the transaction's first
        sync is replaced (``_replace_dead``); the commit never comes here."""
        if self._pipeline is None:
            return
        self.round_trips += 1
        try:
            self._pipeline.sync()
        except psycopg.OperationalError as err:
            if not self._replace_dead():
                self._settle_unsure()
                self._fail(err)
        except psycopg.Error as err:
            self._settle_unsure()
            self._fail(err)
        self._unanswered = None
        self._settle_unsure()

    def _fail(self, err: psycopg.Error) -> NoReturn:
        """Raise the engine's error for ``err`` (the first error of an aborted pipeline),
        remembering it when it aborts the transaction (outside any savepoint)."""
        first = primary(err)
        self._errors += 1
        if self._aborted_by is not None and isinstance(
                first, psycopg.errors.InFailedSqlTransaction | psycopg.errors.PipelineAborted):
            self._raise_aborted()
        wrapped = wrap(first, self.where)
        if self._savepoints == 0 and self._aborted_by is None:
            self._aborted_by = wrapped
        if wrapped is first:
            raise first
        raise wrapped from first

    def _replace_dead(self) -> bool:
        """After a failed first sync on a dead connection: the same statements again on a
        new one (True), or False where that is not safe or not possible."""
        sent = self._unanswered
        if sent is None or self._reconnect is None or not self.conn.broken \
                or self.replaced:
            return False
        self._drop_pipeline()
        try:
            self.conn = self._reconnect(self.conn)
            self.replaced += 1
            self._unsure.clear()
            self._enter_pipeline()
            self._unanswered = None
            for query, params, how in sent:
                self._send(query, params, how)
            self.round_trips += 1
            assert self._pipeline is not None
            self._pipeline.sync()
        except psycopg.Error as err:
            self._fail(err)
        return True

    def _drop_pipeline(self) -> None:
        cm, self._pipe_cm, self._pipeline = self._pipe_cm, None, None
        if cm is not None:
            try:
                cm.__exit__(None, None, None)
            except psycopg.Error:
                pass

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
            self._fail(err)

    def finish(self, notify: str | None) -> None:
        """Commit: with ``notify`` (the change feed's NOTIFY) first when something changed.
        In pipeline mode one round trip, or two when only the server knows whether an
        UPDATE or DELETE changed anything."""
        if self._unsure and not self.dirty:
            self.sync()
        if self._pipeline is None:
            self._finish_waiting(notify)
            return
        if self._errors:
            self.sync()  # (now the transaction's status is known)
        if self.conn.info.transaction_status == pq.TransactionStatus.INERROR:
            self._raise_aborted()
        try:
            if self.dirty and notify:
                self._send(notify, (), ANSWERS)
            self._send("COMMIT", (), ANSWERS)
            self.round_trips += 1
            cm, self._pipe_cm, self._pipeline = self._pipe_cm, None, None
            assert cm is not None
            cm.__exit__(None, None, None)  # sends it all with a sync and waits
        except psycopg.Error as err:
            self._fail(err)
        finally:
            self._unsure.clear()

    def _raise_aborted(self) -> NoReturn:
        """The transaction cannot commit: an error the caller caught aborted it. Raised as
        the same kind of error as that one (whenever it surfaced, the outcome is one)."""
        kind = type(self._aborted_by) if isinstance(self._aborted_by, StoreError) \
            else StoreError
        raise kind(f"{self.where}: the transaction was aborted by an earlier error and "
                   "rolled back")

    def _finish_waiting(self, notify: str | None) -> None:
        if self.conn.info.transaction_status == pq.TransactionStatus.INERROR:
            self._raise_aborted()
        try:
            if self.dirty and notify:
                self.conn.execute(notify)
                self.round_trips += 1
            self.conn.execute("COMMIT")
            self.round_trips += 1
        except psycopg.Error as err:
            self._fail(err)

    def abandon(self) -> None:
        """After a failure: drain and leave the pipeline, ignoring what it reports (the
        caller rolls the transaction back)."""
        pipeline = self._pipeline
        if self._pipe_cm is None or pipeline is None:
            return
        if not self.conn.broken:
            try:
                pipeline.sync()
            except psycopg.Error:
                pass
        self._drop_pipeline()
        self._unsure.clear()

    # -- statements -----------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        query, reads = translate(sql)
        args = tuple(params)
        try:
            if self._pipeline is None:
                cur = self.conn.execute(query, args)
                self.round_trips += 1
            else:
                how = plan(sql) if self.locking else ANSWERS
                self._send_or_replace(query, args, how)
                if how != ANSWERS:
                    return []
                self.sync()
                assert self._current is not None  # (its cursor, on whichever connection)
                cur = self._current
            rows = cur.fetchall() if cur.description is not None else []
        except psycopg.Error as err:
            self._fail(err)
        if not reads and cur.rowcount > 0:
            self.dirty = True
        return rows

    def execute_together(self, statements: Sequence[tuple[str, Sequence[Any]]]
                         ) -> list[list[Row]]:
        """In pipeline mode all of ``statements`` are sent, then one sync waits for every
        answer (one round trip); else one by one."""
        if self._pipeline is None or len(statements) < 2:
            return super().execute_together(statements)
        sent: list[psycopg.Cursor[Any]] = []
        self._sent = sent  # (a dead connection's replacement sends them again: the
        try:               # last ones sent are these)
            for sql, params in statements:
                self._send_or_replace(translate(sql)[0], tuple(params), ANSWERS)
            self.sync()
            answered = []
            for (sql, _), cur in zip(statements, sent[-len(statements):], strict=True):
                answered.append(cur.fetchall() if cur.description is not None else [])
                if not translate(sql)[1] and cur.rowcount > 0:
                    self.dirty = True
        except psycopg.Error as err:
            self._fail(err)
        finally:
            self._sent = None
        return answered

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        query, _ = translate(sql)
        if self._pipeline is not None and self.locking and plan(sql) != ANSWERS:
            try:
                for row in rows:
                    self._send_or_replace(query, tuple(row), CHANGES)
            except psycopg.Error as err:
                self._fail(err)
            return
        self.sync()
        try:
            with self.conn.cursor() as cur:
                cur.executemany(query, rows)
        except psycopg.Error as err:
            self._fail(err)
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
            self._fail(err)

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
            self._fail(err)
        self.dirty = self.dirty or count > 0
        return count

    def lock_workflow_id(self, workflow_id: str) -> None:
        """A transaction-scoped advisory lock on the id's hash. A row lock cannot do this
        job: there is no row to lock before an id's first run, and at READ COMMITTED a
        waiter on the current run's row finds it no longer current once it gets the lock.
        (Two ids with one hash merely wait for each other.)

        In pipeline mode it is queued: the server runs the lookup that follows only once
        the lock is held, so nothing needs to wait for it here."""
        statement = "SELECT pg_advisory_xact_lock(?, hashtext(?))"
        if self._pipeline is None or not self.locking:
            self.execute(statement, (WORKFLOW_ID_LOCKS, workflow_id))
            return
        try:
            self._send_or_replace(translate(statement)[0], (WORKFLOW_ID_LOCKS, workflow_id),
                                  UNREAD)
        except psycopg.Error as err:
            self._fail(err)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """SAVEPOINT ... RELEASE inside our BEGIN. In pipeline mode psycopg syncs as it
        opens (what was queued before fails before it) and as it ends (what was queued
        inside fails inside, and only the savepoint is rolled back)."""
        if self._pipeline is not None:
            self.sync()  # what was queued before fails before it, outside it
            self.round_trips += 1  # (psycopg syncs again as it ends)
        self._savepoints += 1
        try:
            with self.conn.transaction():
                try:
                    yield
                except (StoreError, psycopg.Error):
                    raise
                except Exception:
                    self.surface_queued_error()
                    raise
        except psycopg.Error as err:
            self._fail(err)
        finally:
            self._savepoints -= 1
            self._settle_unsure()

    def surface_queued_error(self) -> None:
        """Called as the caller's block fails: if a queued statement failed first, raise
        that, as it would have been raised without pipelining (a psycopg error), or if the
        transaction was aborted by an error the caller caught, that kind of error."""
        if self._aborted_by is not None:
            self._raise_aborted()  # (an error the caller caught had aborted it)
        if self._pipeline is None or self.conn.broken:
            return
        self.round_trips += 1
        try:
            self._pipeline.sync()
        except psycopg.errors.PipelineAborted as err:
            if isinstance(primary(err), psycopg.errors.PipelineAborted):
                return  # (what aborted it was reported already)
            raise primary(err) from None
