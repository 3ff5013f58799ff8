"""The work queues in the store: activity tasks, rate limits, timers, manual tasks, and the
workflow tasks due on runs.

Each operation takes an open transaction (``Tx``) and does one thing the engine needs; the
engine's modules hold no SQL. Times are the engine's clock readings (seconds since the
epoch, floats); JSON columns are passed and returned as text, encoded by the caller.
Operations that lock rows on backends that need it say so: they lock through
``Tx.lock_rows_of``, which is nothing on SQLite (writers exclude each other there).
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Row, Tx

# -- activity tasks ---------------------------------------------------------------------------
CLAIM_COLUMNS = ("a.run_id, a.ref, a.name, a.args, a.options, a.attempt, a.heartbeat_details, "
                 "r.workflow_id, r.lineage")


def add_activity_task(tx: Tx, run_id: str, ref: int, name: str, args: str, options: str,
                      now: float, close_deadline: float | None, owner: str | None = None,
                      attempt_deadline: float | None = None,
                      heartbeat_deadline: float | None = None) -> None:
    """Queue the first attempt of activity ``ref`` of ``run_id``, due ``now``.

    ``args`` and ``options`` are JSON text; ``close_deadline`` ends every attempt
    (schedule-to-close). With ``owner`` the attempt is claimed by it and started ``now``,
    with the given deadlines. Raises the backend's integrity error if the task exists."""
    tx.execute(
        "INSERT INTO activity_tasks (run_id, ref, name, args, options, attempt, due, "
        "scheduled, close_deadline, owner, attempt_started, attempt_deadline, "
        "heartbeat_deadline) VALUES (?,?,?,?,?,1,?,?,?,?,?,?,?)",
        (run_id, ref, name, args, options, now, now, close_deadline, owner,
         now if owner is not None else None, attempt_deadline, heartbeat_deadline))


def ready_attempts_sql(name_count: int, lock: str) -> str:
    """The query behind :func:`ready_attempts` for ``name_count`` names, ending in ``lock``
    (exposed so tests can check that it runs on the ``activity_ready`` index)."""
    marks = ",".join("?" * name_count)
    return (f"SELECT {CLAIM_COLUMNS} FROM activity_tasks a JOIN runs r ON r.run_id = a.run_id "
            f"WHERE a.owner IS NULL AND a.due <= ? AND r.paused = 0 AND a.name IN ({marks}) "
            f"ORDER BY a.due LIMIT ?{lock}")


def ready_attempts(tx: Tx, names: Sequence[str], now: float, limit: int) -> list[Row]:
    """Up to ``limit`` unclaimed attempts of the activities ``names`` due by ``now`` on
    unpaused runs, earliest due first, locked for this transaction; attempts that other
    transactions hold are skipped, and the runs are read, not locked.

    Rows: (run_id, ref, name, args, options, attempt, heartbeat_details, workflow_id,
    lineage), JSON columns as text. Claim each with :func:`start_attempt`."""
    if not names or limit <= 0:
        return []
    return tx.execute(ready_attempts_sql(len(names), tx.lock_rows_of("a", skip_locked=True)),
                      (now, *names, limit))


def has_ready_attempt(tx: Tx, names: Sequence[str], now: float) -> bool:
    """Whether an attempt of ``names`` is due by ``now`` on an unpaused run, unclaimed."""
    if not names:
        return False
    return tx.one(
        "SELECT 1 FROM activity_tasks a JOIN runs r ON r.run_id = a.run_id WHERE a.owner IS "
        f"NULL AND a.due <= ? AND r.paused = 0 AND a.name IN ({','.join('?' * len(names))}) "
        "LIMIT 1", (now, *names)) is not None


def ready_activity_names(tx: Tx, now: float) -> set[str]:
    """The names of the activities with an unclaimed attempt due by ``now``."""
    return {row[0] for row in tx.execute(
        "SELECT DISTINCT name FROM activity_tasks WHERE owner IS NULL AND due <= ?", (now,))}


def start_attempt(tx: Tx, run_id: str, ref: int, owner: str, now: float,
                  attempt_deadline: float, heartbeat_deadline: float | None) -> None:
    """Record ``owner`` as running the current attempt of activity ``ref`` of ``run_id``
    from ``now``, with its start-to-close and heartbeat deadlines."""
    tx.execute("UPDATE activity_tasks SET owner = ?, attempt_started = ?, "
               "attempt_deadline = ?, heartbeat_deadline = ? WHERE run_id = ? AND ref = ?",
               (owner, now, attempt_deadline, heartbeat_deadline, run_id, ref))


def restart_attempt(tx: Tx, run_id: str, ref: int, owner: str, attempt: int, now: float,
                    attempt_deadline: float, heartbeat_deadline: float | None) -> bool:
    """Restart from ``now`` the clocks of ``attempt`` that ``owner`` holds; False (and
    nothing changed) when ``owner`` does not hold that attempt."""
    return bool(tx.execute(
        "UPDATE activity_tasks SET attempt_started = ?, attempt_deadline = ?, "
        "heartbeat_deadline = ? WHERE run_id = ? AND ref = ? AND owner = ? AND attempt = ? "
        "RETURNING ref", (now, attempt_deadline, heartbeat_deadline, run_id, ref, owner,
                          attempt)))


def release_attempt(tx: Tx, run_id: str, ref: int, owner: str, attempt: int) -> None:
    """Hand back ``attempt`` that ``owner`` claimed, as if never claimed (nothing happens
    when ``owner`` does not hold it)."""
    tx.execute("UPDATE activity_tasks SET owner = NULL, attempt_started = NULL, "
               "attempt_deadline = NULL, heartbeat_deadline = NULL WHERE run_id = ? AND "
               "ref = ? AND owner = ? AND attempt = ?", (run_id, ref, owner, attempt))


def lock_attempt(tx: Tx, run_id: str, ref: int, attempt: int, owner: str | None
                 ) -> tuple[str, str, float | None, str | None] | None:
    """Lock activity ``ref`` of ``run_id`` if its current attempt is ``attempt`` and, unless
    ``owner`` is None, ``owner`` holds it (the fence every outcome passes).

    Returns (name, options JSON, schedule-to-close deadline, cancel mark), or None when
    fenced off."""
    lock = tx.lock_rows_of()
    if owner is None:
        row = tx.one("SELECT name, options, close_deadline, cancel FROM activity_tasks "
                     f"WHERE run_id = ? AND ref = ? AND attempt = ?{lock}",
                     (run_id, ref, attempt))
    else:
        row = tx.one("SELECT name, options, close_deadline, cancel FROM activity_tasks WHERE "
                     f"run_id = ? AND ref = ? AND owner = ? AND attempt = ?{lock}",
                     (run_id, ref, owner, attempt))
    return (row[0], row[1], row[2], row[3]) if row else None


def finish_attempt(tx: Tx, run_id: str, ref: int, owner: str, attempt: int
                   ) -> tuple[str, str | None] | None:
    """Remove activity ``ref`` of ``run_id`` whose ``attempt`` ``owner`` completed; the
    activity's name and cancel mark, or None (nothing removed) when ``owner`` does not
    hold that attempt."""
    row = tx.one("DELETE FROM activity_tasks WHERE run_id = ? AND ref = ? AND owner = ? AND "
                 "attempt = ? RETURNING name, cancel", (run_id, ref, owner, attempt))
    return (row[0], row[1]) if row else None


def cancel_activity_task(tx: Tx, run_id: str, ref: int, mark: str) -> str | None:
    """Cancel activity ``ref`` of ``run_id``: an attempt not running (queued or waiting
    out a backoff) is withdrawn; a running one keeps its row, marked ``mark`` ('try',
    'wait' or 'abandon'), for its worker to see. Returns the activity's name if it was
    withdrawn, None if it was marked or is gone."""
    row = tx.one("DELETE FROM activity_tasks WHERE run_id = ? AND ref = ? AND owner IS NULL "
                 "RETURNING name", (run_id, ref))
    if row is not None:
        return str(row[0])
    tx.execute("UPDATE activity_tasks SET cancel = ? WHERE run_id = ? AND ref = ?",
               (mark, run_id, ref))
    return None


def cancels_for(tx: Tx, owner: str) -> list[tuple[str, int, int]]:
    """The attempts ``owner`` holds whose run asked them to stop (marked 'try' or 'wait'):
    (run_id, ref, attempt)."""
    return [(r[0], r[1], r[2]) for r in tx.execute(
        "SELECT run_id, ref, attempt FROM activity_tasks WHERE owner = ? AND "
        "cancel IN ('try', 'wait')", (owner,))]


def retry_attempt(tx: Tx, run_id: str, ref: int, next_attempt: int, due: float,
                  last_failure: str) -> None:
    """Queue ``next_attempt`` of activity ``ref`` of ``run_id``, unclaimed, due at ``due``,
    recording ``last_failure`` (JSON text) as the reason of the retry."""
    tx.execute("UPDATE activity_tasks SET attempt = ?, owner = NULL, due = ?, "
               "attempt_started = NULL, attempt_deadline = NULL, "
               "heartbeat_deadline = NULL, last_failure = ? WHERE run_id = ? AND ref = ?",
               (next_attempt, due, last_failure, run_id, ref))


def remove_activity_task(tx: Tx, run_id: str, ref: int) -> None:
    """Withdraw activity ``ref`` of ``run_id`` (whoever holds it; its result is fenced)."""
    tx.execute("DELETE FROM activity_tasks WHERE run_id = ? AND ref = ?", (run_id, ref))


def held_attempt_options(tx: Tx, run_id: str, ref: int, owner: str, attempt: int
                         ) -> tuple[str, str | None] | None:
    """The options (JSON text) and cancel mark of ``attempt`` of activity ``ref`` of
    ``run_id`` if ``owner`` holds it, else None."""
    row = tx.one("SELECT options, cancel FROM activity_tasks WHERE run_id = ? AND ref = ? "
                 "AND owner = ? AND attempt = ?", (run_id, ref, owner, attempt))
    return (row[0], row[1]) if row else None


def extend_heartbeat(tx: Tx, run_id: str, ref: int, details: str,
                     heartbeat_deadline: float | None) -> None:
    """Record heartbeat ``details`` (JSON text) of activity ``ref`` of ``run_id`` and move
    its heartbeat deadline to ``heartbeat_deadline``."""
    tx.execute("UPDATE activity_tasks SET heartbeat_details = ?, heartbeat_deadline = ? "
               "WHERE run_id = ? AND ref = ?", (details, heartbeat_deadline, run_id, ref))


def expired_attempts(tx: Tx, now: float, limit: int) -> list[Row]:
    """Up to ``limit`` activities past a deadline at ``now``: held attempts past their
    start-to-close or heartbeat deadline, and any past schedule-to-close.

    Rows: (run_id, ref, owner, attempt, attempt_deadline, heartbeat_deadline,
    close_deadline)."""
    return tx.execute(
        "SELECT run_id, ref, owner, attempt, attempt_deadline, heartbeat_deadline, "
        "close_deadline FROM activity_tasks WHERE (owner IS NOT NULL AND (attempt_deadline "
        "<= ? OR heartbeat_deadline <= ?)) OR close_deadline <= ? LIMIT ?",
        (now, now, now, limit))


def attempts_held_by(tx: Tx, owner: str) -> list[tuple[str, int, int]]:
    """The attempts ``owner`` holds: (run_id, ref, attempt)."""
    return [(r[0], r[1], r[2]) for r in tx.execute(
        "SELECT run_id, ref, attempt FROM activity_tasks WHERE owner = ?", (owner,))]


def hurry_attempts(tx: Tx, run_id: str, now: float) -> int:
    """Make the unclaimed attempts of ``run_id`` waiting out a backoff due ``now``; how
    many were."""
    return len(tx.execute("UPDATE activity_tasks SET due = ? WHERE run_id = ? AND "
                          "owner IS NULL AND due > ? RETURNING ref", (now, run_id, now)))


# -- rate limits ------------------------------------------------------------------------------
def lock_rate_limit(tx: Tx, name: str) -> None:
    """Lock the rate-limit row of activity ``name`` (made if missing) for this transaction,
    so that concurrent claimers of ``name`` count its starts in turn."""
    tx.execute("INSERT INTO rate_limits (name, window_start, started) VALUES (?, 0, 0) "
               "ON CONFLICT (name) DO NOTHING", (name,))
    tx.execute(f"SELECT name FROM rate_limits WHERE name = ?{tx.lock_rows_of()}", (name,))


def running_attempts(tx: Tx, name: str) -> int:
    """How many attempts of activity ``name`` are held by workers."""
    return int(tx.scalar("SELECT count(*) FROM activity_tasks WHERE name = ? AND "
                         "owner IS NOT NULL", (name,)))


def rate_window(tx: Tx, name: str) -> tuple[float, int] | None:
    """The current one-second window of ``name``'s starts: (window start, starts in it), or
    None when ``name`` has no rate-limit row."""
    row = tx.one("SELECT window_start, started FROM rate_limits WHERE name = ?", (name,))
    return (row[0], row[1]) if row else None


def count_start(tx: Tx, name: str, now: float) -> None:
    """Count one start of activity ``name`` at ``now`` in its one-second window (a new
    window when the last began a second or more before ``now``)."""
    row = tx.one("SELECT window_start FROM rate_limits WHERE name = ?", (name,))
    if row is None:
        tx.execute("INSERT INTO rate_limits (name, window_start, started) VALUES (?,?,1)",
                   (name, now))
    elif now - row[0] >= 1.0:
        tx.execute("UPDATE rate_limits SET window_start = ?, started = 1 WHERE name = ?",
                   (now, name))
    else:
        tx.execute("UPDATE rate_limits SET started = started + 1 WHERE name = ?", (name,))


# -- timers -------------------------------------------------------------------------------------
def add_timer(tx: Tx, run_id: str, ref: int, fire_at: float, kind: str) -> None:
    """Set timer ``ref`` of ``run_id`` to fire at ``fire_at``; ``kind`` is 'timer' (a
    durable sleep) or 'task' (a manual task's deadline)."""
    tx.execute("INSERT INTO timers (run_id, ref, fire_at, kind) VALUES (?,?,?,?)",
               (run_id, ref, fire_at, kind))


def due_timers_sql(lock: str) -> str:
    """The query behind :func:`due_timers`, ending in ``lock`` (for index checks)."""
    return f"SELECT run_id, ref, kind FROM timers WHERE fire_at <= ? ORDER BY fire_at LIMIT ?{lock}"


def due_timers(tx: Tx, now: float, limit: int) -> list[tuple[str, int, str]]:
    """Up to ``limit`` timers due by ``now``, earliest first, locked for this transaction
    (timers other transactions hold are skipped): (run_id, ref, kind). Fire each with
    :func:`remove_timer`, which tells whether it was still there."""
    return [(r[0], r[1], r[2]) for r in tx.execute(
        due_timers_sql(tx.lock_rows_of(skip_locked=True)), (now, limit))]


def has_due_timer(tx: Tx, now: float) -> bool:
    """Whether a timer is due by ``now``."""
    return tx.one("SELECT 1 FROM timers WHERE fire_at <= ? LIMIT 1", (now,)) is not None


def remove_timer(tx: Tx, run_id: str, ref: int) -> bool:
    """Remove timer ``ref`` of ``run_id``; False when there was none (fired or withdrawn)."""
    return bool(tx.execute("DELETE FROM timers WHERE run_id = ? AND ref = ? RETURNING ref",
                           (run_id, ref)))


NEXT_DUE_SQL = (
    "SELECT (SELECT min(fire_at) FROM timers), "
    "(SELECT min(due) FROM activity_tasks WHERE owner IS NULL AND due > ?), "
    "(SELECT min(due) FROM schedules WHERE paused = 0), "
    "EXISTS (SELECT 1 FROM schedules WHERE paused = 0 AND buffered IS NOT NULL)")


def next_due(tx: Tx, now: float) -> tuple[float | None, float | None, float | None, bool]:
    """When work next falls due after ``now``, in one statement (a worker asks after every
    turn that changed something): the earliest timer, the earliest unclaimed attempt due
    after ``now``, the earliest due unpaused schedule (each None when there is none), and
    whether an unpaused schedule holds a buffered fire."""
    timer, ready, schedule, buffered = tx.execute(NEXT_DUE_SQL, (now,))[0]
    return timer, ready, schedule, bool(buffered)


# -- manual tasks -------------------------------------------------------------------------------
def open_manual_task(tx: Tx, task_id: str, run_id: str, workflow_id: str, workflow: str,
                     ref: int, kind: str, assignee: str | None, instructions: str,
                     data: str, created: float, deadline: float | None) -> None:
    """Open manual task ``task_id`` (``ref`` of ``run_id``), with its deadline timer when it
    has a ``deadline``. ``data`` is JSON text. Raises the backend's integrity error when
    the task id exists."""
    tx.execute(
        "INSERT INTO manual_tasks (task_id, run_id, workflow_id, workflow, ref, kind, "
        "assignee, instructions, data, created, deadline, status) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,'open')",
        (task_id, run_id, workflow_id, workflow, ref, kind, assignee, instructions, data,
         created, deadline))
    if deadline is not None:
        add_timer(tx, run_id, ref, deadline, "task")


def lock_manual_task(tx: Tx, task_id: str) -> tuple[str, int, str, str, str | None] | None:
    """Lock manual task ``task_id`` for this transaction: (run_id, ref, kind, status,
    completed_by), or None when there is no such task."""
    row = tx.one("SELECT run_id, ref, kind, status, completed_by FROM manual_tasks "
                 f"WHERE task_id = ?{tx.lock_rows_of()}", (task_id,))
    return (row[0], row[1], row[2], row[3], row[4]) if row else None


def close_task(tx: Tx, task_id: str, run_id: str, ref: int, status: str, *,
               result: str | None, reason: str | None, by: str | None, now: float) -> None:
    """Close manual task ``task_id`` (``ref`` of ``run_id``) as ``status`` ('completed' or
    'failed') with its ``result`` (JSON text) or ``reason``, answered ``by`` someone at
    ``now``, and withdraw its deadline timer. The caller checked that it was open."""
    tx.execute("UPDATE manual_tasks SET status = ?, result = ?, reason = ?, "
               "completed_by = ?, completed_at = ? WHERE task_id = ?",
               (status, result, reason, by, now, task_id))
    remove_timer(tx, run_id, ref)


def time_out_task(tx: Tx, run_id: str, ref: int, now: float) -> tuple[str, str] | None:
    """Mark manual task ``ref`` of ``run_id`` timed out at ``now`` if it is open:
    (task_id, kind), or None when it was not open."""
    row = tx.one("SELECT task_id, kind FROM manual_tasks WHERE run_id = ? AND "
                 "ref = ? AND status = 'open'", (run_id, ref))
    if row is None:
        return None
    tx.execute("UPDATE manual_tasks SET status = 'timed_out', completed_at = ? "
               "WHERE task_id = ?", (now, row[0]))
    return row[0], row[1]


def cancel_task(tx: Tx, run_id: str, ref: int, now: float) -> None:
    """Cancel manual task ``ref`` of ``run_id`` at ``now`` if open, with its deadline timer."""
    tx.execute("UPDATE manual_tasks SET status = 'canceled', completed_at = ? "
               "WHERE run_id = ? AND ref = ? AND status = 'open'", (now, run_id, ref))
    remove_timer(tx, run_id, ref)


# -- a run's queues as a whole --------------------------------------------------------------
def withdraw_run_work(tx: Tx, run_id: str, now: float) -> None:
    """Withdraw everything ``run_id`` waits for (it is closing): its activity tasks and
    timers are removed, its open manual tasks canceled at ``now``."""
    tx.execute("DELETE FROM activity_tasks WHERE run_id = ?", (run_id,))
    tx.execute("DELETE FROM timers WHERE run_id = ?", (run_id,))
    tx.execute("UPDATE manual_tasks SET status = 'canceled', completed_at = ? "
               "WHERE run_id = ? AND status = 'open'", (now, run_id))


CHILDREN_SQL = "SELECT run_id, status FROM runs WHERE parent_run_id = ?"
"""A run's children with their status (uses ``runs_by_parent``; filter status in code)."""


def children_of(tx: Tx, run_id: str) -> list[tuple[str, str]]:
    """The child runs ``run_id`` started: (run_id, status) (index ``runs_by_parent``)."""
    return [(r[0], r[1]) for r in tx.execute(CHILDREN_SQL, (run_id,))]


def child_at(tx: Tx, run_id: str, ref: int) -> tuple[str, str] | None:
    """The child run that command ``ref`` of ``run_id`` started: (run_id, status), or None."""
    row = tx.one("SELECT run_id, status FROM runs WHERE parent_run_id = ? AND parent_ref = ?",
                 (run_id, ref))
    return (row[0], row[1]) if row else None


# -- workflow tasks -----------------------------------------------------------------------------
def due_workflow_tasks_sql(workflow_count: int, lock: str) -> str:
    """The query behind :func:`due_workflow_tasks`, ending in ``lock``.

    Written to use the partial index ``runs_pending``: closed runs never keep wf_pending
    set, so the query does not name ``status`` (an index on it would be picked instead)."""
    marks = ",".join("?" * workflow_count)
    return ("SELECT run_id FROM runs WHERE wf_pending = 1 AND paused = 0 "
            f"AND workflow IN ({marks}) ORDER BY updated LIMIT ?{lock}")


def due_workflow_tasks(tx: Tx, workflows: Sequence[str], limit: int, *,
                       claim: bool = True) -> list[str]:
    """The ids of up to ``limit`` unpaused runs of ``workflows`` due a workflow task, the
    longest waiting first. With ``claim`` (in a write transaction) the runs are locked for
    it and runs other transactions hold are skipped; without, it only looks."""
    if not workflows or limit <= 0:
        return []
    lock = tx.lock_rows_of(skip_locked=True) if claim else ""
    return [r[0] for r in tx.execute(due_workflow_tasks_sql(len(workflows), lock),
                                     (*workflows, limit))]


def requeue_stuck_runs(tx: Tx, workflows: Sequence[str]) -> None:
    """Make every open run of ``workflows`` held stuck due a workflow task again (new code
    may get past what held it)."""
    if workflows:
        tx.execute("UPDATE runs SET wf_pending = 1 WHERE stuck = 1 AND status = 'running' "
                   f"AND workflow IN ({','.join('?' * len(workflows))})", tuple(workflows))
