"""asyncio twins of the client's calls, for applications that run on an event loop.

Example::

    import asyncio
    from onward import Engine

    async def main() -> None:
        with Engine("onward.db", flows=["claims.py"]) as eng, eng.worker():
            runs = [await eng.start_async("reimbursement", claim, id=f"claim-{n}")
                    for n, claim in enumerate(claims)]
            await eng.signal_async("claim-0", "approve", {"by": "dana"})
            results = await asyncio.gather(*(run.result_async(timeout=60) for run in runs))

    asyncio.run(main())

Each ``X_async`` is ``Engine.X`` with the same arguments, result and exceptions
(``BadInput``, ``NotFound``, ``WorkflowFailed``, ...), run on a thread of a small pool
the engine owns (``ASYNC_THREADS`` threads, made on first use; ``Engine.close`` lets the
calls under way finish, then stops them). So neither the store nor workflow code (a query
replays the run) ever runs on the loop: with SQLite's single writer, concurrent writes
queue for its lock on those threads while the loop goes on. Cancelling the task that
awaits a call stops the waiting, not the call: a start, signal or cancel already handed
to a thread still happens (an id makes a retried start safe).

``RunHandle.result_async`` holds no thread while it waits. Its task registers a
loop-side future with :class:`ResultWaiters`, whose one thread per engine reads the
current runs of all waiting ids in one transaction whenever something may have closed
one: at once when this process closes a run (the change feed's close announcement), and
within ``POLL`` seconds of a commit by another process or engine (the store's change
token, as a worker's session sees it). Futures are resolved with
``loop.call_soon_threadsafe``; a cancelled or timed-out wait removes its waiter and
leaves the run alone.

``update_async`` does not exist yet because ``Engine.update`` does not (issue 17 builds
updates); it belongs here, one line in the same pattern, once ``Engine.update`` lands.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import itertools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from . import history
from .errors import StoreError
from .handle import is_settled
from .history import RunRow
from .runtime import Runtime

if TYPE_CHECKING:
    from .client import Engine, JsonList
    from .handle import RunHandle

log = logging.getLogger("onward.aio")

ASYNC_THREADS = min(16, (os.cpu_count() or 1) + 4)
"""Threads of the pool that runs an engine's async calls (at most this many at once;
more wait in the pool's queue, off the loop)."""
POLL = 0.01
"""Seconds between looks at the store's change token while results are awaited (how
soon a close committed by another process wakes ``result_async``)."""

P = ParamSpec("P")
T = TypeVar("T")
Outcome = RunRow | None | BaseException


@dataclass(slots=True, eq=False)
class _Waiter:
    workflow_id: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[RunRow | None]


def _resolve(future: asyncio.Future[RunRow | None], outcome: Outcome) -> None:
    """Settle ``future`` (on its loop) unless its waiter gave up meanwhile."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


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
        try:
            waiter.loop.call_soon_threadsafe(_resolve, waiter.future, outcome)
        except RuntimeError:  # its loop has closed: nobody is left to tell
            log.debug("dropped the result of %s: its event loop is closed",
                      waiter.workflow_id)


class AsyncBridge:
    """An engine's way to asyncio: a thread pool for its calls, one thread for results."""

    def __init__(self, runtime: Runtime, threads: int = ASYNC_THREADS) -> None:
        self.runtime = runtime
        self.threads = threads
        self.waiters = ResultWaiters(runtime)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise StoreError("this engine is closed: async calls need an open Engine")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="onward-aio")
            return self._pool

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the engine's pool, awaited (the caller's context
        variables go along, as with ``asyncio.to_thread``)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        job = functools.partial(context.run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor(), job)

    async def wait_closed(self, workflow_id: str, timeout: float | None = None  # noqa: ASYNC109
                          ) -> RunRow | None:
        """``workflow_id``'s current run once it has closed for good (None: no run), or
        as it is when ``timeout`` seconds have passed without that."""
        future: asyncio.Future[RunRow | None] = asyncio.get_running_loop().create_future()
        key = self.waiters.add(workflow_id, future)
        try:
            if timeout is None:
                return await future
            try:
                async with asyncio.timeout(timeout):
                    return await future
            except TimeoutError:
                pass
        finally:
            self.waiters.discard(key)
        return await self.call(self._current_run, workflow_id)

    def _current_run(self, workflow_id: str) -> RunRow | None:
        with self.runtime.store.read() as tx:
            return history.current_run(tx, workflow_id)

    def close(self) -> None:
        """Let the calls under way finish, then stop the threads (``Engine.close``)."""
        with self._lock:
            self._closed, pool = True, self._pool
        self.waiters.close()
        if pool is not None:
            pool.shutdown(wait=True)


class AsyncClient:
    """The ``*_async`` methods of ``Engine``: each awaits its sync twin on the engine's
    threads, with the same arguments, result and exceptions (see the module docstring)."""

    aio: AsyncBridge

    @property
    def _engine(self) -> Engine:
        return cast("Engine", self)  # AsyncClient is only ever a base of Engine

    async def start_async(self, workflow: str | Callable[..., Any], *args: Any,
                          id: str | None = None, rerun: bool = False  # noqa: A002
                          ) -> RunHandle:
        """``Engine.start``, awaited; await the handle's ``result_async`` for the result."""
        return await self.aio.call(self._engine.start, workflow, *args, id=id, rerun=rerun)

    async def signal_async(self, ident: str, name: str, payload: Any = None) -> None:
        """``Engine.signal``, awaited."""
        await self.aio.call(self._engine.signal, ident, name, payload)

    async def query_async(self, ident: str, name: str, *args: Any) -> Any:
        """``Engine.query``, awaited (the replay runs on the engine's threads)."""
        return await self.aio.call(self._engine.query, ident, name, *args)

    async def cancel_async(self, ident: str) -> str:
        """``Engine.cancel``, awaited."""
        return await self.aio.call(self._engine.cancel, ident)

    async def terminate_async(self, ident: str, reason: str = "") -> None:
        """``Engine.terminate``, awaited."""
        await self.aio.call(self._engine.terminate, ident, reason)

    async def show_async(self, ident: str, *, history: bool = True
                         ) -> dict[str, Any]:
        """``Engine.show``, awaited."""
        return await self.aio.call(self._engine.show, ident, history=history)

    async def list_async(self, status: str | None = None, *, search: str | None = None,
                         limit: int | None = None, offset: int = 0, all_runs: bool = False,
                         order: str = "updated") -> JsonList:
        """``Engine.list``, awaited."""
        return await self.aio.call(self._engine.list, status, search=search, limit=limit,
                                   offset=offset, all_runs=all_runs, order=order)

    async def complete_task_async(self, task_id: str, result: Any = None, *,
                                  by: str | None = None) -> None:
        """``Engine.complete_task``, awaited."""
        await self.aio.call(self._engine.complete_task, task_id, result, by=by)

    async def fail_task_async(self, task_id: str, reason: str = "", *,
                              by: str | None = None) -> None:
        """``Engine.fail_task``, awaited."""
        await self.aio.call(self._engine.fail_task, task_id, reason, by=by)
