"""The runtime: what the engine's parts share underneath the public ``Engine``.

One :class:`Runtime` per engine holds the store, the registry of code, the clock, the id
source, the advancer with its instance cache and the lock that guards them, the in-process
workers, and a :class:`ChangeFeed` that tells waiters, workers and ``onward_event``
observers what committed. ``Engine`` (the public API), the worker, repair and reload
depend on it; it depends on none of them.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from .advance import Advancer, InstanceCache
from .attempts import Attempt
from .deadline import DeadlineWatch
from .errors import NotFound
from .group_commit import GroupCommitter
from .history import RunRow, find_run
from .observers import ObserverFeed
from .registry import Registry
from .store.base import Store, Tx
from .worklog import CLOSES

CLOCK_TOLERANCE = 0.05
"""Seconds a new measurement of the server's clock must differ by before it is adopted
(smaller differences are measurement noise; adopting them would make time jitter)."""


def default_clock() -> Callable[[], float]:
    """This host's wall-clock time, shifted by ``$ONWARD_TIME_SHIFT`` seconds (a hook for
    tests: a host whose clock is off)."""
    shift = float(os.environ.get("ONWARD_TIME_SHIFT", "0") or 0)
    if not shift:
        return time.time
    return lambda: time.time() + shift


class EngineClock:
    """The engine's time: this host's clock, moved onto the database server's clock where
    the database has one (PostgreSQL), so that leases, attempt deadlines and timers written
    by hosts whose clocks disagree still agree with each other."""

    def __init__(self, local: Callable[[], float]) -> None:
        self.local = local
        self.offset = 0.0
        """Seconds added to the local clock (the server's clock minus ours)."""

    def __call__(self) -> float:
        return self.local() + self.offset

    def follow(self, store: Store, *, measure: bool = True) -> None:
        """Adopt the offset to ``store``'s server clock, if it has one (measured now, or
        without ``measure`` as last measured)."""
        offset = store.clock_offset(self.local, measure=measure)
        if offset is not None and abs(offset - self.offset) > CLOCK_TOLERANCE:
            self.offset = offset


def time_ordered_id(random_bytes: int = 10) -> str:
    """Hex digits: 12 of milliseconds since the epoch, then random ones (UUIDv7's layout).

    Runs started close together get neighbouring keys, so their rows, events and index
    entries share B-tree pages and a commit writes fewer pages than with random ids."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(random_bytes).hex()}"


def open_store(db: str | os.PathLike[str], *, create: bool = True,
               synchronous: str | None = None) -> Store:
    """The store for a database path or URL (``postgresql://…`` or a SQLite file).

    SQLite's ``synchronous`` is FULL unless given, or set by ``$ONWARD_SYNCHRONOUS``.
    Each backend is imported only when used (psycopg is an optional dependency).
    """
    synchronous = synchronous or os.environ.get("ONWARD_SYNCHRONOUS") or "FULL"
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        from .store.postgres import PostgresStore
        return PostgresStore(text, create=create)
    from .store.sqlite import SqliteStore
    return SqliteStore(text, create=create, synchronous=synchronous)


class LocalWorker(Protocol):
    """What the runtime and ``Engine`` need of an in-process worker (engine.worker.Worker)."""

    def start_inline(self, tx: Tx, run: RunRow, *, isolate: bool = False
                     ) -> list[Attempt]: ...
    def claims_in_doubt(self, claimed: list[Attempt]) -> None: ...
    def dispatch(self, claimed: list[Attempt]) -> None: ...
    def report_commit(self, tx: Tx) -> None: ...
    def stop(self, grace: float = 10.0) -> None: ...


RECENT_CLOSES = 4096
"""Announced closes the feed remembers for result waiters that come after them."""


class CloseWaiter:
    """One result waiter's wait for a run's close: released once the close is announced,
    with the run's row as the committed close left it when this process made the close
    (None when the announcement has no row: the waiter reads the run)."""

    __slots__ = ("_lock", "row")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.row: RunRow | None = None

    def release(self, row: RunRow | None) -> None:
        """The close is announced (``row``: the closed run, if known)."""
        self.row = row
        self._lock.release()

    def wait(self, timeout: float) -> bool:
        """Whether the close was announced within ``timeout`` seconds."""
        return self._lock.acquire(timeout=timeout)


def _closed_rows(tx: Tx | None) -> dict[str, RunRow]:
    """The runs ``tx`` closed, by run id, as its close events left them (once committed
    and closed nothing changes such a row)."""
    published: list[tuple[RunRow, Any]] = getattr(tx, "published", None) or []
    return {run.run_id: run for run, event in published if event.type in CLOSES}


class ChangeFeed:
    """Tells this process what committed: waiters for any change, waiters for a close,
    listeners (in-process workers, woken to look at the store) and event observers.

    The advancer notes each close in the transaction that makes it (:meth:`count_close`);
    :meth:`notify`, given that transaction once it committed, announces them: each run's
    own waiters wake (:meth:`watch_close`), not every waiter of the process."""

    def __init__(self, store: Store, registry: Registry, has_local_workers: Callable[[], bool]
                 ) -> None:
        self.store = store
        self.registry = registry
        self.has_local_workers = has_local_workers
        self.observers = ObserverFeed(self.deliver_event)
        self.changed = threading.Condition()
        self.generation = 0
        self._generations = itertools.count(1)  # (next() on it is atomic: no lock needed)
        self.change_waiters = 0
        """Threads in ``wait_for_change`` (under ``changed``): ``notify`` takes that lock
        only when there are some (a sequential caller commits four times per workflow)."""
        self.closed = threading.Condition()
        self.closes_seen = 0
        """Closes announced (their transactions committed)."""
        self._watching: dict[str, list[CloseWaiter]] = {}
        """Run id → its result waiters, released when its close is announced (guarded by
        ``closed``)."""
        self._recent: dict[str, None] = {}
        """The last ``RECENT_CLOSES`` closes announced, oldest first (for waiters that
        come after the close)."""
        self.listeners: list[Callable[[], None]] = []
        self.close_listeners: list[Callable[[], None]] = []
        """Called (on the committing thread) after each announcement of closes: the
        asyncio result waiters' wake-up, which must not block."""

    @staticmethod
    def count_close(tx: Tx, run_id: str) -> None:
        """Note ``run_id`` closed in ``tx``, the transaction under way (announced by
        ``notify(tx)`` once it committed; never if it rolls back)."""
        closed = getattr(tx, "closed_runs", None)
        if closed is not None:
            closed.append(run_id)

    def notify(self, tx: Tx | None = None) -> None:
        """Announce a commit of this process (``tx``, if given): wake waiters for a change,
        and the waiters of each run that ``tx`` closed, handing each the run's row as the
        committed close left it."""
        self.generation = next(self._generations)  # a waiter that read the one before
        if self.change_waiters:  # counted itself first, under the lock: it is woken
            with self.changed:
                self.changed.notify_all()
        closed: list[str] = getattr(tx, "closed_runs", None) or []
        if not closed:
            return
        rows: dict[str, RunRow] | None = None
        with self.closed:
            self.closes_seen += len(closed)
            for run_id in closed:
                self._recent[run_id] = None
                if len(self._recent) > RECENT_CLOSES:
                    del self._recent[next(iter(self._recent))]
                waiters = self._watching.pop(run_id, ())
                if waiters and rows is None:
                    rows = _closed_rows(tx)
                for waiter in waiters:
                    waiter.release(rows.get(run_id) if rows else None)
            self.closed.notify_all()
        for listener in list(self.close_listeners):
            listener()

    def watch_close(self, run_id: str) -> CloseWaiter | None:
        """A waiter released when ``run_id``'s close is announced (``wait`` on it, with a
        timeout); None if its close was announced already (recently)."""
        waiter = CloseWaiter()
        with self.closed:
            if run_id in self._recent:
                return None
            self._watching.setdefault(run_id, []).append(waiter)
        return waiter

    def unwatch(self, run_id: str, waiter: CloseWaiter) -> None:
        """Forget a waiter of :meth:`watch_close` (its wait is over)."""
        with self.closed:
            waiters = self._watching.get(run_id)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._watching[run_id]

    def wrote(self, tx: Tx | None = None) -> None:
        """Announce a client's commit (``tx``, if given): wake waiters, and the workers to
        look at it."""
        self.notify(tx)
        for listener in list(self.listeners):
            listener()

    def add_listener(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` after each client commit (a worker's wake-up)."""
        self.listeners.append(fn)

    def remove_listener(self, fn: Callable[[], None]) -> None:
        """Stop calling ``fn``."""
        if fn in self.listeners:
            self.listeners.remove(fn)

    def publish(self, tx: Tx) -> None:
        """Tell ``onward_event`` observers about the events ``tx`` committed.

        Only queues them: the observers run on a thread of their own, so a slow or stuck
        observer cannot stall the caller (a worker's dispatcher)."""
        manager = self.registry.providers
        published = getattr(tx, "published", None)
        if not published:
            return
        if manager is None or not manager.has_observers():
            return
        for run, event in published:
            self.observers.put({
                "run_id": run.run_id, "workflow_id": run.workflow_id,
                "workflow": run.workflow, "seq": event.seq, "type": event.type,
                "time": event.time, "attrs": event.attrs})

    def deliver_event(self, event: dict[str, Any]) -> None:
        """Hand one event to the providers' observers (on the observer thread)."""
        manager = self.registry.providers
        if manager is not None:
            manager.notify_event(event)

    def wait_for_close(self, timeout: float, seen: int | None = None) -> None:
        """Wait until a run closes (in this process; after the ``seen``-th close, if given)
        or, with no worker in this process, anything commits anywhere."""
        if self.has_local_workers():
            with self.closed:
                if seen is None:
                    seen = self.closes_seen
                self.closed.wait_for(lambda: self.closes_seen != seen, timeout)
        else:
            self.store.wait_for_change(timeout)

    def wait_for_change(self, timeout: float) -> None:
        """Wait until this process or another commits something, or ``timeout`` passes."""
        if self.has_local_workers():
            with self.changed:
                self.change_waiters += 1
                try:
                    generation = self.generation
                    self.changed.wait_for(lambda: self.generation != generation, timeout)
                finally:
                    self.change_waiters -= 1
        else:
            self.store.wait_for_change(timeout)

    def close(self) -> None:
        """Stop the observer thread."""
        self.observers.close()


class Runtime:
    """The shared state of one engine: store, code, time, ids, advancing and the feed."""

    def __init__(self, store: Store, registry: Registry, clock: Callable[[], float], *,
                 lease_ttl: float, deadline: float, cache_size: int = 2000,
                 ids: Callable[[str], str] | None = None) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.ids = ids
        """A custom id source (tests), else :meth:`new_id`'s own."""
        self.workers: list[LocalWorker] = []
        """The workers running in this process, the first one taking eager starts."""
        self.feed = ChangeFeed(store, registry, lambda: bool(self.workers))
        self.cache = InstanceCache(cache_size)
        self.advancer = Advancer(workflows=registry.workflow, activities=registry.activity,
                                 clock=clock, new_id=self.new_id,
                                 cache=self.cache, watch=DeadlineWatch(deadline),
                                 on_close=self.feed.count_close)
        self.advance_lock = threading.Lock()
        """Held while workflow instances of this engine are advanced (they are not shared)."""
        self.committer = GroupCommitter(lambda: store.write(), self.advance_lock,
                                        isolation=store.batch_isolation,
                                        on_commit=self.feed.publish)
        """Every write of this engine's threads goes through it: concurrent writes share
        one transaction and one commit (engine/group_commit.py); the events each write
        recorded go to ``onward_event`` observers once it has committed."""
        self.reporters: list[Any] = []
        """Told about each turn this process's workers commit (engine.worklog.TurnReporter:
        metrics); a worker's own reporters (traces) come after these."""

    def new_id(self, kind: str) -> str:
        """A fresh id: ``run`` ids are 32 hex digits, others carry their kind as a prefix."""
        if self.ids is not None:
            return self.ids(kind)
        if kind == "run":
            return time_ordered_id()
        return f"{kind}-{uuid.uuid4().hex[:12]}"

    def sync_clock(self, *, measure: bool = True) -> None:
        """Follow the database server's clock (PostgreSQL decides the time there), unless
        the engine was given a clock of its own. Workers call this with each heartbeat."""
        if isinstance(self.clock, EngineClock):
            self.clock.follow(self.store, measure=measure)

    def find_run(self, tx: Tx, ident: str, *, lock: bool = False) -> RunRow:
        """The run ``ident`` names (a workflow id's current run, or a run id), locked if
        asked; NotFound if there is none."""
        run = find_run(tx, ident, lock=lock)
        if run is None:
            raise NotFound(f"no run with id {ident!r}; `onward list` shows the runs")
        return run

    @property
    def local_worker(self) -> LocalWorker | None:
        """The in-process worker that takes eager starts, if one runs."""
        return self.workers[0] if self.workers else None

    def close(self) -> None:
        """Stop in-process workers and background threads, and close the store."""
        for worker in list(self.workers):
            worker.stop()
        self.feed.close()
        if self.advancer.watch is not None:
            self.advancer.watch.close()
        self.registry.close()
        self.store.close()
