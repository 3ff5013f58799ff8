"""What operators read: the run lists, counts, pending work and manual tasks they look at.

Read-only operations behind ``show``, ``list``, ``counts`` and ``tasks`` (``engine.views``
turns their rows into the JSON shapes). Each takes a transaction, usually a read snapshot.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadInput
from .base import Row, Tx
from .runs import RUN_COLUMNS, RunRow, runs_from

STATUSES = ("running", "completed", "failed", "canceled", "terminated", "continued_as_new")
"""The statuses a run can have."""
FILTERS = ("open", "stuck", "retrying", "paused", "waiting", "overdue")
"""Operator filters over current runs, beside the statuses."""

ORDERS = {
    "updated": "updated DESC", "started": "started DESC", "id": "workflow_id",
    "workflow": "workflow, updated DESC", "status": "status, updated DESC",
}
"""The orders ``find_runs`` knows; any other name orders by the latest change (``attention``
is built by ``_order`` since it compares task deadlines with now)."""

ATTENTION = ("CASE WHEN status = 'running' AND stuck = 1 THEN 0 WHEN status = 'failed' THEN 1 "
             "WHEN status = 'running' AND retrying = 1 THEN 2 WHEN status = 'running' AND "
             "EXISTS (SELECT 1 FROM manual_tasks t WHERE t.run_id = runs.run_id AND "
             "t.status = 'open' AND t.deadline < ?) THEN 3 ELSE 4 END, updated DESC")
"""Needs attention first: stuck, failed, retrying, overdue manual tasks; then the rest by
latest change (one CASE over the rows the WHERE keeps; overdue probes manual_tasks_run)."""
FAILURE_EVENTS = ("ActivityAttemptFailed", "ActivityFailed", "WorkflowFailed",
                  "WorkflowTaskFailed")
"""Event types the console's failures/min counts."""


def _filter(status: str | None, now: float) -> tuple[str, list[Any]]:
    """The condition (``AND ...``) and its parameters for a status or filter."""
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
    raise BadInput(f"unknown status {status!r}; use one of "
                   f"{', '.join(STATUSES + FILTERS)}")


def find_runs(tx: Tx, *, status: str | None, search: str | None, limit: int | None,
              offset: int, all_runs: bool, order: str, now: float) -> list[RunRow]:
    """Runs matching a status or filter and an optional search text.

    Args: ``status``: a status, a filter, ``"all"`` or None (every run); ``search``: text
    found in the workflow id or type; ``limit``/``offset``: a page (``limit`` None: all);
    ``all_runs``: older runs of an id too, not only current ones; ``order``: a key of
    ``ORDERS``; ``now``: the time ``overdue`` compares deadlines with.
    Returns: the runs in that order.
    Raises: BadInput for an unknown status or filter."""
    where, params = _filter(status, now)
    if not all_runs:
        where += " AND is_current = 1"
    if search:
        where += " AND (workflow_id LIKE ? OR workflow LIKE ?)"
        params += [f"%{search}%", f"%{search}%"]
    if order == "attention":
        ordering = ATTENTION
        params.append(now)
    else:
        ordering = ORDERS.get(order, ORDERS["updated"])
    # run_id last: runs that tie on the order's keys keep one order across pages and plans
    sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE 1 = 1{where} ORDER BY {ordering}, run_id DESC"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    return runs_from(tx.execute(sql, params))


def count_runs(tx: Tx, now: float) -> dict[str, int]:
    """How many current runs have each status (``STATUSES``) and match each filter
    (``FILTERS``); every key present, 0 where none."""
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


RECENT_TAIL = 2000
"""``recent_steps`` looks at most this many of a run's latest events (a run committing more
within the window is under-counted)."""


def recent_steps(tx: Tx, since: float) -> list[Row]:
    """Events committed since ``since`` per whole second: rows of (second, events,
    failures), ``second`` counted from ``since`` (SQLite truncates, PostgreSQL rounds: a
    rate display, not an audit). Reads the runs table once, then, for the runs changed
    since then, the tail of their events by primary key (CROSS JOIN keeps SQLite from
    scanning every event instead)."""
    marks = ", ".join("?" * len(FAILURE_EVENTS))
    return tx.execute(
        "SELECT CAST(e.time - ? AS INTEGER), count(*), "
        f"sum(CASE WHEN e.type IN ({marks}) THEN 1 ELSE 0 END) FROM runs r CROSS JOIN "
        "events e WHERE r.updated >= ? AND e.run_id = r.run_id AND e.seq > r.last_seq - ? "
        "AND e.time >= ? GROUP BY 1", (since, *FAILURE_EVENTS, since, RECENT_TAIL, since))


def next_due(tx: Tx, run_ids: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """For each of these runs that has one: (when its next queued activity attempt is due,
    the earliest deadline of its open manual tasks); both None where there is none."""
    found: dict[str, list[float | None]] = {}
    for start in range(0, len(run_ids), 500):  # well under any bound on SQL parameters
        chunk = run_ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for run_id, due in tx.execute(
                f"SELECT run_id, min(due) FROM activity_tasks WHERE owner IS NULL AND "
                f"run_id IN ({marks}) GROUP BY run_id", chunk):
            found.setdefault(run_id, [None, None])[0] = due
        for run_id, deadline in tx.execute(
                f"SELECT run_id, min(deadline) FROM manual_tasks WHERE status = 'open' AND "
                f"deadline IS NOT NULL AND run_id IN ({marks}) GROUP BY run_id", chunk):
            found.setdefault(run_id, [None, None])[1] = deadline
    return {run_id: (due, deadline) for run_id, (due, deadline) in found.items()}


def child_runs(tx: Tx, run_id: str) -> list[Row]:
    """The children a run started, oldest first: rows of (workflow_id, run_id, workflow,
    status)."""
    return tx.execute("SELECT workflow_id, run_id, workflow, status FROM runs WHERE "
                      "parent_run_id = ? ORDER BY started", (run_id,))


def runs_of_id(tx: Tx, workflow_id: str) -> list[Row]:
    """Every run of a workflow id, oldest first: rows of (run_id, status, started,
    is_current)."""
    return tx.execute("SELECT run_id, status, started, is_current FROM runs WHERE "
                      "workflow_id = ? ORDER BY started", (workflow_id,))


def pending_activities(tx: Tx, run_id: str) -> list[Row]:
    """A run's queued or running activity attempts by ref: rows of (ref, name, attempt,
    due, owner, last_failure, heartbeat_details, cancel); ``owner`` is None unless a worker
    holds the attempt, ``cancel`` None unless the code canceled the running attempt."""
    return tx.execute("SELECT ref, name, attempt, due, owner, last_failure, "
                      "heartbeat_details, cancel FROM activity_tasks WHERE run_id = ? "
                      "ORDER BY ref", (run_id,))


def pending_timers(tx: Tx, run_id: str) -> list[Row]:
    """A run's timers that have not fired, soonest first: rows of (ref, fire_at, kind)."""
    return tx.execute("SELECT ref, fire_at, kind FROM timers WHERE run_id = ? "
                      "ORDER BY fire_at", (run_id,))


TASK_COLUMNS = ("task_id, workflow_id, run_id, workflow, kind, assignee, instructions, data, "
                "created, deadline, status, result, reason, completed_by, completed_at")
"""The columns ``manual_tasks_of`` returns, in order."""


def manual_tasks_of(tx: Tx, status: str | None, *, run_id: str | None = None) -> list[Row]:
    """Manual tasks, oldest first, as rows of ``TASK_COLUMNS``.

    Args: ``status``: only tasks with this status (None or ``"all"``: every one);
    ``run_id``: only this run's tasks."""
    where, params = [], []
    if status and status != "all":
        where.append("status = ?")
        params.append(status)
    if run_id:
        where.append("run_id = ?")
        params.append(run_id)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    return tx.execute(f"SELECT {TASK_COLUMNS} FROM manual_tasks{clause} ORDER BY created",
                      params)
