"""Repair: retry, pause, resume, reset and the replay check, over the store's histories.

A reset (and the retry of a failed run) starts a new run of the same workflow id whose
history is the old one cut at an event: the new run replays that prefix without running
anything again, then continues with today's code. Old and new runs stay linked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import history
from .advance import Advancer, open_manual_task, queue_activity
from .errors import BadInput, NotCurrentRun, NotFound, WouldDiscardCompleted
from .events import COMMAND_TYPES, Event
from .history import RunRow
from .instance import WorkflowInstance, WorkflowTaskError
from .runtime import Runtime
from .store import queues, runs
from .store.base import Tx
from .workflow import WorkflowDefinition

CLOSERS = {
    "ActivityScheduled": ("ActivityCompleted", "ActivityFailed"),
    "TimerStarted": ("TimerFired",),
    "ManualTaskCreated": ("ManualTaskCompleted", "ManualTaskFailed", "ManualTaskTimedOut"),
    "ChildWorkflowStarted": ("ChildWorkflowCompleted", "ChildWorkflowFailed"),
}
FAILED_STEP_EVENTS = ("ActivityFailed", "ChildWorkflowFailed", "ManualTaskFailed",
                      "ManualTaskTimedOut")


@dataclass
class ReplayResult:
    """The outcome of replaying one stored history against today's code."""

    id: str
    run_id: str
    workflow: str
    status: str
    ok: bool | None
    error: str = ""
    seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_cut(events: list[Event], seq: int) -> None:
    """Refuse a cut that is not a point where a workflow task could have completed."""
    last = events[-1].seq if events else 0
    closing = events and events[-1].type in ("WorkflowCompleted", "WorkflowFailed",
                                             "WorkflowCanceled", "WorkflowTerminated",
                                             "WorkflowContinuedAsNew")
    top = last - 1 if closing else last
    if seq < 1 or seq > top:
        raise BadInput(f"event {seq} is out of range: cut between 1 and {top}")
    by_seq = {e.seq: e for e in events}
    here, after = by_seq.get(seq), by_seq.get(seq + 1)
    if here and after and here.type in COMMAND_TYPES and after.type in COMMAND_TYPES:
        before = seq
        while before > 1 and by_seq[before].type in COMMAND_TYPES:
            before -= 1
        raise BadInput(f"event {seq} falls inside one workflow task's commands; cut at "
                       f"{before} (before them) or later, after them")


def _valid_cut_before(events: list[Event], seq: int) -> int:
    """The latest valid cut at or before ``seq``."""
    by_seq = {e.seq: e for e in events}
    cut = seq
    while cut > 1 and by_seq[cut].type in COMMAND_TYPES and \
            by_seq.get(cut + 1) is not None and by_seq[cut + 1].type in COMMAND_TYPES:
        cut -= 1
    return cut


def failed_step_cut(events: list[Event]) -> int:
    """Where ``retry`` cuts a failed run: just before its last failed step was scheduled."""
    for event in reversed(events):
        if event.type in FAILED_STEP_EVENTS and event.attrs.get("ref"):
            return _valid_cut_before(events, int(event.attrs["ref"]) - 1)
    for event in reversed(events):
        if event.type not in ("WorkflowFailed",) and event.type not in COMMAND_TYPES:
            return event.seq
    return 1


def completed_after(events: list[Event], cut: int) -> list[dict[str, Any]]:
    """Completions a cut at ``cut`` would discard: work that really happened, which the new
    run would do again. Activities, and child workflows (named ``child workflow ID``),
    whose own activities a new child run would repeat."""
    found = []
    for e in events:
        if e.seq <= cut or e.type not in ("ActivityCompleted", "ChildWorkflowCompleted"):
            continue
        name = e.attrs.get("name") if e.type == "ActivityCompleted" else \
            f"child workflow {e.attrs.get('child_id')}"
        found.append({"seq": e.seq, "ref": e.attrs.get("ref"), "name": name,
                      "result": e.attrs.get("result")})
    return found


def refuse_discarding(action: str, events: list[Event], cut: int) -> None:
    """WouldDiscardCompleted, naming them, if a cut at ``cut`` discards completed work."""
    completed = completed_after(events, cut)
    if completed:
        names = ", ".join(f"{c['name']} (event {c['seq']})" for c in completed)
        raise WouldDiscardCompleted(f"{action} would discard completed activities: {names}; "
                                    "pass --discard-completed to accept", completed)


def reset(runtime: Runtime, tx: Tx, run: RunRow, seq: int, *, reason: str,
          reapply_signals: bool = True, discard_completed: bool = False) -> str:
    """Create the new run of ``run``'s id from its history up to ``seq``; its run id.

    Refuses (WouldDiscardCompleted, before writing anything) a cut after which activities
    completed, unless ``discard_completed``."""
    events = history.load_events(tx, run.run_id)
    check_cut(events, seq)
    if not discard_completed:
        refuse_discarding(reason, events, seq)
    now = runtime.clock()
    kept = [e for e in events if e.seq <= seq]
    later_signals = [e for e in events if e.seq > seq and e.type == "SignalReceived"]
    new_run_id = runtime.new_id("run")
    if run.is_open:
        history.append(tx, run, "WorkflowTerminated",
                       {"reason": f"{reason}: reset to event {seq} (new run {new_run_id})"},
                       now)
        run.error = json.dumps({"type": "Reset", "message": f"reset to event {seq}"})
        runtime.advancer.close(tx, run, "terminated", now)
    run.reset_to = new_run_id
    history.save_run_state(tx, run)
    parent = (run.parent_run_id, run.parent_id, run.parent_ref) if run.parent_run_id else None
    history.insert_run(tx, run_id=new_run_id, workflow_id=run.workflow_id,
                       workflow=run.workflow, args=run.args, now=now,
                       parent=parent,  # type: ignore[arg-type]
                       reset_from=run.run_id, lineage=run.lineage, first_event=False)
    new = history.get_run(tx, new_run_id)
    assert new is not None
    closer_types = {t for closers in CLOSERS.values() for t in closers}
    closed_refs = {e.attrs.get("ref") for e in kept if e.type in closer_types}
    for event in kept:
        attrs = dict(event.attrs)
        if event.seq == 1:
            attrs["reset_from"] = run.run_id
            attrs["reset_event"] = seq
        if event.type == "ManualTaskCreated" and event.seq not in closed_refs:
            attrs["task_id"] = runtime.new_id("task")
        history.append(tx, new, event.type, attrs, event.time, seq=event.seq)
        if event.type in CLOSERS and event.seq not in closed_refs:
            _recreate_pending(runtime, tx, new, event, now)
    if reapply_signals:
        for signal in later_signals:
            history.append(tx, new, "SignalReceived",
                           {**signal.attrs, "reapplied_from": signal.seq}, now)
    new.wf_pending = 1
    new.step = f"reset from event {seq}"
    history.save_run_state(tx, new)
    return new_run_id


def _recreate_pending(runtime: Runtime, tx: Tx, run: RunRow, event: Event, now: float) -> None:
    """Queue again what a kept command was still waiting for at the cut."""
    attrs = event.attrs
    if event.type == "ActivityScheduled":
        queue_activity(tx, run, event.seq, attrs, now)
    elif event.type == "TimerStarted":
        queues.add_timer(tx, run.run_id, event.seq, attrs["fire_at"], "timer")
    elif event.type == "ManualTaskCreated":
        open_manual_task(tx, run, event.seq, attrs, now)
    elif event.type == "ChildWorkflowStarted":
        raise BadInput(f"event {event.seq} started child {attrs.get('child_id')} that had not "
                       "finished at the cut; cut before it")


def current_only(tx: Tx, ident: str) -> RunRow:
    """The run a repair acts on: ``ident``'s current run (by workflow id, or the run id of
    the current run). The run id of an older run is refused, naming the current one."""
    run = history.current_run(tx, ident) or history.get_run(tx, ident)
    if run is None:
        raise NotFound(f"no run with id {ident!r}; `onward list` shows the runs")
    if not run.is_current:
        current = history.current_run(tx, run.workflow_id)
        assert current is not None
        raise NotCurrentRun(f"run {ident} is not the current run of {run.workflow_id}; its "
                            f"current run is {current.run_id} ({current.status}): act on "
                            f"{run.workflow_id}")
    return run


def _take_turn(tx: Tx, seen: RunRow) -> RunRow:
    """Wait for this id's turn (other repairs and starts of it) and lock its current run,
    which may no longer be ``seen``, the run the caller looked at before waiting."""
    tx.lock_workflow_id(seen.workflow_id)
    run = history.current_run(tx, seen.workflow_id, lock=True)
    assert run is not None  # runs are never deleted
    return run


def _look(runtime: Runtime, ident: str) -> RunRow:
    with runtime.store.read() as tx:
        return current_only(tx, ident)


def retry(runtime: Runtime, ident: str, *, discard_completed: bool = False) -> str:
    """Retry a run now: see ``onward retry``. Returns what was done, in words.

    A failed run gets a new run from just before its failed step (refused if that would
    discard completed activities, unless ``discard_completed``). When another caller
    retried the same run a moment before, says so and starts nothing."""
    seen = _look(runtime, ident)
    now = runtime.clock()

    def write(tx: Tx) -> tuple[str, bool]:
        run = _take_turn(tx, seen)
        if run.run_id != seen.run_id and run.reset_from == seen.run_id:
            return (f"{run.workflow_id} was already retried a moment ago: new run "
                    f"{run.run_id}"), False
        if run.status == "failed":
            events = history.load_events(tx, run.run_id)
            cut = failed_step_cut(events)
            new_run_id = reset(runtime, tx, run, cut, reason="retry",
                               discard_completed=discard_completed)
            message = (f"retrying {run.workflow_id}: new run {new_run_id} continues from "
                       f"event {cut} with today's code")
        elif run.is_open:
            message = _hurry(tx, run, now)
        else:
            raise BadInput(f"run {run.workflow_id} has {run.status}; only failed, stuck or "
                           "retrying runs can be retried (use --rerun to start it afresh)")
        return message, True

    (message, wrote), tx = runtime.committer.run_job(write, locked=True)
    if wrote:
        runtime.feed.wrote(tx)  # (announcing the close a reset made)
    return message


def _hurry(tx: Tx, run: RunRow, now: float) -> str:
    """Retry a stuck run's workflow task and start backing-off attempts now."""
    done = []
    if run.stuck:
        run.wf_pending, run.stuck_reason = 1, None
        done.append("workflow task retried")
    hurried = queues.hurry_attempts(tx, run.run_id, now)
    if hurried:
        done.append(f"{hurried} activity attempt(s) start now")
    if not done:
        made = f", retried from {run.reset_from}" if run.reset_from else ""
        raise BadInput(f"run {run.workflow_id} (run {run.run_id}{made}) is not failed, stuck "
                       "or waiting out a retry backoff: nothing to retry")
    run.updated = now
    history.save_run_state(tx, run)
    return f"{run.workflow_id}: " + ", ".join(done)


def repair_plan(runtime: Runtime, ident: str, event: int | None = None) -> dict[str, Any]:
    """What ``retry`` (``event`` None) or ``reset`` to ``event`` would keep and discard."""
    with runtime.store.read() as tx:
        run = current_only(tx, ident)
        events = history.load_events(tx, run.run_id)
    if event is None:
        if run.status != "failed":
            raise BadInput(f"retry of {run.workflow_id} cuts no history: only a failed run "
                           f"restarts from a cut (it is {run.status})")
        cut, action = failed_step_cut(events), "retry"
    else:
        check_cut(events, event)
        cut, action = event, "reset"
    return {"id": run.workflow_id, "run_id": run.run_id, "action": action, "cut": cut,
            "kept": sum(1 for e in events if e.seq <= cut),
            "discarded": [{"seq": e.seq, "type": e.type} for e in events if e.seq > cut],
            "discarded_completed": completed_after(events, cut)}


def set_paused(runtime: Runtime, ident: str, paused: bool) -> str:
    """Hold a run (no new attempts or workflow tasks) or let it go."""

    def write(tx: Tx) -> tuple[RunRow, bool]:
        run = runtime.find_run(tx, ident, lock=True)
        if not run.is_open:
            raise BadInput(f"run {run.workflow_id} has {run.status}; only open runs can be "
                           f"{'paused' if paused else 'resumed'}")
        if bool(run.paused) == paused:
            return run, False
        run.paused = int(paused)
        if not paused:
            run.wf_pending = 1
        run.updated = runtime.clock()
        history.save_run_state(tx, run)
        return run, True

    run, changed = runtime.committer.run(write)
    if not changed:
        return f"{run.workflow_id} is already {'paused' if paused else 'running'}"
    runtime.feed.wrote()
    return f"{'paused' if paused else 'resumed'} {run.workflow_id}"


def reset_run(runtime: Runtime, ident: str, seq: int, *, reapply_signals: bool = True,
              discard_completed: bool = False) -> tuple[str, str, bool]:
    """``onward reset``: a new run of the id from its history up to ``seq``; its
    (workflow id, run id, created).

    When another caller reset the same run to the same event a moment before, returns
    that new run (``created`` False) instead of making a second one."""
    seen = _look(runtime, ident)

    def write(tx: Tx) -> tuple[str, str, bool]:
        run = _take_turn(tx, seen)
        if run.run_id != seen.run_id:
            first = history.load_events(tx, run.run_id, upto=1)
            if run.reset_from == seen.run_id and first and \
                    first[0].attrs.get("reset_event") == seq:
                return run.workflow_id, run.run_id, False
            raise BadInput(f"run {run.workflow_id} changed while waiting to reset it: its "
                           f"current run is now {run.run_id} ({run.status}); look again")
        new_run_id = reset(runtime, tx, run, seq, reason="reset",
                           reapply_signals=reapply_signals,
                           discard_completed=discard_completed)
        return run.workflow_id, new_run_id, True

    (workflow_id, run_id, created), tx = runtime.committer.run_job(write, locked=True)
    if created:
        runtime.feed.wrote(tx)
    return workflow_id, run_id, created


def replay_one(runtime: Runtime, run: RunRow, events: list[Event],
               definition: WorkflowDefinition | None = None) -> ReplayResult:
    """Replay one history against today's code (or against ``definition``, a candidate
    not yet swapped in); never writes."""
    result = ReplayResult(run.workflow_id, run.run_id, run.workflow, run.status, True)
    definition = definition or runtime.registry.workflow(run.workflow)
    if definition is None:
        result.ok, result.error = None, f"no code for workflow {run.workflow}"
        return result
    instance = WorkflowInstance(definition.fn, Advancer.info_for(run),
                                watch=runtime.advancer.watch,
                                activities=runtime.registry.activity)
    try:
        instance.activate(events)
    except WorkflowTaskError as err:
        result.ok, result.error = False, str(err)
        result.seq = err.details.get("seq")
    finally:
        instance.loop.close()
    return result


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def replay_exported(runtime: Runtime, data: dict[str, Any]) -> ReplayResult:
    """Replay an exported history (``onward show --json``) against the engine's code."""
    try:
        events = [Event(int(e["seq"]), str(e["type"]), _epoch(e["time"]), dict(e["attrs"]))
                  for e in data["history"]]
        run = RunRow(
            run_id=data["run_id"], workflow_id=data["id"], workflow=data["workflow"],
            status=data.get("status", "running"), input=None, result=None, error=None,
            started=events[0].time if events else 0.0, updated=0.0, closed=None,
            last_seq=events[-1].seq if events else 0, wf_pending=0, stuck=0,
            stuck_reason=None, paused=0, retrying=0, parent_run_id=None,
            parent_id=(data.get("parent") or {}).get("id"), parent_ref=None,
            continued_from=data.get("continued_from"), reset_from=None, reset_to=None,
            is_current=1, step=None, lineage=data["run_id"])
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise BadInput(f"not an exported Onward history: missing or bad {err}") from None
    return replay_one(runtime, run, events)


def replay_check(runtime: Runtime, ids: list[str] | None, *, all_runs: bool = False,
                 sample: int = 200) -> list[dict[str, Any]]:
    """Replay open runs and a sample of closed ones (or ``ids``, or every run)."""
    with runtime.store.read() as tx:
        if ids:
            chosen = [runtime.find_run(tx, ident) for ident in ids]
        elif all_runs:
            chosen = runs.all_runs(tx)
        else:
            chosen = runs.open_runs(tx) + runs.recently_closed_runs(tx, sample)
        report = []
        for run in chosen:
            events = history.load_events(tx, run.run_id)
            report.append(replay_one(runtime, run, events).to_json())
    return report
