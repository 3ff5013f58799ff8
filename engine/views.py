"""Read models: the JSON shapes of ``show``, ``list`` and ``tasks``, built from the rows
that ``engine.store.visibility`` reads."""

from __future__ import annotations

import json
from typing import Any

from . import payloads
from .events import iso
from .store import runs, search_attrs, visibility
from .store.base import Tx
from .store.runs import RunRow
from .store.visibility import FILTERS, STATUSES

__all__ = ["FILTERS", "STATUSES", "counts", "list_runs", "next_due", "recent_steps",
           "run_summary", "show", "tasks"]


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text else None


def run_summary(run: RunRow) -> dict[str, Any]:
    """The fields of a run that ``list`` shows."""
    return {
        "id": run.workflow_id, "run_id": run.run_id, "workflow": run.workflow,
        "status": run.status, "stuck": bool(run.stuck), "paused": bool(run.paused),
        "retrying": bool(run.retrying), "started": iso(run.started),
        "updated": iso(run.updated), "closed": iso(run.closed), "step": run.step or "",
        "parent_id": run.parent_id,
    }


def show(tx: Tx, run: RunRow, *, with_history: bool, now: float) -> dict[str, Any]:
    """Everything about one run, with its history."""
    data = run_summary(run)
    data.update({
        "input": run.args, "result": payloads.loads(run.result),
        "error": _json_or_none(run.error), "stuck_reason": run.stuck_reason,
        "parent": {"id": run.parent_id, "run_id": run.parent_run_id}
        if run.parent_run_id else None,
        "continued_from": run.continued_from, "reset_from": run.reset_from,
        "reset_to": run.reset_to,
    })
    attrs, memo = search_attrs.meta(tx, run.run_id)
    data["search_attributes"] = attrs
    data["memo"] = json.loads(memo) if memo is not None else {}
    data["children"] = [
        {"id": wid, "run_id": rid, "workflow": wf, "status": st}
        for wid, rid, wf, st in visibility.child_runs(tx, run.run_id)]
    data["runs"] = [
        {"run_id": rid, "status": st, "started": iso(started), "current": bool(cur)}
        for rid, st, started, cur in visibility.runs_of_id(tx, run.workflow_id)]
    data["pending"] = {
        "activities": [
            {"ref": ref, "name": name, "attempt": attempt, "due": iso(due),
             "running": owner is not None, "worker": owner,
             "state": "running" if owner is not None else (
                 "queued (waiting for a worker or a provider limit)" if due <= now
                 else "backing off until the next attempt"),
             "last_failure": _json_or_none(failure),
             "heartbeat_details": _json_or_none(details), "canceled": cancel}
            for ref, name, attempt, due, owner, failure, details, cancel in
            visibility.pending_activities(tx, run.run_id)],
        "timers": [
            {"ref": ref, "fire_at": iso(fire_at), "kind": kind}
            for ref, fire_at, kind in visibility.pending_timers(tx, run.run_id)],
        "tasks": tasks(tx, "open", now, run_id=run.run_id),
    }
    if with_history:
        data["history"] = [e.to_json() for e in runs.load_events(tx, run.run_id)]
    return data


def list_runs(tx: Tx, *, status: str | None, search: str | None, limit: int | None,
              offset: int, all_runs: bool, order: str, now: float) -> list[dict[str, Any]]:
    """Runs matching a status or filter and an optional search text."""
    return [run_summary(run) for run in visibility.find_runs(
        tx, status=status, search=search, limit=limit, offset=offset, all_runs=all_runs,
        order=order, now=now)]


def counts(tx: Tx, now: float) -> dict[str, int]:
    """Current runs per status, and per operator filter."""
    return visibility.count_runs(tx, now)


def next_due(tx: Tx, run_ids: list[str]) -> dict[str, dict[str, str | None]]:
    """``{run_id: {"retry": iso, "deadline": iso}}`` for these runs: when the next queued
    activity attempt is due and the earliest open manual task deadline (None if none)."""
    return {run_id: {"retry": iso(due), "deadline": iso(deadline)}
            for run_id, (due, deadline) in visibility.next_due(tx, run_ids).items()}


def recent_steps(tx: Tx, now: float, seconds: int) -> dict[str, Any]:
    """Events and failures committed in each of the last ``seconds`` whole seconds, oldest
    first: ``{"events": [...], "failures": [...], "from": epoch second of the first}``."""
    since = float(int(now) - seconds + 1)
    events, failures = [0] * seconds, [0] * seconds
    for second, n, failed in visibility.recent_steps(tx, since):
        if 0 <= int(second) < seconds:
            events[int(second)] += int(n)
            failures[int(second)] += int(failed or 0)
    return {"events": events, "failures": failures, "from": int(since)}


def tasks(tx: Tx, status: str | None, now: float, *, run_id: str | None = None
          ) -> list[dict[str, Any]]:
    """Manual tasks as ``onward tasks --json`` shows them."""
    rows = visibility.manual_tasks_of(tx, status, run_id=run_id)
    return [{
        "task_id": task_id, "id": wid, "run_id": rid, "workflow": wf, "kind": kind,
        "assignee": assignee, "instructions": instructions, "data": payloads.loads(data),
        "created": iso(created), "deadline": iso(deadline), "status": st,
        "overdue": bool(st == "open" and deadline is not None and deadline < now),
        "result": payloads.loads(result), "reason": reason, "completed_by": by,
        "completed_at": iso(done),
    } for (task_id, wid, rid, wf, kind, assignee, instructions, data, created, deadline, st,
           result, reason, by, done) in rows]
