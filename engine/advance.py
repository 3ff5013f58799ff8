"""Workflow tasks: advance a run's code over its new events and persist what it asks for.

A workflow task runs inside the caller's write transaction, so the events it reads, the
commands it appends, the queue rows it adds and the run's new status commit together or
not at all. Nothing else can interleave, so workflow tasks need no leases.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import attempts, children, history, payloads, search_attributes, updates
from .deadline import DeadlineWatch
from .events import Event, iso
from .history import RunRow
from .instance import Activation, Command, WorkflowInstance, WorkflowTaskError
from .store import queues
from .store.base import Tx
from .workflow_runtime import WorkflowInfo


@dataclass
class AdvanceOutcome:
    """What advancing one run produced for the worker that advanced it."""

    claimed: list[Any] = field(default_factory=list)
    """Attempts claimed for the calling worker as they were scheduled (eager dispatch)."""
    overran: bool = False
    """The run's code was stopped at its deadline (and the run held stuck)."""


class InstanceCache:
    """Running workflow instances by run id, least recently used evicted first."""

    def __init__(self, capacity: int = 2000) -> None:
        self.capacity = capacity
        self._items: collections.OrderedDict[str, WorkflowInstance] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, run_id: str) -> WorkflowInstance | None:
        instance = self._items.get(run_id)
        if instance is not None:
            self._items.move_to_end(run_id)
        return instance

    def put(self, run_id: str, instance: WorkflowInstance) -> None:
        self._items[run_id] = instance
        self._items.move_to_end(run_id)
        while len(self._items) > self.capacity:
            _, old = self._items.popitem(last=False)
            old.loop.close()

    def evict(self, run_id: str) -> None:
        instance = self._items.pop(run_id, None)
        if instance is not None:
            instance.loop.close()

    def clear(self) -> None:
        for run_id in list(self._items):
            self.evict(run_id)

    def __len__(self) -> int:
        return len(self._items)


_STEP_TYPES = frozenset(("ActivityScheduled", "TimerStarted", "ManualTaskCreated",
                         "ChildWorkflowStarted"))
"""The commands that name the run's step (``_step_text``); the others leave it."""


def _step_text(command: Command) -> str:
    attrs = command.attrs
    if command.type == "ActivityScheduled":
        return f"activity {attrs['name']}"
    if command.type == "TimerStarted":
        return f"timer until {iso(attrs['fire_at'])}"
    if command.type == "ManualTaskCreated":
        who = f" for {attrs['assignee']}" if attrs.get("assignee") else ""
        return f"task {attrs['kind']}{who}"
    if command.type == "ChildWorkflowStarted":
        return f"child {attrs['workflow']}"
    return ""


_last_options: tuple[dict[str, Any], str, Any] | None = None
"""The last activity options encoded, as a private copy read back from their JSON, with
that JSON and the retry object it was encoded from (most activities share their options:
the default ones, or their workflow's)."""

_OPTION_KEYS = ("retry", "start_to_close", "schedule_to_close", "heartbeat")
_SCHEDULED_KEYS = ["name", "args", *_OPTION_KEYS]
"""An ActivityScheduled event's attributes as ``WorkflowInstance.schedule_activity``
builds them: its text is put together from the queue row's encodings."""


def _options_json(options: dict[str, Any]) -> str:
    """``payloads.encode(options)``, without encoding options equal to the last ones.

    The copy compared with is decoded from the JSON, so nothing else holds it and it
    cannot change; options equal to it encode to the same JSON (they are numbers, text,
    None and lists of text: an int where the copy has a float, say ``300`` for ``300.0``,
    would compare equal and be stored as ``300.0``, the same number)."""
    global _last_options
    last = _last_options
    if last is not None and last[0] == options:
        return last[1]
    text = payloads.encode(options)
    _last_options = (payloads.decode(text), text, options["retry"])
    return text


def _exact_options(options: dict[str, Any], text: str) -> bool:
    """Whether ``text`` (just returned by ``_options_json(options)``) is exactly what
    encoding ``options`` writes: the retry object is the one encoded (the defaults, shared
    by every activity scheduled without options) and the timeouts have the types of the
    copy read back from the text."""
    last = _last_options
    if last is None or last[1] is not text or options["retry"] is not last[2]:
        return False
    copy = last[0]
    return type(options["start_to_close"]) is type(copy["start_to_close"]) and \
        type(options["schedule_to_close"]) is type(copy["schedule_to_close"]) and \
        type(options["heartbeat"]) is type(copy["heartbeat"])


@dataclass(slots=True)
class EncodedActivity:
    """An ActivityScheduled event's attributes encoded once for its queue row and event."""

    options: dict[str, Any]
    args: str
    options_text: str
    attrs_text: str | None
    """The event's attributes as JSON, put together from the arguments and options, where
    that comes out exactly as encoding them whole would; else None (encoded whole)."""


def encode_activity(attrs: dict[str, Any]) -> EncodedActivity:
    """The queue row's JSON of an ActivityScheduled event's attributes, and the event's."""
    options = {key: attrs.get(key) for key in _OPTION_KEYS}
    args = payloads.encode(attrs["args"])
    options_text = _options_json(options)
    name = attrs["name"]
    attrs_text = None
    if type(name) is str and list(attrs) == _SCHEDULED_KEYS and \
            _exact_options(options, options_text):
        attrs_text = f'{{"name":{payloads.encode(name)},"args":{args},{options_text[1:]}'
    return EncodedActivity(options, args, options_text, attrs_text)


def queue_activity(tx: Tx, run: RunRow, ref: int, attrs: dict[str, Any], now: float,
                   owner: str | None = None, encoded: EncodedActivity | None = None
                   ) -> attempts.Attempt | None:
    """Queue the first attempt of an ActivityScheduled event; claimed for ``owner`` if given.

    ``encoded``: ``encode_activity(attrs)``, if the caller has it already."""
    if encoded is None:
        encoded = encode_activity(attrs)
    options = encoded.options
    close = attrs.get("schedule_to_close")
    deadline = heartbeat = None
    if owner is not None:
        deadline, heartbeat = attempts.lease_columns(options, now)
    queues.add_activity_task(tx, run.run_id, ref, attrs["name"], encoded.args,
                             encoded.options_text, now, now + close if close else None,
                             owner, deadline, heartbeat)
    if owner is None:
        return None
    return attempts.Attempt(run.run_id, ref, attrs["name"], attrs["args"], options, 1, None,
                            run.workflow_id, run.lineage)


def open_manual_task(tx: Tx, run: RunRow, ref: int, attrs: dict[str, Any], now: float) -> None:
    """The task row (and its deadline timer) of a ManualTaskCreated event."""
    queues.open_manual_task(tx, attrs["task_id"], run.run_id, run.workflow_id, run.workflow,
                            ref, attrs["kind"], attrs.get("assignee"),
                            attrs.get("instructions") or "", payloads.dumps(attrs.get("data")),
                            now, attrs.get("deadline"))


class Advancer:
    """Runs workflow tasks for one engine: loads or reuses instances, persists commands."""

    def __init__(self, *, workflows: Callable[[str], Any], clock: Callable[[], float],
                 new_id: Callable[[str], str], cache: InstanceCache,
                 watch: DeadlineWatch | None = None,
                 on_close: Callable[[Tx, str], None] | None = None,
                 activities: Callable[[str], Any] | None = None) -> None:
        self.workflows = workflows
        self.activities = activities
        """Activity definitions by name: instances type activity results by them."""
        self.watch = watch
        """Stops workflow code at its deadline (None: no deadline)."""
        self.clock = clock
        self.new_id = new_id
        self.cache = cache
        self._eager: Callable[[str], str | None] | None = None
        self.woke_others = False
        """Set when a workflow task made other work due (a child, a parent, a new run)."""
        self.on_close = on_close
        """Called with the transaction and run id as each run closes (the change feed
        announces the close to the run's result waiters once that transaction committed)."""
        self._holds_nothing = False
        """The run being advanced has no queue rows or children (its instance says so)."""

    # -- building instances -------------------------------------------------------------
    @staticmethod
    def info_for(run: RunRow) -> WorkflowInfo:
        return WorkflowInfo(
            workflow_id=run.workflow_id, run_id=run.run_id, workflow_type=run.workflow,
            start_time=run.started, parent_id=run.parent_id, parent_run_id=run.parent_run_id,
            continued_from=run.continued_from)

    def advance(self, tx: Tx, run: RunRow,
                eager: Callable[[str], str | None] | None = None) -> AdvanceOutcome:
        """Deliver the run's new events to its code and persist the resulting commands.

        ``eager(activity_name)`` may return a worker id to claim a scheduled activity for
        at once (in the same insert), sparing a round trip through the queue.
        """
        outcome = AdvanceOutcome()
        definition = self.workflows(run.workflow)
        if not run.is_open or run.paused or definition is None:
            if not run.is_open:
                run.wf_pending = 0  # only open runs wait for workflow tasks
                if run.updates_pending:
                    updates.end_with_run(tx, run, self.clock())
            history.save_run_state(tx, run)
            return outcome
        instance = self.cache.get(run.run_id)
        if instance is None or instance.cursor > run.last_seq or instance.fn is not definition.fn:
            self.cache.evict(run.run_id)
            instance = WorkflowInstance(definition.fn, self.info_for(run), watch=self.watch,
                                        activities=self.activities)
            self.cache.misses += 1
        else:
            self.cache.hits += 1
        fresh = run.fresh
        if fresh and instance.cursor == run.loaded_seq and fresh[0].seq == run.loaded_seq + 1:
            events = list(fresh)  # just appended in this transaction: no need to read back
        else:
            events = history.load_events(tx, run.run_id, after=instance.cursor)
        self._eager = eager
        instance.waiting_for = ""
        instance.external_lookup = lambda workflow_id: self._find_target(
            tx, run, instance, outcome, workflow_id)
        try:
            activation = self._run_task(tx, run, instance, events, outcome)
            if activation is None:
                return outcome
        finally:
            instance.external_lookup = None
        if not run.is_open:
            outcome.claimed.clear()  # closing withdrew them: they must not start
        if instance.waiting_for and not activation.commands:
            run.step = instance.waiting_for
        self._eager = None
        run.fresh.clear()
        run.loaded_seq = run.last_seq
        if run.stuck:
            run.stuck, run.stuck_reason = 0, None
        history.save_run_state(tx, run)
        if instance.closed or not run.is_open:
            self.cache.evict(run.run_id)
        else:
            self.cache.put(run.run_id, instance)
        return outcome

    def _run_task(self, tx: Tx, run: RunRow, instance: WorkflowInstance, events: list[Event],
                  outcome: AdvanceOutcome) -> Activation | None:
        """Activate ``instance`` with ``events``, persist its commands, then accept waiting
        updates. None if the code failed and the run is now held."""
        try:
            activation = instance.activate(events)
        except WorkflowTaskError as failure:
            self._eager = None
            self.cache.evict(run.run_id)
            self.hold(tx, run, failure)
            outcome.overran = failure.kind == "deadline"
            return None
        conflict = search_attributes.upsert_conflict(tx, activation.commands)
        if conflict:  # a value of another type than its name's: held, nothing recorded
            self._eager = None
            self.cache.evict(run.run_id)
            self.hold(tx, run, WorkflowTaskError(conflict, kind="search_attributes",
                                                 details={}))
            return None
        run.wf_pending = 0
        self._holds_nothing = instance.holds_nothing
        self.persist(tx, run, activation, outcome)
        if run.updates_pending and not updates.accept_waiting(self, tx, run, instance, outcome):
            self._holds_nothing, self._eager = False, None  # a handler failed: run held
            return None
        self._holds_nothing = False
        return activation

    def _find_target(self, tx: Tx, run: RunRow, instance: WorkflowInstance,
                     outcome: AdvanceOutcome, workflow_id: str) -> dict[str, Any]:
        """The outcome of an external signal or cancel issued now: the target's open run
        (locked until the task commits), or why there is none. The commands the code issued
        before it are stored first, so a child started just before can be reached."""
        activation = instance.current_activation
        if activation is not None:
            self.persist(tx, run, activation, outcome)
        return children.find_target(tx, run, workflow_id)

    def hold(self, tx: Tx, run: RunRow, failure: WorkflowTaskError) -> None:
        """Mark a run stuck with a WorkflowTaskFailed event (not repeated if unchanged)."""
        message = str(failure)
        now = self.clock()
        if run.stuck_reason != message:
            history.append(tx, run, "WorkflowTaskFailed",
                           {"kind": failure.kind, "message": message, **failure.details}, now)
        run.stuck, run.stuck_reason, run.wf_pending = 1, message, 0
        run.step = "stuck: " + message.splitlines()[0][:200]
        history.save_run_state(tx, run)

    # -- persisting commands -----------------------------------------------------------
    def persist(self, tx: Tx, run: RunRow, activation: Activation,
                outcome: AdvanceOutcome) -> None:
        """Store the activation's commands not stored yet (an external call may have stored
        the earlier ones), and withdraw what the code stopped waiting for."""
        now = self.clock()
        while activation.cancels_done < len(activation.cancels):
            kind, ref = activation.cancels[activation.cancels_done]
            activation.cancels_done += 1
            self.cancel_pending(tx, run, kind, ref, now)
        commands = activation.commands
        while activation.persisted < len(commands):
            command = commands[activation.persisted]
            activation.persisted += 1
            getattr(self, "_on_" + command.type)(tx, run, command, now, outcome)
            if command.type in _STEP_TYPES:
                run.step = _step_text(command)

    def _append(self, tx: Tx, run: RunRow, command: Command, now: float) -> Event:
        return history.append(tx, run, command.type, command.attrs, now, seq=command.seq)

    def _on_ActivityScheduled(self, tx: Tx, run: RunRow, command: Command, now: float,
                              outcome: AdvanceOutcome) -> None:
        attrs = command.attrs
        encoded = encode_activity(attrs)
        history.append(tx, run, command.type, attrs, now, seq=command.seq,
                       attrs_text=encoded.attrs_text)
        owner = self._eager(attrs["name"]) if self._eager is not None else None
        attempt = queue_activity(tx, run, command.seq, attrs, now, owner, encoded)
        if attempt is not None:
            outcome.claimed.append(attempt)

    def _on_ActivityCanceled(self, tx: Tx, run: RunRow, command: Command, now: float,
                             outcome: AdvanceOutcome) -> None:
        """The code stopped waiting for an activity: withdraw it if no attempt runs, else
        mark the running attempt for its worker ('abandon': never told)."""
        self._append(tx, run, command, now)
        ref = command.attrs["ref"]
        mode = command.attrs.get("cancellation_type") or "try_cancel"
        mark = {"wait_cancellation_completed": "wait", "abandon": "abandon"}.get(mode, "try")
        for attempt in list(outcome.claimed):
            if attempt.run_id == run.run_id and attempt.ref == ref:
                outcome.claimed.remove(attempt)  # claimed in this task, never started:
                queues.remove_activity_task(tx, run.run_id, ref)  # it must not start
                break
        else:
            if queues.cancel_activity_task(tx, run.run_id, ref, mark) is None:
                return  # running (now marked), or ended already
        if mark == "wait":  # nothing ran: the code waiting for the end goes on now
            history.append(tx, run, "ActivityFailed", {
                "ref": ref, "name": command.attrs.get("name", ""), "attempts": 0,
                "error": {"type": "CancelledError",
                          "message": "canceled before an attempt started"},
                "timeout": False, "canceled": True}, now, wake=True)

    def _on_TimerCanceled(self, tx: Tx, run: RunRow, command: Command, now: float,
                          outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)
        queues.remove_timer(tx, run.run_id, command.attrs["ref"])

    def _on_TimerStarted(self, tx: Tx, run: RunRow, command: Command, now: float,
                         outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)
        queues.add_timer(tx, run.run_id, command.seq, command.attrs["fire_at"], "timer")

    def _on_ManualTaskCreated(self, tx: Tx, run: RunRow, command: Command, now: float,
                              outcome: AdvanceOutcome) -> None:
        command.attrs["task_id"] = self.new_id("task")
        self._append(tx, run, command, now)
        open_manual_task(tx, run, command.seq, command.attrs, now)

    def _on_ChildWorkflowStarted(self, tx: Tx, run: RunRow, command: Command, now: float,
                                 outcome: AdvanceOutcome) -> None:
        attrs = command.attrs
        child_id = attrs.get("child_id") or f"{run.workflow_id}/{command.seq}"
        attrs["child_id"] = child_id
        tx.lock_workflow_id(child_id)  # as a start does: one creator of the id at a time
        refused = children.reuse_refused(history.current_run(tx, child_id), child_id,
                                 attrs.get("id_reuse_policy") or "allow_duplicate")
        if refused:
            attrs["child_run_id"] = None
            self._append(tx, run, command, now)
            history.append(tx, run, "ChildWorkflowFailed", {
                "ref": command.seq, "child_id": child_id, "workflow": attrs["workflow"],
                "status": "failed", "error": {"type": "AlreadyStarted", "message": refused}},
                now, wake=True)
            self.woke_others = True
            return
        child_run_id = self.new_id("run")
        attrs["child_run_id"] = child_run_id
        self._append(tx, run, command, now)
        history.insert_run(tx, run_id=child_run_id, workflow_id=child_id,
                           workflow=attrs["workflow"], args=attrs["args"], now=now,
                           parent=(run.run_id, run.workflow_id, command.seq))
        self.woke_others = True

    def _on_ExternalSignalSent(self, tx: Tx, run: RunRow, command: Command, now: float,
                               outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)
        target = self._reached(tx, command)
        if target is not None:
            attrs = command.attrs
            history.append(tx, target, "SignalReceived", {
                "name": attrs["name"], "payload": attrs.get("payload"),
                "sender": run.workflow_id}, now, wake=True)
            history.save_run_state(tx, target)
            self.woke_others = True

    def _on_ExternalCancelRequested(self, tx: Tx, run: RunRow, command: Command, now: float,
                                    outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)
        target = self._reached(tx, command)
        if target is not None and history.request_cancel(
                tx, target, f"requested by {run.workflow_id}", now):
            self.woke_others = True

    @staticmethod
    def _reached(tx: Tx, command: Command) -> RunRow | None:
        """The open run an external command found when it was issued (locked since then:
        only an earlier command of the same task could have closed it)."""
        target_run_id = command.attrs.get("target_run_id")
        if not target_run_id:
            return None
        target = history.get_run(tx, target_run_id, lock=True)
        return target if target is not None and target.is_open else None

    def _on_UpdateCompleted(self, tx: Tx, run: RunRow, command: Command, now: float,
                            outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)
        updates.completed(tx, run.run_id, command.attrs, now)

    def _on_SearchAttributesUpserted(self, tx: Tx, run: RunRow, command: Command,
                                     now: float, outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)
        search_attributes.save(tx, run.run_id, command.attrs["attributes"], allow_system=False)

    def _on_MarkerRecorded(self, tx: Tx, run: RunRow, command: Command, now: float,
                           outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)

    def _on_WorkflowCompleted(self, tx: Tx, run: RunRow, command: Command, now: float,
                              outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)
        run.result = payloads.dumps(command.attrs.get("result"))
        self.close(tx, run, "completed", now, holds_nothing=self._holds_nothing)

    def _on_WorkflowFailed(self, tx: Tx, run: RunRow, command: Command, now: float,
                           outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)
        run.error = json.dumps(command.attrs.get("error"))
        self.close(tx, run, "failed", now, holds_nothing=self._holds_nothing)

    def _on_WorkflowCanceled(self, tx: Tx, run: RunRow, command: Command, now: float,
                             outcome: AdvanceOutcome) -> None:
        self._append(tx, run, command, now)
        run.error = json.dumps({"type": "CanceledError", "message": "the run was canceled"})
        self.close(tx, run, "canceled", now, holds_nothing=self._holds_nothing)

    def _on_WorkflowContinuedAsNew(self, tx: Tx, run: RunRow, command: Command, now: float,
                                   outcome: AdvanceOutcome) -> None:
        new_run_id = self.new_id("run")
        command.attrs["new_run_id"] = new_run_id
        self._append(tx, run, command, now)
        parent = (run.parent_run_id, run.parent_id, run.parent_ref) if run.parent_run_id \
            else None
        self.close(tx, run, "continued_as_new", now, notify_parent=False,
                   holds_nothing=self._holds_nothing)
        history.save_run_state(tx, run)
        new_run = history.insert_run(
            tx, run_id=new_run_id, workflow_id=run.workflow_id, workflow=run.workflow,
            args=command.attrs.get("input") or [], now=now,
            parent=parent,  # type: ignore[arg-type]
            continued_from=run.run_id)
        carried = command.attrs.get("signals") or []
        for signal in carried:  # received but not handled: the new run gets them, in order
            history.append(tx, new_run, "SignalReceived",
                           {"name": signal["name"], "payload": signal.get("payload"),
                            "carried_from": run.run_id}, now)
        if carried:
            history.save_run_state(tx, new_run)
        self.woke_others = True

    # -- closing -------------------------------------------------------------------------
    def close(self, tx: Tx, run: RunRow, status: str, now: float, *,
              notify_parent: bool = True, holds_nothing: bool = False) -> None:
        """Close ``run``: clear its queues, end open tasks and children, tell its parent.

        ``holds_nothing``: the run's code had nothing outstanding and started no child,
        so there is nothing to clear (spares four statements on the common path)."""
        if self.on_close is not None:
            self.on_close(tx, run.run_id)
        run.status, run.closed, run.updated = status, now, now
        run.wf_pending, run.stuck, run.retrying = 0, 0, 0
        run.step = status
        self.cache.evict(run.run_id)
        if run.updates_pending or not holds_nothing:
            updates.end_with_run(tx, run, now)
        if not holds_nothing:
            self._clear_pending(tx, run, status, now)
        if notify_parent and run.parent_run_id:
            self.notify_parent(tx, run, status, now)

    def _clear_pending(self, tx: Tx, run: RunRow, status: str, now: float) -> None:
        """Withdraw a closing run's queue rows and open tasks; apply each open child's
        parent close policy (terminate, request_cancel or abandon)."""
        queues.withdraw_run_work(tx, run.run_id, now)
        for child_run_id, child_status in queues.children_of(tx, run.run_id):
            if child_status != history.OPEN:
                continue
            child = history.get_run(tx, child_run_id, lock=True)
            if child is None or not child.is_open:
                continue
            policy = children.close_policy(tx, run, child)
            if policy == "abandon":
                continue
            if policy == "request_cancel" or status == "canceled":
                # The child may compensate. (Under "terminate" a canceled parent asks too.)
                if history.request_cancel(tx, child, f"parent {run.workflow_id} {status}", now):
                    self.woke_others = True
                continue
            history.append(tx, child, "WorkflowTerminated",
                           {"reason": f"parent {run.workflow_id} closed ({status})"}, now)
            child.error = json.dumps({"type": "Terminated", "message": "parent closed"})
            self.close(tx, child, "terminated", now, notify_parent=False)
            history.save_run_state(tx, child)

    def notify_parent(self, tx: Tx, run: RunRow, status: str, now: float) -> None:
        parent = history.get_run(tx, run.parent_run_id or "", lock=True)
        if parent is None or not parent.is_open:
            return
        base = {"ref": run.parent_ref, "child_id": run.workflow_id,
                "child_run_id": run.run_id, "workflow": run.workflow}
        if status == "completed":
            history.append(tx, parent, "ChildWorkflowCompleted",
                           {**base, "result": payloads.loads(run.result)}, now, wake=True)
        else:
            error = json.loads(run.error) if run.error else {"message": status}
            history.append(tx, parent, "ChildWorkflowFailed",
                           {**base, "status": status, "error": error}, now, wake=True)
        history.save_run_state(tx, parent)
        self.woke_others = True

    def cancel_pending(self, tx: Tx, run: RunRow, kind: str, ref: int, now: float) -> None:
        """Withdraw a pending activity, timer, task or child the code stopped waiting for."""
        if kind == "activity":
            queues.remove_activity_task(tx, run.run_id, ref)
        elif kind == "timer":
            queues.remove_timer(tx, run.run_id, ref)
        elif kind == "task":
            queues.cancel_task(tx, run.run_id, ref, now)
        elif kind == "child":
            row = queues.child_at(tx, run.run_id, ref)
            if row is not None and row[1] == history.OPEN:
                child = history.get_run(tx, row[0], lock=True)
                if child is not None and child.is_open and \
                        history.request_cancel(tx, child, "parent canceled", now):
                    self.woke_others = True

