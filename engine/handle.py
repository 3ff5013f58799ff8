"""A handle on a run: its workflow id (following its newest run), and a way to wait for
its result that sleeps until this process closes a run or anything commits (``result``),
or that awaits the same without blocking an asyncio event loop (``result_async``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import convert, history, payloads
from .errors import NotFound, RunStillOpen, WorkflowFailed
from .history import RunRow

if TYPE_CHECKING:
    from .client import Engine

WAITED_THROUGH = ("running", "continued_as_new")
"""Statuses a result waiter keeps waiting through (a continued run's id goes on in its
new run, which ``current_run`` follows)."""


def is_settled(run: RunRow | None) -> bool:
    """True when ``result`` has an answer for this read of an id's current run: the run
    closed for good, or there is none."""
    return run is None or run.status not in WAITED_THROUGH


def outcome(workflow_id: str, run: RunRow | None) -> Any:
    """What ``result`` says of a read of ``workflow_id``'s current run: the run's result
    if it completed; NotFound if there is no run; WorkflowFailed if it failed, was
    canceled or terminated; RunStillOpen if it is still open (the wait timed out)."""
    if run is None:
        raise NotFound(f"no run with id {workflow_id}")
    if run.status == "completed":
        return payloads.loads(run.result)
    if run.status in WAITED_THROUGH:
        raise RunStillOpen(f"run {workflow_id} is still {run.status}"
                           + (" (stuck)" if run.stuck else ""))
    error = json.loads(run.error) if run.error else {}
    raise WorkflowFailed(f"run {workflow_id} {run.status}: {error.get('message', '')}",
                         status=run.status, error=error)


class RunHandle:
    """A workflow id (following its newest run) with a way to wait for its result."""

    def __init__(self, engine: Engine, workflow_id: str, run_id: str, *, created: bool = True,
                 closes_at_start: int | None = None) -> None:
        self.engine = engine
        self.id = workflow_id
        self.run_id = run_id
        self.created = created
        self._closes_at_start = closes_at_start
        """Set (to the engine's close count before the start) when this process's worker
        took the run: ``result`` then waits for the run's close before its first read (a
        workflow task run here announces it; a read before would find the run open)."""

    def __repr__(self) -> str:
        return f"RunHandle(id={self.id!r}, run_id={self.run_id!r})"

    def status(self) -> str:
        """The status of the id's newest run."""
        return str(self.engine.show(self.id, history=False)["status"])

    async def status_async(self) -> str:
        """``status``, awaited: the read runs on the engine's threads, not the loop."""
        return str((await self.engine.show_async(self.id, history=False))["status"])

    workflow_fn: Callable[..., Any] | None = None
    """The workflow function, when ``Engine.start`` was given one (not a name): ``result``
    then converts the result by its return hint."""

    def result(self, timeout: float | None = None, *, result_type: Any = None) -> Any:
        """Block until the run closes; its result, or WorkflowFailed (RunStillOpen on timeout).

        The result is JSON as stored, unless ``result_type`` names a type to convert it to
        (``result_type=Receipt``, ``list[Receipt]``: Temporal's name) or the handle came
        from ``start`` with the workflow function, whose return hint then says; a result
        that does not fit raises PayloadError naming the path to the bad field."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ran_here = self._closes_at_start is not None
        self._closes_at_start = None
        runtime = self.engine.runtime
        watched = self.run_id
        while True:
            # Registered before the read: a close announced after it releases the waiter
            # (None: announced already, or no worker here to announce one).
            waiter = runtime.feed.watch_close(watched) if runtime.workers else None
            try:
                if ran_here and waiter is not None:  # its close is announced here: the read
                    ran_here = False                 # waits for it (one read, not two)
                    if waiter.wait(self._slice(deadline)):
                        closed, waiter = waiter.row, None
                        if closed is not None and is_settled(closed):  # handed over: no read
                            return self._typed(outcome(self.id, closed), result_type)
                while True:
                    with self.engine.store.read() as tx:
                        run = history.current_run(tx, self.id)
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if is_settled(run) or (remaining is not None and remaining <= 0):
                        return self._typed(outcome(self.id, run), result_type)
                    assert run is not None
                    if run.run_id != watched:  # continued as new: watch the new run
                        break
                    if waiter is None:  # any close, a commit elsewhere, or 50 ms
                        self.engine.wait_for_close(self._slice(deadline))
                    elif waiter.wait(self._slice(deadline)):
                        closed, waiter = waiter.row, None
                        if closed is not None and is_settled(closed):  # (else: read)
                            return self._typed(outcome(self.id, closed), result_type)
            finally:
                if waiter is not None:
                    runtime.feed.unwatch(watched, waiter)
            watched = run.run_id

    @staticmethod
    def _slice(deadline: float | None) -> float:
        """How long one wait lasts: 50 ms at most, so that a close made by another process
        is found by the next read."""
        return 0.05 if deadline is None else max(0.0, min(0.05, deadline - time.monotonic()))

    def _typed(self, value: Any, result_type: Any) -> Any:
        """A completed run's JSON result converted by ``result_type`` or the workflow's
        return hint (as JSON when neither is known)."""
        what = f"the result of run {self.id}"
        if result_type is not None:
            return convert.from_json(value, result_type, what)
        if self.workflow_fn is not None:
            return convert.result_of(self.workflow_fn, value, what)
        return value

    async def result_async(self, timeout: float | None = None,  # noqa: ASYNC109
                           *, result_type: Any = None) -> Any:
        """``result`` for asyncio code: await the run's close without blocking the loop.

        Returns the run's result; raises WorkflowFailed, NotFound, or RunStillOpen after
        ``timeout`` seconds, as ``result`` does. No thread is held while waiting: the
        engine's one waiter thread (``engine.aio``) wakes the awaiting task when the run
        closes, here or in another process. Cancelling the awaiting task (or an enclosing
        ``asyncio.timeout``) stops the wait only; the run goes on."""
        run = await self.engine.aio.wait_closed(self.id, timeout)
        return self._typed(outcome(self.id, run), result_type)
