"""A deterministic asyncio event loop for workflow code.

Workflow coroutines run on this loop, one instance per run. It has no clock, no I/O and no
threads: callbacks run in the order they were scheduled, and only when the engine steps the
loop after delivering an event from history. That is what makes a replay of the same history
issue the same commands.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from .deadline import DeadlineWatch, Overrun, WorkflowDeadline
from .errors import OnwardError
from .workflow_runtime import WorkflowRuntime


class DeterministicLoop(asyncio.AbstractEventLoop):
    """Runs ready callbacks in FIFO order on demand; refuses wall-clock scheduling.

    Only the methods that tasks, futures, ``gather`` and ``wait`` use are provided; the
    I/O parts of the loop API stay abstract on purpose (workflows do no I/O).
    """

    owner: WorkflowRuntime | None

    def __init__(self, now: Callable[[], float]) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._now = now
        self._running = False
        self._closed = False
        self.owner: WorkflowRuntime | None = None
        """The run this loop runs the code of (``workflow.*`` calls reach it here)."""
        self.watch: DeadlineWatch | None = None
        """Stops code that runs past the workflow-task deadline (None: no deadline)."""

    # -- stepping -------------------------------------------------------------------
    def run_until_quiet(self) -> None:
        """Run ready callbacks (and those they schedule) until none is left.

        asyncio keeps "the running loop" in a private per-thread slot that coroutines read
        through ``asyncio.get_running_loop()``; this is the one place that sets it, and it
        restores whatever loop was running before, so an engine embedded in an asyncio
        program (the console) is not disturbed.

        With a deadline watch, raises WorkflowDeadline (carrying the Overrun) when the code
        ran past its deadline, wherever in the code the watchdog's exception landed.
        """
        previous = asyncio._get_running_loop()
        asyncio._set_running_loop(self)
        self._running = True
        watch = self.watch
        overrun: Overrun | None = None
        stopped = False
        try:
            try:
                if watch is not None:
                    watch.arm()
                ready = self._ready
                while ready:
                    handle = ready.popleft()
                    if not handle._cancelled:
                        handle._run()
            except WorkflowDeadline:  # landed in the stepping itself, between callbacks
                stopped = True
            finally:
                try:
                    if watch is not None:
                        overrun = watch.disarm()
                except WorkflowDeadline:  # landed as the watch came off: take it off again
                    stopped = True
                    overrun = watch.disarm() if watch is not None else None
        finally:
            self._running = False
            asyncio._set_running_loop(previous)
        if overrun is not None or stopped:
            raise WorkflowDeadline(overrun)

    # -- the parts of the loop API that tasks and futures use -------------------------
    def call_soon(self, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any],  # type: ignore[override]
                   *args: Any, context: contextvars.Context | None = None
                   ) -> asyncio.TimerHandle:
        raise OnwardError(
            "workflow code used asyncio's wall clock (asyncio.sleep or a timeout=); "
            "use workflow.sleep() or the timeout= of workflow calls instead"
        )

    def call_at(self, when: float, callback: Callable[..., Any],  # type: ignore[override]
                *args: Any, context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return self.call_later(0, callback)

    def time(self) -> float:
        return self._now()

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
                    *, name: str | None = None,
                    context: contextvars.Context | None = None) -> asyncio.Task[Any]:
        return asyncio.Task(coro, loop=self, name=name, context=context)

    get_debug = staticmethod(bool)
    """Always False (``bool()``): asyncio asks on every handle, future and task, and a
    builtin answers without a Python frame."""

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Ignored: a failure of workflow code reaches the engine through its main task
        (a forgotten task's exception has nowhere to go, as in any asyncio program)."""

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Ignored, like :meth:`call_exception_handler`."""

    def get_exception_handler(self) -> None:
        return None

    def set_exception_handler(self, handler: Any) -> None:
        raise OnwardError("workflow code cannot replace the loop's exception handler")

    def get_task_factory(self) -> None:
        return None

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass
