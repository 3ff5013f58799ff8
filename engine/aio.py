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

The twins: ``start_async``, ``signal_async``, ``query_async``, ``cancel_async``,
``terminate_async``, ``show_async``, ``list_async``, ``complete_task_async``,
``fail_task_async``, and on a run handle ``result_async`` and ``status_async``. Opening
an ``Engine``, starting or stopping its in-process worker and ``close`` stay synchronous:
they are quick but do block, so make them before or after the loop's busy part.

Each ``X_async`` is ``Engine.X`` with the same arguments, result and exceptions
(``BadInput``, ``NotFound``, ``WorkflowFailed``, ...), run on one of ``ASYNC_THREADS``
threads the engine owns (started on first use; ``Engine.close`` lets the calls under way
and queued finish, then stops them). So neither the store nor workflow code (a query
replays the run) ever runs on the loop: with SQLite's single writer, concurrent writes
queue for its lock on those threads while the loop goes on. Cancelling the task that
awaits a call stops the waiting, not the call: a start, signal or cancel a thread has
taken still happens (an id makes a retried start safe).

``RunHandle.result_async`` holds no thread while it waits: its task's future is
registered with the engine's :class:`~onward.aio_threads.ResultWaiters`, whose one
thread wakes it when the run closes, in this process or another. A cancelled or timed-out
wait removes its waiter and leaves the run alone.

``update_async`` does not exist yet because ``Engine.update`` does not (issue 17 builds
updates); it belongs here, one method in the same pattern, once ``Engine.update`` lands.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from . import history
from .aio_threads import CallPool, ResultWaiters
from .history import RunRow
from .runtime import Runtime

if TYPE_CHECKING:
    from .client import Engine, JsonList
    from .handle import RunHandle
    from .listfilter import Query

ASYNC_THREADS = 32
"""Threads that run an engine's async calls (at most this many at once; more wait in
the queue, off the loop). A write call spends most of its time waiting for the commit it
shares with the others (engine/group_commit.py): as many threads as calls that may share
one commit, not as many as cores."""

P = ParamSpec("P")
T = TypeVar("T")


class AsyncBridge:
    """An engine's way to asyncio: threads for its calls, one thread for results."""

    def __init__(self, runtime: Runtime, threads: int = ASYNC_THREADS) -> None:
        self.runtime = runtime
        self.pool = CallPool(threads, "onward-aio")
        self.waiters = ResultWaiters(runtime)

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the engine's threads, awaited (the caller's context
        variables go along, as with ``asyncio.to_thread``). Cancelling the awaiting task
        before a thread took the call drops it; after, the call still runs to its end."""
        context = contextvars.copy_context()
        job = functools.partial(context.run, fn, *args, **kwargs)
        return await self.pool.submit(job)

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
        """Let the calls under way and queued finish, then stop the threads
        (``Engine.close``); waits still registered fail with StoreError."""
        self.pool.shutdown()
        self.waiters.close()


class AsyncClient:
    """The ``*_async`` methods of ``Engine``: each awaits its sync twin on the engine's
    threads, with the same arguments, result and exceptions (see the module docstring)."""

    aio: AsyncBridge

    @property
    def _engine(self) -> Engine:
        return cast("Engine", self)  # AsyncClient is only ever a base of Engine

    async def start_async(self, workflow: str | Callable[..., Any], *args: Any,
                          id: str | None = None, rerun: bool = False,  # noqa: A002
                          search_attributes: dict[str, Any] | None = None, memo: Any = None
                          ) -> RunHandle:
        """``Engine.start``, awaited; await the handle's ``result_async`` for the result."""
        return await self.aio.call(self._engine.start, workflow, *args, id=id, rerun=rerun,
                                   search_attributes=search_attributes, memo=memo)

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
                         order: str = "updated", query: str | Query | None = None
                         ) -> JsonList:
        """``Engine.list``, awaited."""
        return await self.aio.call(self._engine.list, status, search=search, limit=limit,
                                   offset=offset, all_runs=all_runs, order=order,
                                   query=query)

    async def count_async(self, query: str | Query | None = None, group_by: str | None = None
                          ) -> dict[str, Any]:
        """``Engine.count``, awaited."""
        return await self.aio.call(self._engine.count, query, group_by)

    async def complete_task_async(self, task_id: str, result: Any = None, *,
                                  by: str | None = None) -> None:
        """``Engine.complete_task``, awaited."""
        await self.aio.call(self._engine.complete_task, task_id, result, by=by)

    async def fail_task_async(self, task_id: str, reason: str = "", *,
                              by: str | None = None) -> None:
        """``Engine.fail_task``, awaited."""
        await self.aio.call(self._engine.fail_task, task_id, reason, by=by)
