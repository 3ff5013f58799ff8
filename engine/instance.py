"""A running workflow: its coroutine on a deterministic loop, fed events from history.

``WorkflowInstance.activate(events)`` delivers the events that follow the instance's cursor,
one at a time in history order, running the loop until quiet after each. Every command
the code issues is matched, in order, against the command events already in history; a
command beyond the end of history is new and is returned for the worker to persist. The
same path serves a cached instance (a short tail) and a replay from scratch (the whole
history), so both give the same commands.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import random
from collections.abc import Callable
from typing import Any

from . import convert
from .activity import ActivityDefinition
from .commands import (
    CHILD_DEFAULTS,
    Activation,
    Command,
    Diverged,
    SourceLine,
    WorkflowTaskError,
    command_key,
    describe,
    is_patch_marker,
    source_line,
)
from .deadline import DeadlineWatch, Overrun, WorkflowDeadline
from .errors import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    NonDeterminismError,
    OnwardError,
    error_from_json,
    error_json,
    safe_str,
)
from .events import CANCEL_TYPES, COMMAND_TYPES, INBOUND_TYPES, Event
from .handlers import Handlers
from .instance_handlers import Handling, UpdateRejection
from .loop import DeterministicLoop
from .workflow_runtime import WAIT_CANCELLATION_COMPLETED, ContinueAsNew, WorkflowInfo

__all__ = ["Activation", "Command", "SourceLine", "UpdateRejection", "WorkflowInstance",
           "WorkflowTaskError"]


class WorkflowInstance(Handling):
    """One run's workflow code, advanced by history events."""

    def __init__(self, fn: Callable[..., Any], info: WorkflowInfo, *, last_seq: int = 0,
                 watch: DeadlineWatch | None = None,
                 activities: Callable[[str], ActivityDefinition | None] | None = None
                 ) -> None:
        self.fn = fn
        self._activity_lookup = activities
        """Activity definitions by name (the registry's), to type their results."""
        self.info = info
        self.cursor = 0                     # last history seq delivered
        self.next_seq = last_seq + 1
        self.now = info.start_time
        self.loop = DeterministicLoop(lambda: self.now)  # type: ignore[abstract]
        self.loop.owner = self
        self.loop.watch = watch
        self._random: random.Random | None = None
        self.handlers = Handlers()
        self._conditions: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        """``wait_condition`` predicates not yet true, with the futures they resolve."""
        self.open_updates = 0
        """Accepted updates whose handlers have not finished."""
        self.closed = False
        self._cancel_requested = False
        self._main: asyncio.Task[Any] | None = None
        self._recorded: collections.deque[Event] = collections.deque()
        self._pending: dict[int, tuple[str, asyncio.Future[Any], Callable[..., None]]] = {}
        """Futures the code awaits, by the seq of their command: (kind, future, its
        done-callback :meth:`_on_done`)."""
        self._activities: dict[int, tuple[str, str]] = {}
        """Activities awaited: (name, cancellation type) by the seq that scheduled them."""
        self._cancel_sent: set[int] = set()
        """Activities and timers whose cancel command was issued."""
        self._cancelling: set[int] = set()
        """Canceled activities whose code waits for the attempt to end."""
        self._left_running = False
        """An activity was canceled: its attempt may still run, its row wait for its end."""
        self.started_children = False
        self._signal_buffer: dict[str, collections.deque[tuple[int, Any]]] = {}
        """Signals received but not yet handled: (seq of their event, payload) by name."""
        self._signal_waiters: dict[str, collections.deque[asyncio.Future[Any]]] = {}
        self._activation: Activation | None = None
        self._failure: BaseException | None = None
        self.waiting_for = ""
        """What the code waits on that no command describes (a signal), for people."""
        self.external_lookup: Callable[[str], dict[str, Any]] | None = None
        """Set by the engine during a workflow task: finds the open run an external signal
        or cancel targets, as ``{"target_run_id": ...}`` or ``{"error": {...}}``."""
        self._matched: Event | None = None
        """The history event the last command matched (None: the command was new)."""

    @property
    def random(self) -> random.Random:
        """The run's deterministic random source, seeded by its run id (made when first
        used: seeding hashes the id, and most workflows never draw)."""
        if self._random is None:
            self._random = random.Random(self.info.run_id)
        return self._random

    @property
    def query_handlers(self) -> dict[str, Callable[..., Any]]:
        return self.handlers.queries

    @property
    def history_length(self) -> int:
        """Events up to the one being handled (``workflow.info().history_length``)."""
        return self.cursor

    @property
    def current_activation(self) -> Activation | None:
        """The activation under way (None between activations)."""
        return self._activation

    @property
    def is_replaying(self) -> bool:
        """The code is behind its history: commands it issues now were recorded before."""
        return bool(self._recorded)

    # -- driving ----------------------------------------------------------------------
    @property
    def holds_nothing(self) -> bool:
        """No activity, timer, task, child or update is outstanding, and no child was ever
        started: closing the run has no queue rows, children or updates to clean up."""
        return not self._pending and not self.started_children and not self.open_updates \
            and not self._left_running

    def activate(self, events: list[Event]) -> Activation:
        """Deliver ``events`` (all seq > cursor, in order); return the new commands.

        Raises :class:`WorkflowTaskError` when the code fails or diverges from history.
        """
        activation = Activation()
        self._activation = activation
        for event in events:
            if event.type in COMMAND_TYPES:
                self._recorded.append(event)
            if event.seq >= self.next_seq:
                self.next_seq = event.seq + 1
        try:
            for event in events:
                self.cursor = event.seq
                apply = _APPLY.get(event.type)
                if apply is None:
                    continue  # a command (matched above) or bookkeeping the code never sees
                self.now = event.time
                try:
                    apply(self, event)
                    self.loop.run_until_quiet()
                    if self._conditions:
                        self._check_conditions()
                except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
                    # asyncio lets these escape a task; workflow code raising them is a bug
                    self._fail_task(exc)
                except WorkflowDeadline as stop:
                    self._overran(stop)
                if self._failure is not None:
                    self._raise_failure()
            if self._failure is not None:
                self._raise_failure()
            if self._signal_buffer:
                self._carry_signals(activation)
            if self._recorded and not self.closed:
                extra = self._recorded[0]
                self._nondeterminism(
                    extra.seq,
                    f"history has {describe(extra.type, extra.attrs)} at event {extra.seq} "
                    "but the code did not ask for it",
                    recorded=describe(extra.type, extra.attrs), requested="nothing",
                    source="",
                )
                self._raise_failure()
        finally:
            self._activation = None
        self.cursor = self.next_seq - 1  # the new commands will be stored with these seqs
        return activation

    def unhandled_signals(self) -> list[dict[str, Any]]:
        """Signals received but not yet taken by ``wait_signal``, in arrival order."""
        waiting = [(seq, name, payload) for name, buffered in self._signal_buffer.items()
                   for seq, payload in buffered]
        return [{"name": name, "payload": payload} for _, name, payload in sorted(waiting)]

    def _carry_signals(self, activation: Activation) -> None:
        """A continue-as-new issued now takes the signals not yet handled (also those that
        arrived later in this activation) into the new run. (Called when some signal
        was buffered.)"""
        for command in activation.commands:
            if command.type == "WorkflowContinuedAsNew":
                signals = self.unhandled_signals()
                if signals:
                    command.attrs["signals"] = signals

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            if isinstance(failure, WorkflowTaskError):
                raise failure
            raise WorkflowTaskError(
                f"workflow code raised {type(failure).__name__}: {safe_str(failure)[:2000]}",
                kind="error", details={"error": error_json(failure)},
            )

    # -- inbound events: one _apply_<EventType> method each (dispatched by _APPLY) --------
    def _apply_WorkflowStarted(self, event: Event) -> None:  # noqa: N802 - named by type
        try:
            args = convert.bind_args(self.fn, event.attrs.get("input") or [],
                                     f"input of workflow {self.info.workflow_type}")
        except OnwardError as err:
            self._fail_task(err)
            return
        self._main = self.loop.create_task(self.fn(*args), name="main")
        self._main.add_done_callback(self._main_done)

    def _apply_CancelRequested(self, event: Event) -> None:  # noqa: N802
        if self._cancel_requested:
            return  # a request is a state: a later one (old histories) changes nothing
        self._cancel_requested = True
        if self._main is not None and not self._main.done():
            self._main.cancel()

    def _apply_SignalReceived(self, event: Event) -> None:  # noqa: N802
        name = event.attrs.get("name", "")
        handler = self.handlers.signals.get(name)
        if handler is not None:
            self._deliver_signal(name, handler, event.attrs.get("payload"))
            return
        waiters = self._signal_waiters.get(name)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(event.attrs.get("payload"))
                return
        self._signal_buffer.setdefault(name, collections.deque()).append(
            (event.seq, event.attrs.get("payload")))

    def _apply_UpdateAccepted(self, event: Event) -> None:  # noqa: N802
        attrs = event.attrs
        name, update_id = attrs.get("name", ""), attrs.get("update_id", "")
        entry = self.handlers.updates.get(name)
        if entry is None:
            self._fail_task(OnwardError(
                f"history accepted update {name!r} at event {event.seq} but the code has no "
                "handler for it"))
            return
        self.open_updates += 1
        try:
            args = convert.bind_args(entry[0], list(attrs.get("args") or []),
                                     f"update {name}")
        except OnwardError as err:  # validated before acceptance: only if the code changed
            self._handler_finished(f"update {name}", (update_id, name), None, err)
            return
        self._run_handler(f"update {name}", entry[0], args, update=(update_id, name))

    def _apply_ActivityCompleted(self, event: Event) -> None:  # noqa: N802
        self._settle(event, result=event.attrs.get("result"))

    _apply_TimerFired = _apply_ActivityCompleted  # noqa: N815
    _apply_ManualTaskCompleted = _apply_ActivityCompleted  # noqa: N815
    _apply_ChildWorkflowCompleted = _apply_ActivityCompleted  # noqa: N815

    def _apply_ActivityFailed(self, event: Event) -> None:  # noqa: N802
        attrs = event.attrs
        err = attrs.get("error") or {}
        self._settle(event, error=ActivityError(
            f"activity {attrs.get('name', '')} failed: {err.get('message', '')}",
            activity=attrs.get("name", ""), cause_type=err.get("type", ""),
            attempts=attrs.get("attempts", 0), timeout=bool(attrs.get("timeout")),
            cause=error_from_json(err) if err else None))

    def _apply_ManualTaskFailed(self, event: Event) -> None:  # noqa: N802
        self._settle(event, error=ApplicationError(
            event.attrs.get("reason") or "manual task failed", type="ManualTaskFailed",
            non_retryable=True))

    def _apply_ManualTaskTimedOut(self, event: Event) -> None:  # noqa: N802
        self._settle(event, error=TimeoutError(
            f"manual task {event.attrs.get('kind', '')} timed out"))

    def _apply_ChildWorkflowFailed(self, event: Event) -> None:  # noqa: N802
        attrs = event.attrs
        err = attrs.get("error") or {}
        self._settle(event, error=ChildWorkflowError(
            f"child workflow {attrs.get('child_id', '')} {attrs.get('status', 'failed')}: "
            f"{err.get('message', '')}",
            workflow=attrs.get("workflow", ""), child_id=attrs.get("child_id", ""),
            status=attrs.get("status", "failed"), cause=error_from_json(err) if err else None))

    def _settle(self, event: Event, *, result: Any = None,
                error: BaseException | None = None) -> None:
        """Resolve the future of the command ``event`` answers (by its ``ref``), if that
        command is still awaited."""
        ref = event.attrs.get("ref")
        if ref is None or ref not in self._pending:
            return
        _, future, on_done = self._pending.pop(ref)
        self._activities.pop(ref, None)
        if future.done():
            return
        if ref in self._cancelling:  # canceled, and the code waited for the attempt to end
            self._cancelling.discard(ref)
            if error is not None:
                future.cancel()
                return
        # _on_done acts on a cancellation alone: a future settled here needs no callback
        # (one call_soon and one loop step fewer per activity, timer or child)
        future.remove_done_callback(on_done)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _main_done(self, task: asyncio.Task[Any]) -> None:
        if self._failure is not None:
            return
        if task.cancelled():
            self._command("WorkflowCanceled", {}, source="")
            self.closed = True
            return
        exc = task.exception()
        if exc is None:
            try:
                result = convert.to_json(task.result(), "the workflow's result")
            except OnwardError as err:
                self._fail_task(err)
                return
            self._command("WorkflowCompleted", {"result": result}, source="")
        elif isinstance(exc, ContinueAsNew):
            self._command("WorkflowContinuedAsNew", {"input": exc.args_list}, source="")
        elif isinstance(exc, asyncio.CancelledError):
            self._command("WorkflowCanceled", {}, source="")
        elif isinstance(exc, (ApplicationError, TimeoutError)):
            self._command("WorkflowFailed", {"error": error_json(exc)}, source="")
        else:
            self._fail_task(exc)
            return
        self.closed = True

    def _overran(self, stop: WorkflowDeadline) -> None:
        """The code was stopped at its deadline: this failure replaces any other."""
        watch = self.loop.watch
        overrun = stop.args[0] if stop.args and isinstance(stop.args[0], Overrun) else None
        message = watch.message(overrun or Overrun(0.0)) if watch is not None else \
            "workflow code did not yield within its deadline"
        self._failure = WorkflowTaskError(message, kind="deadline", details={
            "deadline": watch.deadline if watch is not None else None,
            "where": overrun.where if overrun is not None else ""})

    def _fail_task(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc

    def _nondeterminism(self, seq: int, message: str, **details: Any) -> None:
        err = NonDeterminismError(message)
        self._fail_task(WorkflowTaskError(
            message, kind="nondeterminism", details={"seq": seq, **details,
                                                     "error": error_json(err)}))

    # -- commands ---------------------------------------------------------------------
    def _command(self, event_type: str, attrs: dict[str, Any], *, source: Any = None) -> int:
        """Match a command against history, or record it as new; returns its seq."""
        if self._failure is not None:
            raise Diverged()
        recorded = self._recorded
        if recorded:  # (new commands, the common case, have no history to match)
            self._skip_removed_patches(attrs)
        self._matched = None
        if event_type in CANCEL_TYPES and recorded and (
                recorded[0].type != event_type or command_key(event_type, attrs) !=
                command_key(recorded[0].type, recorded[0].attrs)):
            return 0  # a history from before cancels were recorded: it goes on without
        if recorded:
            event = recorded.popleft()
            self._matched = event
            if event.type != event_type or command_key(event.type, event.attrs) != \
                    command_key(event_type, attrs):
                wanted = describe(event_type, attrs)
                source = str(source_line() if source is None else source)
                self._nondeterminism(
                    event.seq,
                    f"event {event.seq}: history has {describe(event.type, event.attrs)} "
                    f"but the code asked for {wanted}" + (f" at {source}" if source else ""),
                    recorded=describe(event.type, event.attrs), requested=wanted,
                    source=source)
                raise Diverged()
            return event.seq
        if self._activation is None:
            raise OnwardError("workflow code issued a command outside an activation")
        seq = self.next_seq
        self.next_seq += 1
        self._activation.commands.append(Command(event_type, attrs, seq))
        return seq

    def _skip_removed_patches(self, attrs: dict[str, Any]) -> None:
        """Drop patch markers ahead in history whose ``patched()`` call was removed (any
        command but another patch marker may pass them)."""
        recorded = self._recorded
        while recorded and is_patch_marker(recorded[0]) and not attrs.get("patch_id"):
            recorded.popleft()

    def _await_ref(self, kind: str, seq: int) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        on_done = functools.partial(self._on_done, kind, seq)
        self._pending[seq] = (kind, future, on_done)
        future.add_done_callback(on_done)
        return future

    def _on_done(self, kind: str, seq: int, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self._pending.pop(seq, None)
            if self._activation is None or self.closed:
                return
            if kind in ("activity", "timer"):  # the code stopped waiting: record it
                if seq not in self._cancel_sent:
                    self._record_cancel(kind, seq, "the code stopped waiting")
                self._activities.pop(seq, None)
            else:
                self._activation.cancels.append((kind, seq))

    def _record_cancel(self, kind: str, seq: int, reason: str) -> None:
        """Issue the cancel command of activity or timer ``seq`` (ActivityCanceled or
        TimerCanceled); the advancer withdraws or marks what it was waiting for."""
        self._cancel_sent.add(seq)
        if kind == "timer":
            self._command("TimerCanceled", {"ref": seq}, source="")
            return
        self._left_running = True
        name, mode = self._activities.get(seq, ("", "try_cancel"))
        self._command("ActivityCanceled", {"ref": seq, "name": name, "reason": reason,
                                           "cancellation_type": mode}, source="")

    def schedule_activity(self, name: str, args: list[Any], options: dict[str, Any],
                          cancellation_type: str = "try_cancel") -> tuple[int, asyncio.Future[Any]]:
        attrs = {"name": name, "args": convert.to_json(args, f"arguments of activity {name}"),
                 **options}
        seq = self._command("ActivityScheduled", attrs)
        self._activities[seq] = (name, cancellation_type)
        return seq, self._await_ref("activity", seq)

    def cancel_activity(self, seq: int, reason: str = "") -> None:
        """Cancel the activity scheduled at ``seq`` (its handle's ``cancel()``): records
        ActivityCanceled; under try_cancel and abandon its await raises CancelledError at
        once, under wait_cancellation_completed once the attempt has ended. Nothing
        happens when it has ended or was canceled already."""
        entry = self._pending.get(seq)
        if entry is None or entry[1].done() or seq in self._cancel_sent:
            return
        mode = self._activities.get(seq, ("", "try_cancel"))[1]
        self._record_cancel("activity", seq, reason or "canceled by the workflow")
        if mode == WAIT_CANCELLATION_COMPLETED:
            self._cancelling.add(seq)
        else:
            entry[1].cancel()

    def start_timer(self, seconds: float, purpose: str = "sleep"
                    ) -> tuple[int, asyncio.Future[Any]]:
        attrs = {"seconds": seconds, "fire_at": self.now + seconds, "purpose": purpose}
        seq = self._command("TimerStarted", attrs)
        return seq, self._await_ref("timer", seq)

    def create_manual_task(self, attrs: dict[str, Any]) -> asyncio.Future[Any]:
        seq = self._command("ManualTaskCreated", attrs)
        return self._await_ref("task", seq)

    def start_child(self, workflow: str, args: list[Any], child_id: str | None,
                    options: dict[str, Any] | None = None) -> tuple[str, asyncio.Future[Any]]:
        attrs = {"workflow": workflow, "args": convert.to_json(args, "child arguments"),
                 "child_id": child_id}
        for key, value in (options or {}).items():
            if value != CHILD_DEFAULTS.get(key):
                attrs[key] = value  # only what differs: older histories read the same
        seq = self._command("ChildWorkflowStarted", attrs)
        self.started_children = True
        recorded = self._matched.attrs.get("child_id") if self._matched is not None else None
        return (recorded or child_id or f"{self.info.workflow_id}/{seq}",
                self._await_ref("child", seq))

    def signal_external(self, workflow_id: str, name: str, payload: Any
                        ) -> asyncio.Future[Any]:
        attrs = {"workflow_id": workflow_id, "name": name,
                 "payload": convert.to_json(payload, f"payload of signal {name}")}
        return self._external("ExternalSignalSent", attrs)

    def cancel_external(self, workflow_id: str) -> asyncio.Future[Any]:
        return self._external("ExternalCancelRequested", {"workflow_id": workflow_id})

    def _external(self, event_type: str, attrs: dict[str, Any]) -> asyncio.Future[Any]:
        """Record an external command with its outcome, decided now: in a live workflow
        task by looking the target up (inside the task's transaction), on replay from the
        recorded event. The future is settled at once either way, so the code continues at
        the same point on every replay."""
        if self._failure is not None:
            raise Diverged()
        future = self.loop.create_future()
        if self.closed:
            return future  # code still running after the run closed reaches nobody
        self._skip_removed_patches(attrs)
        if not self._recorded and self.external_lookup is not None:
            attrs.update(self.external_lookup(attrs["workflow_id"]))
        self._command(event_type, attrs)
        outcome = self._matched.attrs if self._matched is not None else attrs
        error = outcome.get("error")
        if error:
            future.set_exception(ApplicationError(
                str(error.get("message", "")), type=str(error.get("type", "")),
                non_retryable=True))
        elif outcome.get("target_run_id"):
            future.set_result(None)
        # else: replayed outside a workflow task, beyond history: nothing to report
        return future

    def activity_code(self, name: str) -> Callable[..., Any] | None:
        definition = self._activity_lookup(name) if self._activity_lookup is not None else None
        return None if definition is None else definition.fn

    def signal_future(self, name: str) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        buffered = self._signal_buffer.get(name)
        if buffered:
            future.set_result(buffered.popleft()[1])
        else:
            self._signal_waiters.setdefault(name, collections.deque()).append(future)
            self.waiting_for = f"waiting for signal {name}"
        return future

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        recorded = self._recorded
        for event in recorded:
            if event.type != "MarkerRecorded" or not event.attrs.get("patch_id"):
                break
            if event.attrs.get("patch_id") == patch_id:
                recorded.remove(event)
                return True
        if recorded:
            return deprecated
        self._command("MarkerRecorded", {"patch_id": patch_id})
        return True

    def upsert_search_attributes(self, attributes: dict[str, Any]) -> None:
        """Record SearchAttributesUpserted (matched by its names on replay)."""
        self._command("SearchAttributesUpserted", {"attributes": attributes})

    def marker(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A value recorded once: on replay the marker's attrs from history (``compute`` is
        not called), else ``compute()``, recorded as a ``MarkerRecorded`` named ``name``.
        Markers match by position like other commands: one in another place diverges."""
        head = next((e for e in self._recorded if not is_patch_marker(e)), None)
        if head is not None and head.type == "MarkerRecorded" and head.attrs.get("name") == name:
            value = {k: v for k, v in head.attrs.items() if k != "name"}
        else:
            value = compute() if head is None else {}  # any other head: _command diverges
        self._command("MarkerRecorded", {"name": name, **value})
        return value

_APPLY: dict[str, Callable[[WorkflowInstance, Event], None]] = {
    kind: getattr(WorkflowInstance, f"_apply_{kind}") for kind in INBOUND_TYPES}
"""Event type -> the method applying it; other types are commands or bookkeeping."""
