"""A handle on a run: its workflow id (following its newest run), and a way to wait for
its result that sleeps until this process closes a run or anything commits."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import convert, history, payloads
from .errors import NotFound, RunStillOpen, WorkflowFailed

if TYPE_CHECKING:
    from .client import Engine


class RunHandle:
    """A workflow id (following its newest run) with a way to wait for its result."""

    def __init__(self, engine: Engine, workflow_id: str, run_id: str, *, created: bool = True,
                 closes_at_start: int | None = None) -> None:
        self.engine = engine
        self.id = workflow_id
        self.run_id = run_id
        self.created = created
        self._closes_at_start = closes_at_start
        """The engine's close count before the start, when this process's worker took the
        run: ``result`` then waits for a close before its first read (a workflow task run
        here announces its close; a read before one would find the run still open)."""

    def __repr__(self) -> str:
        return f"RunHandle(id={self.id!r}, run_id={self.run_id!r})"

    def status(self) -> str:
        """The status of the id's newest run."""
        return str(self.engine.show(self.id, history=False)["status"])

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
        seen, self._closes_at_start = self._closes_at_start, None
        feed = self.engine.runtime.feed
        if seen is not None and self.engine.runtime.workers:  # (a stopped one announces none)
            self.engine.wait_for_close(0.05 if timeout is None else min(0.05, timeout), seen)
        while True:
            closes = feed.closes_seen  # before reading: a close after it wakes us
            with self.engine.store.read() as tx:
                run = history.current_run(tx, self.id)
            if run is None:
                raise NotFound(f"no run with id {self.id}")
            if run.status == "completed":
                value = payloads.loads(run.result)
                what = f"the result of run {self.id}"
                if result_type is not None:
                    return convert.from_json(value, result_type, what)
                if self.workflow_fn is not None:
                    return convert.result_of(self.workflow_fn, value, what)
                return value
            if run.status not in ("running", "continued_as_new"):
                error = json.loads(run.error) if run.error else {}
                raise WorkflowFailed(
                    f"run {self.id} {run.status}: {error.get('message', '')}",
                    status=run.status, error=error)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise RunStillOpen(f"run {self.id} is still {run.status}"
                                   + (" (stuck)" if run.stuck else ""))
            self.engine.wait_for_close(0.05 if remaining is None else min(0.05, remaining),
                                       closes)
