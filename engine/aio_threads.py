"""The threads behind the asyncio client (engine/aio.py): a pool that runs its calls, and
one thread that tells awaiting tasks when their runs close.

:class:`CallPool` runs calls on a fixed set of threads. It exists because
``concurrent.futures.ThreadPoolExecutor`` starts a thread inside ``submit`` whenever none
is idle, and ``Thread.start`` waits until the new thread holds the GIL: in a busy process
(an in-process worker's threads on PostgreSQL) that cost the event loop 200 ms for the
first burst of calls. Here submitting only queues; the first thread starts the others.

:class:`ResultWaiters` keeps the futures of ``result_async`` callers and one thread that,
while any wait, reads the current run of every waited-for id in one read transaction
whenever one may have closed: at once when this process announces a close (the change
feed's ``close_listeners``), and within ``POLL`` seconds of a commit by another process or
engine (the change token of a store session, which leaves this process's own commits
out). Settled futures are resolved on their loops with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from . import history
from .errors import StoreError
from .handle import is_settled
from .history import RunRow
from .runtime import Runtime

log = logging.getLogger("onward.aio")

POLL = 0.01
"""Seconds between looks at the store's change token while results are awaited (how
soon a close committed by another process wakes ``result_async``)."""

Outcome = RunRow | None | BaseException
T = TypeVar("T")
Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _resolve(future: asyncio.Future[Any], outcome: Any, failed: bool = False) -> None:
    """Settle ``future`` (called on its loop) unless its awaiter gave up meanwhile."""
    if future.done():
        return
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _hand(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], outcome: Any,
          failed: bool = False) -> None:
    """Settle ``future`` from another thread, on its loop (dropped if the loop closed)."""
    try:
        loop.call_soon_threadsafe(_resolve, future, outcome, failed)
    except RuntimeError:  # its loop has closed: nobody is left to tell
        log.debug("dropped an outcome: its event loop is closed")


class CallPool:
    """``size`` threads that run calls for event loops, in the order they arrive.

    Submitting costs the loop a queue entry and an asyncio future (no thread start, no
    ``concurrent.futures.Future`` to chain: a burst of 200 calls stays a few
    milliseconds of the loop's time); each thread hands its outcome back with
    ``loop.call_soon_threadsafe``."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._first: threading.Thread | None = None
        self._others: list[threading.Thread] = []
        self._closed = False

    def submit(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """Queue ``call`` for the running loop; a future of its outcome. Cancelling the
        future before a thread took the call drops the call. StoreError once the pool is
        shut down. (The very first call starts one thread; that one starts the rest.)"""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                raise StoreError("this engine is closed: async calls need an open Engine")
            if self._first is None:
                self._first = threading.Thread(target=self._serve, args=(True,),
                                               name=f"{self.name}-0", daemon=True)
                self._first.start()
            self._jobs.put((loop, future, call))
        return future

    def _serve(self, first: bool = False) -> None:
        if first:
            for n in range(1, self.size):
                thread = threading.Thread(target=self._serve, name=f"{self.name}-{n}",
                                          daemon=True)
                thread.start()
                self._others.append(thread)
        while (job := self._jobs.get()) is not None:
            loop, future, call = job
            if future.cancelled():
                continue  # its caller gave up before a thread took it
            try:
                result = call()
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                _hand(loop, future, err, failed=True)
            else:
                _hand(loop, future, result)

    def shutdown(self) -> None:
        """Run what is queued, then stop the threads (waiting for them)."""
        with self._lock:
            self._closed, first = True, self._first
        if first is None:
            return
        for _ in range(self.size):
            self._jobs.put(None)
        if first is not threading.current_thread():
            first.join()  # (it has started the others before it serves)
        for thread in self._others:
            if thread is not threading.current_thread():
                thread.join()


@dataclass(slots=True, eq=False)
class _Waiter:
    workflow_id: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[RunRow | None]


class ResultWaiters:
    """Async callers waiting for runs to close, served by one thread per engine.

    The thread sleeps while nobody waits. While someone does, it reads the current run
    of every waiting id in one read transaction after each close announced by this
    process's change feed (:meth:`poke`) and after each change of the store's token (a
    commit elsewhere), and hands each settled run to its waiter's loop."""

    def __init__(self, runtime: Runtime, poll: float = POLL) -> None:
        self.runtime = runtime
        self.poll = poll
        self._cond = threading.Condition()
        self._waiting: dict[int, _Waiter] = {}
        self._keys = itertools.count()
        self._poked = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.checks = 0
        """Reads made so far (each covers every id waited for at the time)."""
        runtime.feed.close_listeners.append(self.poke)

    def count(self) -> int:
        """How many waits are registered now."""
        with self._cond:
            return len(self._waiting)

    def add(self, workflow_id: str, future: asyncio.Future[RunRow | None]) -> int:
        """Resolve ``future`` (on its loop) with ``workflow_id``'s current run once it has
        closed for good, or None if the id has no run; returns a key for :meth:`discard`."""
        waiter = _Waiter(workflow_id, future.get_loop(), future)
        with self._cond:
            if self._closed:
                raise StoreError("this engine is closed: open a new Engine to wait for "
                                 f"run {workflow_id}")
            key = next(self._keys)
            self._waiting[key] = waiter
            self._poked = True  # a first look, at once
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, daemon=True,
                                                name="onward-aio-results")
                self._thread.start()
            self._cond.notify()
        return key

    def discard(self, key: int) -> None:
        """Forget a wait (done, timed out or cancelled); unknown keys are ignored."""
        with self._cond:
            self._waiting.pop(key, None)

    def poke(self) -> None:
        """Look at the waiting ids soon: a run may have closed (never blocks for long)."""
        with self._cond:
            self._poked = True
            self._cond.notify()

    def close(self) -> None:
        """Stop the thread; waits still registered fail with StoreError."""
        with self._cond:
            self._closed = True
            left = list(self._waiting.values())
            self._waiting.clear()
            self._cond.notify()
            thread = self._thread
        if self.poke in self.runtime.feed.close_listeners:
            self.runtime.feed.close_listeners.remove(self.poke)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        for waiter in left:
            self._hand(waiter, StoreError(
                f"the engine was closed while waiting for run {waiter.workflow_id}"))

    # -- the thread -------------------------------------------------------------------------
    def _serve(self) -> None:
        session = self.runtime.store.session()
        token: Any = None
        try:
            while True:
                with self._cond:
                    while not self._closed and not self._waiting:
                        self._cond.wait()
                    if not self._closed and not self._poked:
                        self._cond.wait(self.poll)
                    if self._closed:
                        return
                    poked, self._poked = self._poked, False
                    batch = list(self._waiting.items())
                if not batch:
                    continue
                try:
                    seen = session.change_token()  # before the read: later commits show
                except Exception as err:  # noqa: BLE001 - the read below reports it
                    seen = err
                if poked or seen != token or isinstance(seen, Exception):
                    token = seen
                    self._check(batch)
        finally:
            session.close()

    def _check(self, batch: list[tuple[int, _Waiter]]) -> None:
        """Read the waited-for ids' current runs; settle the waits that have an answer."""
        self.checks += 1
        try:
            with self.runtime.store.read() as tx:
                runs = [(key, waiter, history.current_run(tx, waiter.workflow_id))
                        for key, waiter in batch]
        except Exception as err:  # noqa: BLE001 - each waiter gets it, as ``result`` would
            for key, waiter in batch:
                if self._take(key):
                    self._hand(waiter, copy.copy(err))
            return
        for key, waiter, run in runs:
            if is_settled(run) and self._take(key):
                self._hand(waiter, run)

    def _take(self, key: int) -> bool:
        with self._cond:
            return self._waiting.pop(key, None) is not None

    @staticmethod
    def _hand(waiter: _Waiter, outcome: Outcome) -> None:
        _hand(waiter.loop, waiter.future, outcome, isinstance(outcome, BaseException))
