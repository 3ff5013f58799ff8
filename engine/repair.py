"""Repair: retry, pause, resume, reset and the replay check, over the store's histories.

A reset (and the retry of a failed run) starts a new run of the same workflow id whose
history is the old one cut at an event: the new run replays that prefix without running
anything again, then continues with today's code. Old and new runs stay linked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import history
from .advance import open_manual_task, queue_activity
from .errors import BadInput
from .events import COMMAND_TYPES, Event
from .history import RunRow
from .instance import WorkflowInstance, WorkflowTaskError
from .store.base import Tx

if TYPE_CHECKING:
    from .client import Engine, RunHandle

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


def reset(engine: Engine, tx: Tx, run: RunRow, seq: int, *, reason: str,
          reapply_signals: bool = True) -> str:
    """Create the new run of ``run``'s id from its history up to ``seq``; its run id."""
    events = history.load_events(tx, run.run_id)
    check_cut(events, seq)
    now = engine.clock()
    kept = [e for e in events if e.seq <= seq]
    later_signals = [e for e in events if e.seq > seq and e.type == "SignalReceived"]
    new_run_id = engine.new_id("run")
    if run.is_open:
        history.append(tx, run, "WorkflowTerminated",
                       {"reason": f"{reason}: reset to event {seq} (new run {new_run_id})"},
                       now)
        run.error = json.dumps({"type": "Reset", "message": f"reset to event {seq}"})
        engine.advancer.close(tx, run, "terminated", now)
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
            attrs["task_id"] = engine.new_id("task")
        history.append(tx, new, event.type, attrs, event.time, seq=event.seq)
        if event.type in CLOSERS and event.seq not in closed_refs:
            _recreate_pending(engine, tx, new, event, now)
    if reapply_signals:
        for signal in later_signals:
            history.append(tx, new, "SignalReceived",
                           {**signal.attrs, "reapplied_from": signal.seq}, now)
    new.wf_pending = 1
    new.step = f"reset from event {seq}"
    history.save_run_state(tx, new)
    return new_run_id


def _recreate_pending(engine: Engine, tx: Tx, run: RunRow, event: Event, now: float) -> None:
    """Queue again what a kept command was still waiting for at the cut."""
    attrs = event.attrs
    if event.type == "ActivityScheduled":
        queue_activity(tx, run, event.seq, attrs, now)
    elif event.type == "TimerStarted":
        tx.execute("INSERT INTO timers (run_id, ref, fire_at, kind) VALUES (?,?,?,'timer')",
                   (run.run_id, event.seq, attrs["fire_at"]))
    elif event.type == "ManualTaskCreated":
        open_manual_task(tx, run, event.seq, attrs, now)
    elif event.type == "ChildWorkflowStarted":
        raise BadInput(f"event {event.seq} started child {attrs.get('child_id')} that had not "
                       "finished at the cut; cut before it")


def retry(engine: Engine, ident: str) -> str:
    """Retry a run now: see ``onward retry``. Returns what was done, in words."""
    now = engine.clock()
    with engine.advance_lock, engine.store.write() as tx:
        run = engine._find(tx, ident, lock=True)
        if run.status == "failed":
            events = history.load_events(tx, run.run_id)
            cut = failed_step_cut(events)
            new_run_id = reset(engine, tx, run, cut, reason="retry")
            message = (f"retrying {run.workflow_id}: new run {new_run_id} continues from "
                       f"event {cut} with today's code")
        elif run.is_open:
            done = []
            if run.stuck:
                run.wf_pending, run.stuck_reason = 1, None
                done.append("workflow task retried")
            hurried = tx.execute("UPDATE activity_tasks SET due = ? WHERE run_id = ? AND "
                                 "owner IS NULL AND due > ? RETURNING ref", (now, run.run_id, now))
            if hurried:
                done.append(f"{len(hurried)} activity attempt(s) start now")
            if not done:
                raise BadInput(f"run {run.workflow_id} is not failed, stuck or waiting out a "
                               "retry backoff: nothing to retry")
            run.updated = now
            history.save_run_state(tx, run)
            message = f"{run.workflow_id}: " + ", ".join(done)
        else:
            raise BadInput(f"run {run.workflow_id} has {run.status}; only failed, stuck or "
                           "retrying runs can be retried (use --rerun to start it afresh)")
    engine._wrote()
    return message


def set_paused(engine: Engine, ident: str, paused: bool) -> str:
    """Hold a run (no new attempts or workflow tasks) or let it go."""
    with engine.store.write() as tx:
        run = engine._find(tx, ident, lock=True)
        if not run.is_open:
            raise BadInput(f"run {run.workflow_id} has {run.status}; only open runs can be "
                           f"{'paused' if paused else 'resumed'}")
        if bool(run.paused) == paused:
            return f"{run.workflow_id} is already {'paused' if paused else 'running'}"
        run.paused = int(paused)
        if not paused:
            run.wf_pending = 1
        run.updated = engine.clock()
        history.save_run_state(tx, run)
    engine._wrote()
    return f"{'paused' if paused else 'resumed'} {run.workflow_id}"


def reset_run(engine: Engine, ident: str, seq: int, *, reapply_signals: bool = True
              ) -> RunHandle:
    """``onward reset``: a new run of the id from its history up to ``seq``."""
    from .client import RunHandle
    with engine.advance_lock, engine.store.write() as tx:
        run = engine._find(tx, ident, lock=True)
        new_run_id = reset(engine, tx, run, seq, reason="reset",
                           reapply_signals=reapply_signals)
    engine._wrote()
    return RunHandle(engine, run.workflow_id, new_run_id)


def replay_one(engine: Engine, run: RunRow, events: list[Event]) -> ReplayResult:
    """Replay one history against today's code; never writes."""
    result = ReplayResult(run.workflow_id, run.run_id, run.workflow, run.status, True)
    definition = engine.registry.workflow(run.workflow)
    if definition is None:
        result.ok, result.error = None, f"no code for workflow {run.workflow}"
        return result
    instance = WorkflowInstance(definition.fn, engine.advancer.info_for(run))
    try:
        instance.activate(events)
    except WorkflowTaskError as err:
        result.ok, result.error = False, str(err)
        result.seq = err.details.get("seq")
    finally:
        instance.loop.close()
    return result


def _epoch(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text).timestamp()


def replay_exported(engine: Engine, data: dict[str, Any]) -> ReplayResult:
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
    return replay_one(engine, run, events)


def replay_check(engine: Engine, ids: list[str] | None, *, all_runs: bool = False,
                 sample: int = 200) -> list[dict[str, Any]]:
    """Replay open runs and a sample of closed ones (or ``ids``, or every run)."""
    with engine.store.read() as tx:
        if ids:
            runs = [engine._find(tx, ident) for ident in ids]
        elif all_runs:
            runs = [RunRow(*r) for r in tx.execute(
                f"SELECT {history.RUN_COLUMNS} FROM runs ORDER BY started")]
        else:
            runs = [RunRow(*r) for r in tx.execute(
                f"SELECT {history.RUN_COLUMNS} FROM runs WHERE status = 'running'")]
            runs += [RunRow(*r) for r in tx.execute(
                f"SELECT {history.RUN_COLUMNS} FROM runs WHERE status IN ('completed', "
                "'failed', 'canceled', 'continued_as_new') ORDER BY updated DESC LIMIT ?",
                (sample,))]
        report = []
        for run in runs:
            events = history.load_events(tx, run.run_id)
            report.append(replay_one(engine, run, events).to_json())
    return report
