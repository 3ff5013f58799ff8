"""Read models: the JSON shapes of ``show``, ``list`` and ``tasks``."""

from __future__ import annotations

import json
from typing import Any

from . import history, payloads
from .events import iso
from .history import RunRow
from .store.base import Tx

STATUSES = ("running", "completed", "failed", "canceled", "terminated", "continued_as_new")
FILTERS = ("open", "stuck", "retrying", "paused", "waiting", "overdue")

_ORDERS = {
    "updated": "updated DESC", "started": "started DESC", "id": "workflow_id",
    "workflow": "workflow, updated DESC", "status": "status, updated DESC",
}


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
    data["children"] = [
        {"id": wid, "run_id": rid, "workflow": wf, "status": st}
        for wid, rid, wf, st in tx.execute(
            "SELECT workflow_id, run_id, workflow, status FROM runs WHERE parent_run_id = ? "
            "ORDER BY started", (run.run_id,))]
    data["runs"] = [
        {"run_id": rid, "status": st, "started": iso(started), "current": bool(cur)}
        for rid, st, started, cur in tx.execute(
            "SELECT run_id, status, started, is_current FROM runs WHERE workflow_id = ? "
            "ORDER BY started", (run.workflow_id,))]
    data["pending"] = {
        "activities": [
            {"ref": ref, "name": name, "attempt": attempt, "due": iso(due),
             "running": owner is not None, "worker": owner,
             "state": "running" if owner is not None else (
                 "queued (waiting for a worker or a provider limit)" if due <= now
                 else "backing off until the next attempt"),
             "last_failure": _json_or_none(failure)}
            for ref, name, attempt, due, owner, failure in tx.execute(
                "SELECT ref, name, attempt, due, owner, last_failure FROM activity_tasks "
                "WHERE run_id = ? ORDER BY ref", (run.run_id,))],
        "timers": [
            {"ref": ref, "fire_at": iso(fire_at), "kind": kind}
            for ref, fire_at, kind in tx.execute(
                "SELECT ref, fire_at, kind FROM timers WHERE run_id = ? ORDER BY fire_at",
                (run.run_id,))],
        "tasks": tasks(tx, "open", now, run_id=run.run_id),
    }
    if with_history:
        data["history"] = [e.to_json() for e in history.load_events(tx, run.run_id)]
    return data


def _filter_sql(status: str | None, now: float) -> tuple[str, list[Any]]:
    if status is None or status == "all":
        return "", []
    if status in STATUSES:
        return " AND status = ?", [status]
    if status == "open":
        return " AND status = 'running'", []
    if status in ("stuck", "retrying", "paused"):
        return f" AND {status} = 1 AND status = 'running'", []
    if status == "waiting":
        return (" AND EXISTS (SELECT 1 FROM manual_tasks t WHERE t.run_id = runs.run_id "
                "AND t.status = 'open')"), []
    if status == "overdue":
        return (" AND EXISTS (SELECT 1 FROM manual_tasks t WHERE t.run_id = runs.run_id "
                "AND t.status = 'open' AND t.deadline < ?)"), [now]
    from .errors import BadInput
    raise BadInput(f"unknown status {status!r}; use one of "
                   f"{', '.join(STATUSES + FILTERS)}")


def list_runs(tx: Tx, *, status: str | None, search: str | None, limit: int | None,
              offset: int, all_runs: bool, order: str, now: float) -> list[dict[str, Any]]:
    """Runs matching a status or filter and an optional search text."""
    where, params = _filter_sql(status, now)
    if not all_runs:
        where += " AND is_current = 1"
    if search:
        where += " AND (workflow_id LIKE ? OR workflow LIKE ?)"
        params += [f"%{search}%", f"%{search}%"]
    sql = (f"SELECT {history.RUN_COLUMNS} FROM runs WHERE 1 = 1{where} "
           f"ORDER BY {_ORDERS.get(order, _ORDERS['updated'])}")
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    return [run_summary(RunRow(*row)) for row in tx.execute(sql, params)]


def counts(tx: Tx, now: float) -> dict[str, int]:
    """Current runs per status, and per operator filter."""
    result = dict.fromkeys(STATUSES + FILTERS, 0)
    for status, n in tx.execute("SELECT status, count(*) FROM runs WHERE is_current = 1 "
                                "GROUP BY status"):
        result[status] = n
    result["open"] = result["running"]
    row = tx.one("SELECT sum(stuck), sum(retrying), sum(paused) FROM runs WHERE "
                 "is_current = 1 AND status = 'running'")
    if row:
        result["stuck"], result["retrying"], result["paused"] = (int(v or 0) for v in row)
    result["waiting"] = tx.scalar("SELECT count(DISTINCT run_id) FROM manual_tasks WHERE "
                                  "status = 'open'") or 0
    result["overdue"] = tx.scalar("SELECT count(DISTINCT run_id) FROM manual_tasks WHERE "
                                  "status = 'open' AND deadline < ?", (now,)) or 0
    return result


def tasks(tx: Tx, status: str | None, now: float, *, run_id: str | None = None
          ) -> list[dict[str, Any]]:
    """Manual tasks as ``onward tasks --json`` shows them."""
    where, params = [], []
    if status and status != "all":
        where.append("status = ?")
        params.append(status)
    if run_id:
        where.append("run_id = ?")
        params.append(run_id)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows = tx.execute(
        "SELECT task_id, workflow_id, run_id, workflow, kind, assignee, instructions, data, "
        "created, deadline, status, result, reason, completed_by, completed_at "
        f"FROM manual_tasks{clause} ORDER BY created", params)
    return [{
        "task_id": task_id, "id": wid, "run_id": rid, "workflow": wf, "kind": kind,
        "assignee": assignee, "instructions": instructions, "data": payloads.loads(data),
        "created": iso(created), "deadline": iso(deadline), "status": st,
        "overdue": bool(st == "open" and deadline is not None and deadline < now),
        "result": payloads.loads(result), "reason": reason, "completed_by": by,
        "completed_at": iso(done),
    } for (task_id, wid, rid, wf, kind, assignee, instructions, data, created, deadline, st,
           result, reason, by, done) in rows]
