"""What a running workflow does with its handlers: signals delivered to their handlers (or
buffered), updates validated and run, queries answered, and ``wait_condition`` predicates
re-checked after every event. A mixin of :class:`~onward.instance.WorkflowInstance`,
kept apart so that module stays about driving code through history."""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import convert
from .errors import ApplicationError, NotFound, OnwardError, error_json, safe_str

if TYPE_CHECKING:
    from .handlers import Handlers
    from .loop import DeterministicLoop
    from .workflow_runtime import WorkflowInfo

_log = logging.getLogger("onward.workflow")


class UpdateRejection(Exception):  # noqa: N818 - a validator's verdict, not a failure
    """A validator (or a missing handler) turned an update request down."""


class Handling:
    """Handlers and conditions of a :class:`WorkflowInstance` (its state lives there)."""

    if TYPE_CHECKING:  # the instance's state and calls these methods use
        info: WorkflowInfo
        loop: DeterministicLoop
        handlers: Handlers
        closed: bool
        open_updates: int
        _failure: BaseException | None
        _conditions: list[tuple[Callable[[], Any], asyncio.Future[Any]]]
        _signal_buffer: dict[str, collections.deque[tuple[int, Any]]]
        _signal_waiters: dict[str, collections.deque[asyncio.Future[Any]]]

        @property
        def is_replaying(self) -> bool: ...
        def _command(self, event_type: str, attrs: dict[str, Any], *,
                     source: Any = None) -> int: ...
        def _fail_task(self, exc: BaseException) -> None: ...

    def _check_conditions(self) -> None:
        """Resolve the ``wait_condition`` futures whose predicates are now true, and run
        the code they release, until no more become true."""
        while self._conditions and self._failure is None:
            waiting = [(test, fut) for test, fut in self._conditions if not fut.done()]
            released = [fut for test, fut in waiting if test()]
            self._conditions = [(test, fut) for test, fut in waiting if fut not in released]
            if not released:
                return
            for future in released:
                future.set_result(None)
            self.loop.run_until_quiet()

    def _run_handler(self, what: str, fn: Callable[..., Any], args: list[Any], *,
                     update: tuple[str, str] | None = None) -> None:
        """Run a signal or update handler: a plain function now, a coroutine as a task.
        An update's outcome is recorded as its UpdateCompleted command."""
        try:
            value = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - the handler's failure is recorded
            self._handler_finished(what, update, None, exc)
            return
        if not asyncio.iscoroutine(value):
            self._handler_finished(what, update, value, None)
            return
        task = self.loop.create_task(value, name=what)

        def done(task: asyncio.Task[Any]) -> None:
            if task.cancelled():
                self._handler_finished(what, update, None, asyncio.CancelledError())
            else:
                exc = task.exception()
                self._handler_finished(what, update, None if exc else task.result(), exc)
        task.add_done_callback(done)

    def _handler_finished(self, what: str, update: tuple[str, str] | None, value: Any,
                          exc: BaseException | None) -> None:
        if update is None:
            if exc is not None and not isinstance(exc, asyncio.CancelledError):
                self._fail_task(exc)  # a signal handler's bug holds the run, as the body's
            return
        self.open_updates -= 1
        update_id, name = update
        if self.closed or self._failure is not None:
            return
        if exc is None:
            try:
                result = convert.to_json(value, f"the result of update {name}")
            except OnwardError as err:
                exc = err
            else:
                self._command("UpdateCompleted", {"update_id": update_id, "name": name,
                                                  "result": result}, source="")
                return
        if isinstance(exc, (ApplicationError, TimeoutError, asyncio.CancelledError,
                            OnwardError)):
            self._command("UpdateCompleted", {"update_id": update_id, "name": name,
                                              "error": error_json(exc)}, source="")
        else:
            self._fail_task(exc)

    def validate_update(self, name: str, args: list[Any]) -> None:
        """Run update ``name``'s validator against the current state; raises
        :class:`UpdateRejection` when there is no such handler or the validator raises.
        Runs outside any activation, so nothing it does can record a command."""
        entry = self.handlers.updates.get(name)
        if entry is None:
            known = ", ".join(sorted(self.handlers.updates)) or "none"
            raise UpdateRejection(f"run {self.info.workflow_id} has no update {name!r} "
                                  f"(known: {known})")
        try:
            args = convert.bind_args(entry[0], args, f"update {name}")
        except OnwardError as err:
            raise UpdateRejection(str(err)) from None
        validator = entry[1]
        if validator is None:
            return
        try:
            validator(*args)
        except Exception as err:  # noqa: BLE001 - any exception rejects the request
            raise UpdateRejection(f"{type(err).__name__}: {safe_str(err)[:2000]}") from None

    def set_signal_handler(self, name: str, fn: Callable[..., Any]) -> None:
        self.handlers.signals[name] = fn
        buffered = self._signal_buffer.pop(name, None)
        for _, payload in buffered or ():
            self._deliver_signal(name, fn, payload)

    def _deliver_signal(self, name: str, handler: Callable[..., Any], payload: Any) -> None:
        """Run ``handler`` on a signal's payload, converted by its hint; a payload that
        does not fit is dropped with a warning (the same on every replay), not the run."""
        try:
            args = convert.bind_args(handler, _signal_args(handler, {"payload": payload}),
                                     f"signal {name}")
        except OnwardError as err:
            if not self.is_replaying:
                _log.warning("run %s dropped signal %s: %s", self.info.workflow_id, name, err,
                             extra={"workflow_id": self.info.workflow_id,
                                    "run_id": self.info.run_id})
            return
        self._run_handler(f"signal {name}", handler, args)

    def condition_future(self, predicate: Callable[[], Any]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        self._conditions.append((predicate, future))
        return future

    def query(self, name: str, args: list[Any]) -> Any:
        handler = self.handlers.queries.get(name)
        if handler is None:
            known = ", ".join(sorted(self.handlers.queries)) or "none"
            raise NotFound(f"run {self.info.workflow_id} has no query {name!r} (known: {known})")
        args = convert.bind_args(handler, args, f"arguments of query {name}")
        return convert.to_json(handler(*args), f"the result of query {name}")


def _signal_args(handler: Callable[..., Any], attrs: dict[str, Any]) -> list[Any]:
    """A signal's payload is its handler's one argument (none if the handler takes none)."""
    try:
        takes = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                    for p in inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        takes = True
    return [attrs.get("payload")] if takes else []

