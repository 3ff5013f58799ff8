"""Authoring API for workflows: ``@workflow.defn`` and the deterministic calls inside them.

Every call here is recorded in the run's history (or read back from it on replay), so
workflow code must reach the outside world only through these calls.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from . import business, convert
from .activity import definition_of as activity_definition_of
from .errors import BadInput, OnwardError
from .loop import DeterministicLoop
from .retry import RetryPolicy, optional_duration
from .retry import duration as check_duration
from .workflow_runtime import ContinueAsNew, WorkflowInfo, WorkflowRuntime

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__onward_workflow__"
DEFAULT_START_TO_CLOSE = 300.0

__all__ = [
    "WorkflowDefinition", "WorkflowInfo", "business_days", "continue_as_new", "defn",
    "deprecate_patch", "execute_activity", "execute_child", "info", "manual_task", "now",
    "patched", "random", "set_query_handler", "sleep", "uuid4", "wait_signal",
]


@dataclass
class WorkflowDefinition:
    """A workflow coroutine function with its registered name."""

    name: str
    fn: Callable[..., Any]
    provider: str = ""


@overload
def defn(fn: F) -> F: ...
@overload
def defn(*, name: str | None = None) -> Callable[[F], F]: ...
def defn(fn: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark an ``async def`` as a workflow; ``name`` defaults to the function's name."""

    def mark(func: F) -> F:
        if not inspect.iscoroutinefunction(func):
            raise OnwardError(f"workflow {func.__qualname__} must be an async def")
        setattr(func, ATTRIBUTE, WorkflowDefinition(name or func.__name__, func))
        return func

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


async def execute_activity(
    activity: str | Callable[..., Any],
    *args: Any,
    retry_policy: RetryPolicy | None = None,
    start_to_close_timeout: float | timedelta | None = None,
    schedule_to_close_timeout: float | timedelta | None = None,
    heartbeat_timeout: float | timedelta | None = None,
    retry: RetryPolicy | None = None,
) -> Any:
    """Run an activity under a retry policy; its result, or ``ActivityError`` at the end.

    Bad options (a negative, zero, NaN or infinite timeout, say) raise ``BadInput`` here,
    naming the argument, and nothing is scheduled. Arguments are stored as JSON (see
    onward.convert); the result arrives as the activity's return hint declares when it is
    called by function, or by name when this worker has its code, else as JSON.
    """
    where = "execute_activity"
    options = {
        "retry": _retry_option(retry, retry_policy).to_json(),
        "start_to_close": optional_duration(start_to_close_timeout, "start_to_close_timeout",
                                            where) or DEFAULT_START_TO_CLOSE,
        "schedule_to_close": optional_duration(schedule_to_close_timeout,
                                               "schedule_to_close_timeout", where),
        "heartbeat": optional_duration(heartbeat_timeout, "heartbeat_timeout", where),
    }
    inst = _instance()
    name = _name_of(activity, "activity")
    result = await inst.schedule_activity(name, list(args), options)
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
                        id: str | None = None) -> Any:  # noqa: A002 - the contract's name
    """Run a child workflow with its own id and history; its result or ChildWorkflowError.

    The result is typed by the child's return hint when it is called by function."""
    inst = _instance()
    name = _name_of(workflow, "workflow")
    result = await inst.start_child(name, list(args), id)
    if isinstance(workflow, str):
        return result
    return convert.result_of(workflow, result, f"the result of child workflow {name}")


def continue_as_new(*args: Any) -> None:
    """End this run and start a fresh run of the same id (a new history) with ``args``."""
    _instance()
    raise ContinueAsNew(convert.to_json(list(args), "continue-as-new arguments"))


def patched(patch_id: str) -> bool:
    """True in runs that reach this point with the patch (new runs and patched histories)."""
    return _instance().patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """Mark a patch whose old branch is gone; histories with or without it still replay."""
    _instance().patched(patch_id, deprecated=True)


def now() -> datetime:
    """The workflow's deterministic time: when the event being handled was recorded."""
    return datetime.fromtimestamp(_instance().now, UTC)


def random() -> float:
    """A deterministic random float in [0, 1), seeded by the run."""
    return _instance().random.random()


def uuid4() -> uuid.UUID:
    """A deterministic UUID, the same on every replay of this run."""
    return uuid.UUID(int=_instance().random.getrandbits(128), version=4)


def info() -> WorkflowInfo:
    """Ids, type and start time of the running workflow."""
    return _instance().info


def set_query_handler(name: str, fn: Callable[..., Any]) -> None:
    """Answer ``onward query ID name`` with ``fn(*args)``; it must only read state."""
    _instance().query_handlers[name] = fn


def business_days(days: int, holidays: tuple[str, ...] = ()) -> timedelta:
    """How long from now until ``days`` business days have passed (weekends skipped)."""
    start = now()
    return business.add_business_days(start, days, holidays) - start
