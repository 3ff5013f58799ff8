"""Authoring API for workflows: ``@workflow.defn`` and the deterministic calls inside them.

Every call here is recorded in the run's history (or read back from it on replay), so
workflow code must reach the outside world only through these calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import random as random_module
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from . import business, convert
from .activity import definition_of as activity_definition_of
from .errors import BadInput, OnwardError
from .external import ChildWorkflowHandle, ExternalWorkflowHandle, child_options
from .handlers import ClassWorkflow, UpdateMethod, function_update, query, run, signal, update
from .loop import DeterministicLoop
from .retry import RetryPolicy, optional_duration
from .retry import duration as check_duration
from .workflow_logger import logger
from .workflow_runtime import (
    CANCELLATION_TYPES,
    WAIT_CANCELLATION_COMPLETED,
    ContinueAsNew,
    WorkflowInfo,
    WorkflowRuntime,
)

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__onward_workflow__"
DEFAULT_START_TO_CLOSE = 300.0

__all__ = [
    "ActivityHandle", "ChildWorkflowHandle", "ExternalWorkflowHandle", "UpdateMethod",
    "WorkflowDefinition", "WorkflowInfo", "business_days", "continue_as_new", "defn",
    "deprecate_patch", "execute_activity", "execute_child", "get_external_workflow_handle",
    "info", "logger", "manual_task", "now", "patched", "query", "random", "run",
    "set_query_handler", "set_signal_handler", "set_update_handler", "signal", "sleep",
    "start_activity", "start_child", "update", "upsert_search_attributes",
    "uuid4", "wait_condition", "wait_signal",
]


@dataclass
class WorkflowDefinition:
    """A workflow with its registered name: ``fn`` is the coroutine function the engine
    runs (for a class workflow, one that makes the object and runs its run method)."""

    name: str
    fn: Callable[..., Any]
    provider: str = ""
    cls: type | None = None
    """The class of a class workflow (None for a function workflow)."""

    def handler_names(self) -> dict[str, list[str]]:
        """The signal, query and update names a class declares (function workflows set
        theirs while running, so theirs are not known here)."""
        shape = getattr(self.cls, "__onward_class__", None) if self.cls else None
        if not isinstance(shape, ClassWorkflow):
            return {"signals": [], "queries": [], "updates": []}
        return {"signals": sorted(shape.signals), "queries": sorted(shape.queries),
                "updates": sorted(shape.updates)}


T = TypeVar("T")


@overload
def defn(fn: T) -> T: ...
@overload
def defn(*, name: str | None = None) -> Callable[[T], T]: ...
def defn(fn: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
    """Mark an ``async def`` or a class (with an ``@workflow.run`` method) as a workflow;
    ``name`` defaults to the function's or class's name."""

    def mark(target: T) -> T:
        if isinstance(target, type):
            shape = ClassWorkflow(target)
            main = shape.make_main(lambda obj: shape.bind(obj, _instance().handlers))
            target.__onward_class__ = shape  # type: ignore[attr-defined]
            setattr(target, ATTRIBUTE, WorkflowDefinition(name or target.__name__, main,
                                                          cls=target))
            return target
        func: Any = target
        if not inspect.iscoroutinefunction(func):
            raise OnwardError(f"workflow {getattr(func, '__qualname__', func)!r} must be "
                              "an async def or a class with an @workflow.run method")
        setattr(func, ATTRIBUTE, WorkflowDefinition(name or func.__name__, func))
        return target

    return mark(fn) if fn is not None else mark


def definition_of(obj: Any) -> WorkflowDefinition | None:
    """The workflow definition attached to ``obj`` by ``@workflow.defn``, if any."""
    return getattr(obj, ATTRIBUTE, None)


def _instance() -> WorkflowRuntime:
    """The runtime of the run whose code is calling (on its deterministic loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if not isinstance(loop, DeterministicLoop) or loop.owner is None:
        raise OnwardError("this workflow call can only be made inside workflow code")
    return loop.owner


def _name_of(name_or_fn: str | Callable[..., Any], what: str) -> str:
    if isinstance(name_or_fn, str):
        return name_or_fn
    if what == "activity":
        defn_ = activity_definition_of(name_or_fn)
    else:
        defn_ = definition_of(name_or_fn)  # type: ignore[assignment]
    if defn_ is None:
        raise OnwardError(f"{name_or_fn!r} is not a registered {what}; "
                          f"decorate it with @{what}.defn or pass its name")
    return defn_.name


def _retry_option(retry: Any, retry_policy: Any) -> RetryPolicy:
    """The retry policy of ``execute_activity`` (``retry_policy=``, or its alias ``retry=``)."""
    if retry is not None and retry_policy is not None:
        raise BadInput("execute_activity(retry=..., retry_policy=...): give one of them, "
                       "not both (retry= is an alias of retry_policy=)")
    policy = retry_policy if retry_policy is not None else retry
    if policy is None:
        return RetryPolicy()
    if not isinstance(policy, RetryPolicy):
        name = "retry_policy" if retry_policy is not None else "retry"
        raise BadInput(f"execute_activity({name}={policy!r:.60}): must be a RetryPolicy")
    return policy


class ActivityHandle:
    """An activity started by ``workflow.start_activity``: ``await`` it for its result
    (or ``ActivityError``); ``cancel()`` stops waiting for it, under its cancellation type.
    """

    def __init__(self, inst: WorkflowRuntime, seq: int, future: asyncio.Future[Any],
                 name: str, cancellation_type: str) -> None:
        self._inst = inst
        self._seq = seq
        self._future = future
        self.name = name
        """The activity's registered name."""
        self.cancellation_type = cancellation_type

    @property
    def activity_id(self) -> int:
        """The history seq of the activity's ActivityScheduled event."""
        return self._seq

    def done(self) -> bool:
        """True once the activity's outcome is known to the code (or it was canceled)."""
        return self._future.done()

    def cancel(self, reason: str = "") -> None:
        """Cancel the activity (recorded as ActivityCanceled): try_cancel tells the
        running attempt and the await raises ``asyncio.CancelledError`` at once;
        wait_cancellation_completed tells it and the await raises once the attempt ended
        (or returns its result if it completed); abandon leaves the attempt running,
        untold. No effect once the activity has ended."""
        self._inst.cancel_activity(self._seq, reason)

    def __await__(self) -> Any:
        if self.cancellation_type != WAIT_CANCELLATION_COMPLETED:
            return self._future.__await__()  # a cancel of the waiting task cancels it
        return self._wait().__await__()

    async def _wait(self) -> Any:
        """Await the activity under wait_cancellation_completed."""
        try:
            return await asyncio.shield(self._future)
        except asyncio.CancelledError:
            if self._future.done():
                raise  # the activity itself ended canceled
            # The waiting task was canceled (say, the run was): cancel the activity and
            # wait for its attempt to end before the cancellation goes on.
            self._inst.cancel_activity(self._seq, "the code stopped waiting")
            while not self._future.done():
                try:
                    await asyncio.shield(self._future)
                except BaseException:  # noqa: BLE001, S110 - only its ending matters here
                    pass
            raise


def _activity_options(where: str, retry_policy: RetryPolicy | None,
                      start_to_close_timeout: float | timedelta | None,
                      schedule_to_close_timeout: float | timedelta | None,
                      heartbeat_timeout: float | timedelta | None, retry: RetryPolicy | None,
                      cancellation_type: str) -> dict[str, Any]:
    if cancellation_type not in CANCELLATION_TYPES:
        raise BadInput(f"{where}(cancellation_type={cancellation_type!r:.60}): must be one "
                       f"of {', '.join(CANCELLATION_TYPES)}")
    if retry is None and retry_policy is None and start_to_close_timeout is None and \
            schedule_to_close_timeout is None and heartbeat_timeout is None:
        return _DEFAULT_OPTIONS  # (most calls: nothing to check or build; copied into
                                 # the command's attributes, never changed)
    return {
        "retry": _DEFAULT_RETRY if retry is None and retry_policy is None else
        _retry_option(retry, retry_policy).to_json(),
        "start_to_close": optional_duration(start_to_close_timeout, "start_to_close_timeout",
                                            where) or DEFAULT_START_TO_CLOSE,
        "schedule_to_close": optional_duration(schedule_to_close_timeout,
                                               "schedule_to_close_timeout", where),
        "heartbeat": optional_duration(heartbeat_timeout, "heartbeat_timeout", where),
    }


_DEFAULT_RETRY = RetryPolicy().to_json()
_DEFAULT_OPTIONS = {"retry": _DEFAULT_RETRY, "start_to_close": DEFAULT_START_TO_CLOSE,
                    "schedule_to_close": None, "heartbeat": None}
"""The options of an activity scheduled with none given, built once (the stored events
share the nested retry object: nothing changes it)."""


def start_activity(
    activity: str | Callable[..., Any],
    *args: Any,
    retry_policy: RetryPolicy | None = None,
    start_to_close_timeout: float | timedelta | None = None,
    schedule_to_close_timeout: float | timedelta | None = None,
    heartbeat_timeout: float | timedelta | None = None,
    retry: RetryPolicy | None = None,
    cancellation_type: str = "try_cancel",
) -> ActivityHandle:
    """Schedule an activity and return its handle at once (``await handle`` for the
    result; ``handle.cancel()`` to cancel it). Options as ``execute_activity``."""
    return _schedule(activity, args, _activity_options(
        "start_activity", retry_policy, start_to_close_timeout, schedule_to_close_timeout,
        heartbeat_timeout, retry, cancellation_type), cancellation_type)


def _schedule(activity: str | Callable[..., Any], args: tuple[Any, ...],
              options: dict[str, Any], cancellation_type: str) -> ActivityHandle:
    """Schedule an activity with checked ``options``; its handle."""
    inst = _instance()
    name = _name_of(activity, "activity")
    seq, future = inst.schedule_activity(name, list(args), options, cancellation_type)
    return ActivityHandle(inst, seq, future, name, cancellation_type)


async def execute_activity(
    activity: str | Callable[..., Any],
    *args: Any,
    retry_policy: RetryPolicy | None = None,
    start_to_close_timeout: float | timedelta | None = None,
    schedule_to_close_timeout: float | timedelta | None = None,
    heartbeat_timeout: float | timedelta | None = None,
    retry: RetryPolicy | None = None,
    cancellation_type: str = "try_cancel",
) -> Any:
    """Run an activity under a retry policy; its result, or ``ActivityError`` at the end.

    Bad options (a negative, zero, NaN or infinite timeout, an unknown
    ``cancellation_type``, say) raise ``BadInput`` here, naming the argument, and nothing
    is scheduled. ``cancellation_type`` says what happens when the waiting code is
    canceled (a run cancel, say): "try_cancel" (the default) tells the running attempt
    (its ``activity.heartbeat()`` raises, an async one is cancelled) and goes on at once;
    "wait_cancellation_completed" tells it and waits until it ended; "abandon" leaves it
    running, untold.
    Arguments are stored as JSON (see onward.convert); the result arrives as the
    activity's return hint declares when it is called by function, or by name when this
    worker has its code, else as JSON.
    """
    options = _activity_options(
        "execute_activity", retry_policy, start_to_close_timeout, schedule_to_close_timeout,
        heartbeat_timeout, retry, cancellation_type)
    inst = _instance()
    name = activity if isinstance(activity, str) else _name_of(activity, "activity")
    seq, future = inst.schedule_activity(name, list(args), options, cancellation_type)
    if cancellation_type == WAIT_CANCELLATION_COMPLETED:
        result = await ActivityHandle(inst, seq, future, name, cancellation_type)
    else:  # as ActivityHandle's await, without the handle: a cancel cancels the future
        result = await future
    code = inst.activity_code(name) if isinstance(activity, str) else \
        getattr(activity_definition_of(activity), "fn", None)
    if code is None:
        return result
    return convert.result_of(code, result, f"the result of activity {name}")


async def sleep(duration: float | timedelta) -> None:
    """A durable timer: survives restarts and fires once (zero just yields)."""
    secs = check_duration(duration, "duration", "sleep", zero=True)
    inst = _instance()
    if secs <= 0:
        await asyncio.sleep(0)
        return
    _, timer = inst.start_timer(secs)
    await timer


async def _with_timeout(inst: WorkflowRuntime, future: asyncio.Future[Any],
                        timeout: float, purpose: str) -> Any:
    _, timer = inst.start_timer(timeout, purpose=purpose)
    await asyncio.wait({future, timer}, return_when=asyncio.FIRST_COMPLETED)
    if future.done():
        timer.cancel()
        return future.result()
    future.cancel()
    raise TimeoutError(f"{purpose} timed out after {timeout:g}s")


async def wait_signal(name: str, timeout: float | timedelta | None = None) -> Any:
    """The next payload sent to this run under ``name``; ``TimeoutError`` after ``timeout``."""
    secs = optional_duration(timeout, "timeout", "wait_signal")
    inst = _instance()
    future = inst.signal_future(name)
    if future.done() or secs is None:
        return await future
    return await _with_timeout(inst, future, secs, f"signal {name}")


async def wait_condition(predicate: Callable[[], Any],
                         timeout: float | timedelta | None = None) -> None:
    """Resume once ``predicate()`` is true, checked after every event the run receives
    (signals, updates, completions); ``TimeoutError`` after ``timeout``. The predicate
    must only read workflow state."""
    secs = optional_duration(timeout, "timeout", "wait_condition")
    inst = _instance()
    if predicate():
        return
    future = inst.condition_future(predicate)
    if secs is None:
        await future
        return
    await _with_timeout(inst, future, secs, "wait_condition")


async def manual_task(
    kind: str,
    *,
    data: Any = None,
    assignee: str | None = None,
    instructions: str = "",
    timeout: float | timedelta | None = None,
) -> Any:
    """A task for a person, shown in the console's inbox; returns their result.

    Raises ``TimeoutError`` when ``timeout`` passes first (the task is then closed), and
    ``ApplicationError`` if the operator fails the task.
    """
    secs = optional_duration(timeout, "timeout", "manual_task")
    inst = _instance()
    attrs = {
        "kind": kind, "assignee": assignee, "instructions": instructions,
        "data": convert.to_json(data, f"data of manual task {kind}"),
        "deadline": inst.now + secs if secs is not None else None,
    }
    return await inst.create_manual_task(attrs)


async def execute_child(workflow: str | Callable[..., Any], *args: Any,
                        id: str | None = None,  # noqa: A002 - the contract's name
                        parent_close_policy: str = "terminate",
                        id_reuse_policy: str = "allow_duplicate") -> Any:
    """Run a child workflow with its own id and history; its result or ChildWorkflowError.
    The options are those of :func:`start_child`. The result is typed by the child's
    return hint when it is called by function."""
    result = await start_child(workflow, *args, id=id,
                               parent_close_policy=parent_close_policy,
                               id_reuse_policy=id_reuse_policy)
    if isinstance(workflow, str):
        return result
    return convert.result_of(workflow, result,
                             f"the result of child workflow {_name_of(workflow, 'workflow')}")


def start_child(workflow: str | Callable[..., Any], *args: Any,
                id: str | None = None,  # noqa: A002 - the contract's name
                parent_close_policy: str = "terminate",
                id_reuse_policy: str = "allow_duplicate") -> ChildWorkflowHandle:
    """Start a child workflow and return its handle at once: await the handle for the
    child's result (or ChildWorkflowError); ``.id``, ``.signal(name, payload)``, ``.cancel()``.

    ``id`` defaults to ``{this run's id}/{seq}``. ``parent_close_policy`` says what happens to
    the child if it is still open when this run closes (completed, failed, canceled,
    terminated or continued as new): ``"terminate"`` (a canceled parent asks it to cancel
    instead), ``"request_cancel"`` (it gets CancelRequested and may compensate) or
    ``"abandon"`` (it runs on). ``id_reuse_policy``: ``"allow_duplicate"`` (an id whose
    earlier run closed may be used again), ``"allow_duplicate_failed_only"`` (only if that
    run did not complete) or ``"reject_duplicate"`` (never); a refused start fails the child
    with ChildWorkflowError (cause type ``AlreadyStarted``). An id whose run is still open
    is always refused."""
    options = child_options(parent_close_policy, id_reuse_policy)
    inst = _instance()
    if id is not None and (not isinstance(id, str) or not id):
        raise BadInput("start_child: id must be a non-empty string")
    child_id, result = inst.start_child(_name_of(workflow, "workflow"), list(args), id, options)
    return ChildWorkflowHandle(inst, child_id, result)


def get_external_workflow_handle(workflow_id: str) -> ExternalWorkflowHandle:
    """A handle on the run of ``workflow_id`` (any run, not only a child): ``.signal(name,
    payload)`` and ``.cancel()``, recorded in this run's history. Awaiting either raises
    ``ApplicationError`` (type ``ExternalWorkflowNotFound``) if the id has no open run."""
    return ExternalWorkflowHandle(_instance(), workflow_id)


def continue_as_new(*args: Any) -> None:
    """End this run and start a fresh run of the same id (a new history) with ``args``."""
    _instance()
    raise ContinueAsNew(convert.to_json(list(args), "continue-as-new arguments"))


def upsert_search_attributes(attributes: dict[str, Any]) -> None:
    """Set (or, with None as value, remove) search attributes of this run, recorded as
    SearchAttributesUpserted. Names and values are checked here (BadInput); a value whose
    type differs from the one its name has in the store holds the run stuck, saying so."""
    from .search_attributes import check_names, type_of
    if not isinstance(attributes, dict) or not attributes:
        raise BadInput("upsert_search_attributes takes a non-empty dict of name -> value")
    check_names(attributes, allow_system=False)
    values: dict[str, Any] = {}
    for name, value in attributes.items():
        if value is not None and type_of(value) == "datetime" and isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        values[name] = value
    _instance().upsert_search_attributes(values)


def patched(patch_id: str) -> bool:
    """True in runs that reach this point with the patch (new runs and patched histories)."""
    return _instance().patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """Mark a patch whose old branch is gone; histories with or without it still replay."""
    _instance().patched(patch_id, deprecated=True)


def now() -> datetime:
    """The workflow's deterministic time: when the event being handled was recorded."""
    return datetime.fromtimestamp(_instance().now, UTC)


def random() -> random_module.Random:
    """The run's deterministic ``random.Random`` (seeded by the run: the same draws on
    every replay). ``workflow.random().randint(1, 6)``, ``.random()``, ``.choice(...)``."""
    return _instance().random


def uuid4() -> uuid.UUID:
    """A deterministic UUID, the same on every replay of this run."""
    return uuid.UUID(int=_instance().random.getrandbits(128), version=4)


def info() -> WorkflowInfo:
    """Ids, type and start time of the running workflow, with its history length so far
    (``info().history_length``, ``info().is_continue_as_new_suggested()``)."""
    inst = _instance()
    return dataclasses.replace(inst.info, history_length=inst.history_length)


def set_query_handler(name: str, fn: Callable[..., Any]) -> None:
    """Answer ``onward query ID name`` with ``fn(*args)``; it must only read state."""
    _instance().handlers.queries[name] = fn


def set_signal_handler(name: str, fn: Callable[..., Any]) -> None:
    """Deliver signal ``name`` to ``fn(payload)`` (sync or async) from now on; signals of
    that name already received and not yet taken are delivered to it at once, in order."""
    _instance().set_signal_handler(name, fn)


def set_update_handler(name: str, fn: Callable[..., Any],
                       validator: Callable[..., Any] | None = None) -> None:
    """Answer update ``name`` with ``fn(*args)`` (sync or async); ``validator(*args)`` may
    raise to reject a request before anything is recorded."""
    method = function_update(fn, name, validator)
    _instance().handlers.updates[name] = (method.fn, method.validator_fn)


def business_days(days: int, tz: str = "UTC", holidays: business.Holidays = ()) -> timedelta:
    """How long from now until ``days`` business days have passed, counted in ``tz``.

    Weekends and ``holidays`` are skipped: ISO dates and/or one country's calendar
    (``"DE"``, ``"US-CA"``, ``("US", "CA")``) from the ``holidays`` package. The end is at
    the same local wall-clock time (see engine/business.py for DST gaps and overlaps). The
    deadline is recorded in history on the first run and read back on replay, so a newer
    holiday calendar never moves it. Bad arguments raise ``BadInput`` naming the argument.
    """
    start = now()
    record = _instance().marker("business_days", lambda: business.deadline_record(
        start, days, tz, holidays))
    return datetime.fromisoformat(record["deadline"]) - start
