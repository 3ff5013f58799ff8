"""Runs activity attempts: sync functions in a thread pool, async ones on an event loop.

Each attempt ends as an :class:`Outcome` put on a queue the worker drains; the worker
records it in the store (fenced), so an attempt the engine has given up on cannot
complete its activity.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import activity as activity_api
from . import convert
from .activity import ActivityDefinition, ActivityInfo
from .attempts import Attempt
from .errors import OnwardError, error_json


@dataclass(slots=True)
class Outcome:
    """How an attempt ended: a result, or an error as stored in history."""

    attempt: Attempt
    ok: bool
    result: Any = None
    error: dict[str, Any] = field(default_factory=dict)
    provider: tuple[str, str] = ("", "")


class ActivityExecutor:
    """Runs attempts and reports outcomes; knows nothing of the store."""

    def __init__(self, concurrency: int, lookup: Callable[[str], ActivityDefinition | None],
                 outcomes: queue.SimpleQueue[Outcome], wake: Callable[[], None],
                 heartbeat: Callable[[Attempt, Any], None]) -> None:
        self.lookup = lookup
        self.outcomes = outcomes
        self.wake = wake
        self.settle_inline: Callable[[Outcome], bool] | None = None
        """Optional: record an outcome at once in the finishing thread (True if done)."""
        self.heartbeat = heartbeat
        self.running: dict[tuple[str, int], ActivityInfo] = {}
        self._lock = threading.Lock()
        self._pool = _ThreadPool(max(2, concurrency * 2), self._run_sync)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    @property
    def busy(self) -> int:
        """Attempts currently running."""
        return len(self.running)

    def submit(self, attempt: Attempt) -> None:
        """Start ``attempt`` now."""
        definition = self.lookup(attempt.name)
        if definition is None:
            self._report(Outcome(attempt, False, error={
                "type": "ProviderMissing",
                "message": f"no provider for activity {attempt.name}: add or fix the plugin "
                           "that offers it; the attempt is retried"}))
            return
        info = ActivityInfo(
            activity=attempt.name, attempt=attempt.attempt, workflow_id=attempt.workflow_id,
            run_id=attempt.run_id, activity_id=attempt.ref,
            idempotency_key=attempt.idempotency_key,
            heartbeat_details=attempt.heartbeat_details, provider=definition.provider,
            provider_version=definition.provider_version,
            _heartbeat=lambda details: self.heartbeat(attempt, details))
        with self._lock:
            self.running[(attempt.run_id, attempt.ref)] = info
        if definition.is_async:
            future = asyncio.run_coroutine_threadsafe(
                self._run_async(definition, attempt, info), self._async_loop())
            future.add_done_callback(lambda f: None)
        else:
            self._pool.submit((definition, attempt, info))

    def abandon(self, run_id: str, ref: int) -> None:
        """Stop counting an attempt the engine gave up on; its late result is fenced.
        The attempt is told: its next heartbeat raises, an async one is cancelled."""
        with self._lock:
            info = self.running.pop((run_id, ref), None)
        if info is not None:
            info.give_up()

    def running_attempts(self) -> list[tuple[str, int, int]]:
        """The attempts running here: (run_id, ref, attempt)."""
        with self._lock:
            return [(run_id, ref, info.attempt) for (run_id, ref), info in self.running.items()]

    def cancel(self, run_id: str, ref: int, attempt: int) -> bool:
        """Ask a running attempt to stop because its workflow canceled the activity; its
        outcome is still recorded. False if no such attempt runs here (or it was told)."""
        with self._lock:
            info = self.running.get((run_id, ref))
        if info is None or info.attempt != attempt or info.is_cancelled:
            return False
        info.request_stop()
        return True

    def _finish(self, definition: ActivityDefinition, attempt: Attempt, ok: bool,
                value: Any = None, exc: BaseException | None = None) -> None:
        provider = (definition.provider, definition.provider_version)
        if ok:
            try:
                value = convert.to_json(value, f"the result of activity {attempt.name}")
            except OnwardError as err:
                ok, exc = False, err
        if ok:
            outcome = Outcome(attempt, True, result=value, provider=provider)
        else:
            assert exc is not None
            error = error_json(exc)
            if isinstance(exc, OnwardError):
                error["non_retryable"] = True
            outcome = Outcome(attempt, False, error=error, provider=provider)
        self._report(outcome)

    def _report(self, outcome: Outcome) -> None:
        with self._lock:
            info = self.running.pop((outcome.attempt.run_id, outcome.attempt.ref), None)
        if info is not None and info.given_up:
            return
        if self.settle_inline is not None:
            with self._pool.keep_next():  # the run's next step, if any, runs in this thread
                if self.settle_inline(outcome):
                    return
        self.outcomes.put(outcome)
        self.wake()

    def _run_sync(self, definition: ActivityDefinition, attempt: Attempt,
                  info: ActivityInfo) -> None:
        if info.given_up:
            return  # given up on while it waited for a thread: it must never start
        token = activity_api.set_current(info)
        try:
            value = definition.fn(*convert.bind_args(
                definition.fn, attempt.args, f"arguments of activity {attempt.name}"))
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an outcome
            self._finish(definition, attempt, False, exc=exc)
        else:
            self._finish(definition, attempt, True, value)
        finally:
            activity_api.reset_current(token)

    async def _run_async(self, definition: ActivityDefinition, attempt: Attempt,
                         info: ActivityInfo) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        # Stopping the attempt cancels its task, from whichever thread asks.
        def stop() -> None:
            loop.call_soon_threadsafe(task.cancel)

        info.when_stopped(stop)
        if info.given_up:
            return  # given up on before the loop got to it: it must never start
        activity_api.set_current(info)
        try:
            if info.is_cancelled:  # canceled before it started: it ends canceled, unrun
                raise asyncio.CancelledError("canceled before it started")
            value = await definition.fn(*convert.bind_args(
                definition.fn, attempt.args, f"arguments of activity {attempt.name}"))
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an outcome
            self._finish(definition, attempt, False, exc=exc)
        else:
            self._finish(definition, attempt, True, value)

    def _async_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._loop_thread = threading.Thread(
                    target=self._loop.run_forever, name="onward-async-activities",
                    daemon=True)
                self._loop_thread.start()
            return self._loop

    def shutdown(self, wait: bool) -> None:
        """Stop taking attempts; with ``wait``, let running ones finish."""
        self._pool.shutdown(wait=wait)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)


Job = tuple[ActivityDefinition, Attempt, ActivityInfo]


class _KeepNext:
    """The block of :meth:`_ThreadPool.keep_next` (a plain class: a generator-based
    context manager costs several times as much, once per step)."""

    __slots__ = ("local",)

    def __init__(self, local: threading.local) -> None:
        self.local = local

    def __enter__(self) -> None:
        if hasattr(self.local, "next"):  # one of the pool's threads
            self.local.keeping = True

    def __exit__(self, *exc: object) -> None:
        if hasattr(self.local, "next"):
            self.local.keeping = False


class _ThreadPool:
    """Threads that run sync attempts, one per waiting attempt, up to ``size`` at once.

    A thread is started whenever the attempts waiting outnumber the idle threads, so
    attempts submitted together run side by side (not one after another on one thread).
    Threads still stuck in an attempt the engine gave up on do not count against
    ``size``: the worker no longer counts those attempts, so it claims others in their
    place, and those must start at once, not wait for a thread that may never return.

    A job submitted by one of the pool's threads inside :meth:`keep_next` (while it
    records the outcome of its last job, which may schedule the run's next step) is kept
    for that thread to run next: a sequential workflow then goes step after step without
    a thread hand-off. Jobs submitted anywhere else (activity code included) queue.
    """

    def __init__(self, size: int, run: Callable[[ActivityDefinition, Attempt, ActivityInfo],
                                                  None]) -> None:
        self.size = size
        self.run = run
        self._jobs: collections.deque[Job] = collections.deque()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._doing: dict[int, ActivityInfo | None] = {}
        """The attempt each pool thread runs (None while it runs none), by thread id: a
        thread's key is added once, under the lock, and its value set without it (the
        dict never changes size while ``submit`` counts over it)."""
        self._lock = threading.RLock()
        self._ready = threading.Condition(self._lock)
        """Signalled when a job is queued (or the pool closes); ``with self._lock`` where
        nobody is signalled (the lock's own block is the cheaper one). An RLock, never
        taken twice: a Condition on it asks the lock whether it is held, where on a plain
        Lock it tries to take it to find out, on every wait and notify."""
        self._local = threading.local()
        self._closed = False
        self._keep = _KeepNext(self._local)

    def keep_next(self) -> _KeepNext:
        """Keep the first job this pool thread submits inside the block for it to run next
        (a context manager; outside the pool's threads it does nothing)."""
        return self._keep

    def submit(self, job: Job) -> None:
        """Run ``job`` on a pool thread (this one, next, when inside ``keep_next``)."""
        local = self._local
        if getattr(local, "keeping", False) and local.next is None:
            local.next = job
            return
        with self._lock:
            if self._closed:
                return
            self._jobs.append(job)
            if len(self._jobs) > self._idle and len(self._threads) - sum(
                    1 for info in self._doing.values()
                    if info is not None and info.given_up) < self.size:
                thread = threading.Thread(target=self._serve, daemon=True,
                                          name=f"onward-activity_{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
            if self._idle:  # a thread waits in _take (none: nobody to wake)
                self._ready.notify()

    def _take(self) -> Job | None:
        """The next queued job, waiting for one; None once the pool is shut down."""
        with self._lock:
            if self._jobs and not self._closed:  # one queued already: no waiting
                return self._jobs.popleft()
            self._idle += 1
            while not self._jobs and not self._closed:
                self._ready.wait()
            self._idle -= 1
            return None if self._closed else self._jobs.popleft()

    def _serve(self) -> None:
        local = self._local
        local.keeping, local.next = False, None
        me = threading.get_ident()
        doing = self._doing
        with self._lock:
            doing[me] = None
        job = self._take()
        while job is not None:
            doing[me] = job[2]
            try:
                self.run(*job)
            finally:
                doing[me] = None
            job, local.next = local.next, None
            if self._closed:
                return
            if job is None:
                job = self._take()

    def shutdown(self, wait: bool) -> None:
        """Stop taking jobs (queued ones are dropped); with ``wait``, join the threads."""
        with self._lock:
            self._closed = True
            self._jobs.clear()
            threads = list(self._threads)
            self._ready.notify_all()
        if wait:
            for thread in threads:
                thread.join()
