"""Authoring API for activities: ``@activity.defn``, ``activity.info()``, ``activity.heartbeat()``.

Activities are the calls to the outside world. They may be ``def`` (run in a thread pool)
or ``async def`` (run on the worker's activity event loop).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, overload

from . import convert
from .errors import OnwardError

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__onward_activity__"


@dataclass
class ActivityDefinition:
    """An activity function with its registered name and optional rate limits."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    max_concurrent: int | None = None
    max_per_second: float | None = None
    provider: str = ""
    provider_version: str = ""


@dataclass
class ActivityInfo:
    """What an activity attempt knows about itself (``activity.info()``)."""

    activity: str
    attempt: int
    workflow_id: str
    run_id: str
    activity_id: int
    idempotency_key: str
    heartbeat_details: Any = None
    provider: str = ""
    provider_version: str = ""
    _heartbeat: Callable[[Any], None] | None = field(default=None, repr=False)
    _cancelled: bool = field(default=False, repr=False)
    _stop: bool = field(default=False, repr=False)
    _on_stop: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def is_cancelled(self) -> bool:
        """True once the engine has asked this attempt to stop: it timed out, was taken
        away, or the workflow canceled the activity (``heartbeat()`` then raises)."""
        return self._cancelled or self._stop

    @property
    def given_up(self) -> bool:
        """True once the engine has given up on this attempt: its outcome is dropped."""
        return self._cancelled

    def give_up(self) -> None:
        """Mark the attempt given up on (engine use): ``is_cancelled`` turns True."""
        self._cancelled = True
        self._stopped()

    def request_stop(self) -> None:
        """Ask the attempt to stop, its outcome still wanted (engine use): the workflow
        canceled the activity. ``heartbeat()`` raises; an async attempt is cancelled."""
        self._stop = True
        self._stopped()

    def when_stopped(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` when the attempt is asked to stop or given up on (engine use: an
        async attempt's task is cancelled). Not called if that happened already."""
        self._on_stop = fn

    def _stopped(self) -> None:
        on_stop, self._on_stop = self._on_stop, None
        if on_stop is not None:
            on_stop()


_current: contextvars.ContextVar[ActivityInfo | None] = contextvars.ContextVar(
    "onward_activity_info", default=None
)


@overload
def defn(fn: F) -> F: ...
@overload
def defn(
    *, name: str | None = None, max_concurrent: int | None = None,
    max_per_second: float | None = None,
) -> Callable[[F], F]: ...
def defn(
    fn: F | None = None,
    *,
    name: str | None = None,
    max_concurrent: int | None = None,
    max_per_second: float | None = None,
) -> F | Callable[[F], F]:
    """Mark a function as an activity; ``name`` defaults to the function's name.

    ``max_concurrent`` and ``max_per_second`` limit attempts across every worker
    sharing the database, to protect the provider behind the activity.
    """

    def mark(func: F) -> F:
        setattr(func, ATTRIBUTE, ActivityDefinition(
            name=name or func.__name__,
            fn=func,
            is_async=inspect.iscoroutinefunction(func),
            max_concurrent=max_concurrent,
            max_per_second=max_per_second,
        ))
        return func

    return mark(fn) if fn is not None else mark


def definition_of(obj: Any) -> ActivityDefinition | None:
    """The activity definition attached to ``obj`` by ``@activity.defn``, if any.

    For a bound method (``@activity.defn`` on a method, offered as ``instance.method``)
    the definition calls the bound method, so the activity gets its ``self``.
    """
    found = getattr(obj, ATTRIBUTE, None)
    if not isinstance(found, ActivityDefinition):
        return None
    if inspect.ismethod(obj) and found.fn is obj.__func__:
        return replace(found, fn=obj)
    return found


def info() -> ActivityInfo:
    """Info about the running attempt: attempt number, ids and the idempotency key."""
    current = _current.get()
    if current is None:
        raise OnwardError("activity.info() was called outside an activity attempt")
    return current


def heartbeat(details: Any = None) -> None:
    """Tell the engine this attempt is alive; ``details`` are kept for the next attempt
    (``info().heartbeat_details`` there, as JSON: a dataclass reaches it as a dict).
    Details with no JSON form raise PayloadError here, naming the path to the bad field.

    Raises ``asyncio.CancelledError`` once the engine has asked the attempt to stop: the
    workflow canceled the activity (or its run), or the attempt timed out or was taken
    over. Clean up (``except``/``finally``) and let it propagate."""
    current = info()
    if current.is_cancelled:
        raise asyncio.CancelledError(
            f"activity {current.activity} attempt {current.attempt} was asked to stop")
    details = convert.to_json(details, "heartbeat details")
    current.heartbeat_details = details
    if current._heartbeat is not None:
        current._heartbeat(details)


def set_current(value: ActivityInfo | None) -> contextvars.Token[ActivityInfo | None]:
    """Install the info of the attempt about to run (engine use)."""
    return _current.set(value)


def reset_current(token: contextvars.Token[ActivityInfo | None]) -> None:
    """Put back the info ``set_current`` replaced (engine use)."""
    _current.reset(token)


class ActivityLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Records under ``onward.activity`` carrying the attempt's context as fields:
    workflow_id, run_id, activity and attempt (outside an attempt: none)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]
                ) -> tuple[Any, MutableMapping[str, Any]]:
        current = _current.get()
        if current is not None:
            extra = {"workflow_id": current.workflow_id, "run_id": current.run_id,
                     "activity": current.activity, "attempt": current.attempt}
            kwargs["extra"] = {**extra, **(kwargs.get("extra") or {})}
        return msg, kwargs


logger = ActivityLogger(logging.getLogger("onward.activity"), {})
"""``activity.logger.info("...")`` inside an activity."""
