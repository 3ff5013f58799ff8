"""Group commit: the writes of one process's threads share transactions and fsyncs.

Every write of a process (a client's start, signal, cancel, ...; a worker's turn and the
outcomes its activity threads settle) is a *job*: a function of the open transaction.
Callers queue their jobs; one of them at a time leads. The leader takes every queued job,
opens ONE write transaction, runs each job (each in a savepoint when the batch has more
than one, so that one job's failure rolls back that job alone), commits once and wakes
every caller with its own value or exception. Writes that arrive while a batch runs join
it before its commit (a worker's only when several callers' writes are in it); those that
arrive while it commits queue up and go together in the next: the batching engages exactly
when there is a stream to batch, and a lone caller leads at once, waiting for nobody.

A caller returns only after its own write is durable. A job that raises gets its own
exception, and changes nothing (a PostgreSQL conflict inside a job's savepoint too: its
caller does it again); a store failure (the commit, the disk) reaches every job of its
batch. A job's ``undo`` is called, under the leader's
locks, whenever its work is lost or in doubt (its exception, or its batch's), so that what
it did outside the database (instances it advanced, attempts it claimed) is set right.

Jobs that advance workflow instances ask for the engine's advance lock (``locked``): the
leader holds it for the batch, always taken before the store's writer lock, as the
dispatcher always did. A caller must not hold the advance lock when it queues a job.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from .errors import StoreConflict, StoreError
from .store.base import Row, Tx

T = TypeVar("T")

MAX_BATCH = 512
"""Jobs one transaction takes at most (the rest go in the next)."""

HOLD = 0.002
"""Seconds a batch of background jobs waits for a caller's write during a stream."""
STREAM_WINDOW = 0.05
"""Seconds after a caller's write last waited for a commit that writes count as a stream."""

ISOLATIONS = ("savepoint", "redo")
"""How the jobs of one batch are kept apart: each in a savepoint; or all run plainly, the
batch rolled back and done again with savepoints only when one of them raised."""


_NO_LOCK = contextlib.nullcontext()


class JobTx(Tx):
    """One job's view of a shared transaction: statements go to the transaction; what the
    job notes for after its commit (``published`` events, ``closed_runs``, workflow tasks)
    stays its own."""

    def __init__(self, inner: Tx) -> None:
        self.inner = inner
        self.for_update = inner.for_update
        self.batch_reads = inner.batch_reads
        self.published: list[Any] = []
        self.closed_runs: list[str] = []
        self.workflow_tasks: list[Any] = []  # (engine.worklog: noted per job, not shared)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def lock_rows_of(self, alias: str | None = None, *, skip_locked: bool = False) -> str:
        """As the shared transaction's."""
        return self.inner.lock_rows_of(alias, skip_locked=skip_locked)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """As the shared transaction's."""
        return self.inner.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """As the shared transaction's."""
        self.inner.executemany(sql, rows)

    def execute_together(self, statements: Sequence[tuple[str, Sequence[Any]]]
                         ) -> list[list[Row]]:
        """As the shared transaction's."""
        return self.inner.execute_together(statements)

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000
               ) -> Iterator[Row]:
        """As the shared transaction's."""
        return self.inner.stream(sql, params, size)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]
                  ) -> int:
        """As the shared transaction's."""
        return self.inner.copy_rows(table, columns, rows)

    def savepoint(self) -> AbstractContextManager[None]:
        """As the shared transaction's."""
        return self.inner.savepoint()

    def lock_workflow_id(self, workflow_id: str) -> None:
        """As the shared transaction's."""
        self.inner.lock_workflow_id(workflow_id)


class Job(Generic[T]):
    """One caller's write, waiting for (or done by) a leader."""

    __slots__ = ("fn", "undo", "locked", "background", "done", "value", "error", "undone",
                 "tx")

    def __init__(self, fn: Callable[[Tx], T], undo: Callable[[BaseException], None] | None,
                 locked: bool, background: bool = False) -> None:
        self.fn = fn
        self.background = background
        self.undo = undo
        self.locked = locked
        self.done = False
        self.value: T | None = None
        self.error: BaseException | None = None
        self.undone = False
        self.tx: Tx | None = None


class _Redo(Exception):
    """A job of a batch run without savepoints raised: do the batch again isolated."""


class GroupCommitter:
    """Queues the writes of many threads and commits them in shared transactions."""

    def __init__(self, write: Callable[[], AbstractContextManager[Tx]],
                 advance_lock: threading.Lock, *, isolation: str = "savepoint",
                 max_batch: int = MAX_BATCH,
                 on_commit: Callable[[Tx], None] | None = None) -> None:
        """``write`` opens a write transaction (``store.write``); ``advance_lock`` is the
        engine's, held by a leader whose batch has a ``locked`` job; ``on_commit`` is told
        each job's transaction once it has committed, in commit order, before the job's
        caller returns (the engine publishes the events it recorded to observers)."""
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}")
        self._write = write
        self._advance_lock = advance_lock
        self._on_commit = on_commit
        self.isolation = isolation
        self.max_batch = max(1, max_batch)
        self._cv = threading.Condition(threading.Lock())
        self._queue: list[Job[Any]] = []
        self._leading = False
        self._holding = False
        self._foreground = 0
        """Queued jobs that are not ``background``."""
        self._stream_until = 0.0
        """Until when a caller's write recently had to wait for a commit (monotonic)."""
        self._local = threading.local()
        self.batches = 0
        """Transactions led so far (committed or not)."""
        self.jobs = 0
        """Jobs run so far."""
        self.on_queue: Callable[[int], None] | None = None
        """Called (outside the committer's lock) with how many jobs wait, after each
        arrival that has to wait: a hook for tests that need a batch of a known size."""

    @property
    def idle(self) -> bool:
        """Nobody leads a batch and nobody waits (a lone job would commit at once)."""
        with self._cv:
            return not self._leading and not self._queue

    def run(self, fn: Callable[[Tx], T], *, undo: Callable[[BaseException], None] | None
            = None, locked: bool = False) -> T:
        """Run ``fn`` in a write transaction shared with other callers; its value once
        that transaction committed, or the exception it (or the commit) raised.

        ``undo(error)`` is called, under the leader's locks, when the job's work was lost
        or may not have committed. ``locked``: the job advances workflow instances and
        needs the engine's advance lock. Called from inside a job (the leader's thread),
        ``fn`` runs at once in the transaction under way."""
        return self.run_job(fn, undo=undo, locked=locked)[0]

    def run_job(self, fn: Callable[[Tx], T], *, undo: Callable[[BaseException], None] | None
                = None, locked: bool = False, background: bool = False) -> tuple[T, Tx]:
        """As :meth:`run`, also giving the job's view of the committed transaction (for
        what runs after a commit: reporters, observers).

        ``background``: a worker's job (a turn, an outcome), which nobody outside waits
        for. While a caller's writes keep arriving during commits (a stream), a batch of
        background jobs alone holds its transaction open up to ``HOLD`` seconds for the
        next of them, so that it goes along instead of waiting for that commit."""
        current: Tx | None = getattr(self._local, "tx", None)
        if current is not None:
            return fn(current), current
        with self._cv:
            alone = not self._leading and not self._queue
            if alone:
                self._leading = True
        job: Job[T] = Job(fn, undo, locked, background)
        if alone:  # nobody commits, nobody waits: lead at once, no batch to keep
            return self._alone(job)
        with self._cv:
            self._queue.append(job)
            waiting = len(self._queue)
            if not background:
                self._foreground += 1
                if self._leading:  # it waits for a commit: a stream of writes is on
                    self._stream_until = time.monotonic() + STREAM_WINDOW
                    if self._holding:
                        self._cv.notify_all()
        if self.on_queue is not None:
            self.on_queue(waiting)
        while True:
            with self._cv:
                while self._leading and not job.done:
                    self._cv.wait()
                if job.done:
                    break
                self._leading = True
                if background and not self._foreground and \
                        time.monotonic() < self._stream_until:
                    self._holding = True
                    self._cv.wait_for(lambda: self._foreground > 0, HOLD)
                    self._holding = False
                batch = self._queue[:self.max_batch]
                del self._queue[:len(batch)]
                self._foreground -= sum(1 for one in batch if not one.background)
            try:
                self._lead(batch)
            finally:
                with self._cv:
                    for one in batch:
                        one.done = True
                    self._leading = False
                    self._cv.notify_all()
        if job.error is not None:
            raise job.error
        assert job.tx is not None
        return job.value, job.tx  # type: ignore[return-value]

    # -- the leader ---------------------------------------------------------------------
    def _alone(self, job: Job[T]) -> tuple[T, Tx]:
        """Run a job that found the committer idle (the quiet path: as cheap as a plain
        transaction, unless others queue meanwhile and join it); whoever queued too late
        for it is woken to lead the next batch."""
        batch = [job]
        try:
            self._lead(batch)
        finally:
            with self._cv:
                self._leading = False
                if len(batch) > 1 or self._queue:
                    for one in batch:
                        one.done = True
                    self._cv.notify_all()
        if job.error is not None:
            raise job.error
        assert job.tx is not None
        return job.value, job.tx  # type: ignore[return-value]

    def _lead(self, batch: list[Job[Any]]) -> None:
        """Run ``batch`` in one transaction and commit it (on the leader's thread); jobs
        that queue while it runs join it (``_join``), so ``batch`` may grow."""
        self.batches += 1
        self.jobs += len(batch)
        locked = batch[0].locked if len(batch) == 1 else any(job.locked for job in batch)
        guard: AbstractContextManager[Any] = self._advance_lock if locked else _NO_LOCK
        isolate = len(batch) > 1 and self.isolation == "savepoint"
        with guard:
            while True:
                try:
                    self._transact(batch, isolate, locked)
                except _Redo:
                    for job in batch:
                        self._undo(job, StoreError("rolled back to be done again"))
                        job.error, job.undone = None, False
                    isolate = True
                    continue
                except BaseException as err:  # noqa: BLE001 - handed to every caller
                    for job in batch:
                        if job.error is None:
                            job.error = err
                        self._undo(job, err)
                else:
                    if self._on_commit is not None:
                        for job in batch:
                            if job.error is None and job.tx is not None:
                                self._on_commit(job.tx)
                break

    def _transact(self, batch: list[Job[Any]], isolate: bool, locked: bool) -> None:
        """Run the jobs of ``batch``, then those that queued meanwhile, in one transaction.

        A batch of one runs its job on the transaction itself; any other job gets a view
        of it (``JobTx``), in a savepoint if ``isolate`` (or, for jobs joining a batch of
        one, under ``savepoint`` isolation), else plainly: one that raises makes the
        batch be done again isolated (``_Redo``)."""
        alone = len(batch) == 1
        apart = isolate or (alone and self.isolation == "savepoint")
        with self._write() as tx:
            self._local.tx = tx
            try:
                ran = 0
                while True:
                    for job in batch[ran:]:
                        if alone and job is batch[0]:
                            job.tx = tx
                            job.value = job.fn(tx)
                            continue
                        view = JobTx(tx)
                        job.tx = view
                        if apart:
                            self._isolated(job, tx, view)
                            continue
                        try:
                            job.value = job.fn(view)
                        except StoreError:
                            raise
                        except Exception as err:
                            job.error = err
                            raise _Redo from err
                    ran = len(batch)
                    if not self._join(batch, locked):
                        break
            finally:
                self._local.tx = None

    def _join(self, batch: list[Job[Any]], locked: bool) -> bool:
        """Move the callers' jobs that queued while ``batch`` ran into it (up to
        ``max_batch``; one that needs the advance lock only if the leader holds it): they
        share its commit instead of waiting for it and then committing on their own.

        A worker's (``background``) job joins only a batch of several callers' writes.
        Beside a lone caller's write it stays queued for the next batch: by then more
        outcomes have come for its turn (a stream: one turn instead of many small ones),
        and the caller's next write joins that batch (``HOLD``)."""
        if not self._queue:  # (a stale look: harmless)
            return False
        if len(batch) >= self.max_batch:
            return False
        room = self.max_batch - len(batch)
        crowd = sum(1 for job in batch if not job.background) > 1
        with self._cv:
            joined: list[Job[Any]] = []
            kept: list[Job[Any]] = []
            for job in self._queue:
                if len(joined) < room and (crowd or not job.background) and \
                        (locked or not job.locked):
                    joined.append(job)
                else:
                    kept.append(job)
            if not joined:
                return False
            self._queue[:] = kept
            self._foreground -= sum(1 for job in joined if not job.background)
        batch.extend(joined)
        self.jobs += len(joined)
        return True

    def _isolated(self, job: Job[Any], tx: Tx, view: Tx) -> None:
        """Run one job of a batch in its own savepoint: its failure is its own."""
        try:
            with tx.savepoint():
                job.value = job.fn(view)
        except StoreConflict as err:  # this job's rows (PostgreSQL): rolled back alone,
            job.error = err           # its caller does it again (_redone_on_conflict)
            self._undo(job, err)
        except StoreError:
            raise  # the store failed, not the job: the batch fails
        except Exception as err:  # noqa: BLE001 - the caller gets it
            job.error = err
            self._undo(job, err)

    @staticmethod
    def _undo(job: Job[Any], err: BaseException) -> None:
        if job.undone or job.undo is None:
            job.undone = True
            return
        job.undone = True
        job.undo(err)
