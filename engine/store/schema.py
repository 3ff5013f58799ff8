"""The schema, as numbered migrations applied in order inside one transaction."""

from __future__ import annotations

import re

APPLICATION_ID = 0x4F4E5744  # "ONWD": marks a SQLite file as an Onward database

_SECOND_OPEN = (
    "status = 'running' AND EXISTS (SELECT 1 FROM runs AS other WHERE "
    "other.workflow_id = runs.workflow_id AND other.status = 'running' AND "
    "other.run_id <> runs.run_id AND (other.is_current > runs.is_current OR "
    "(other.is_current = runs.is_current AND (other.started > runs.started OR "
    "(other.started = runs.started AND other.run_id > runs.run_id)))))")
"""An open run of an id that has a preferred open run: the current one, else the newest."""
_SECOND_OPEN_REASON = ('{"reason": "a second open run of this id (left by a concurrent '
                       'start before schema version 3); the other run goes on"}')
_SECOND_OPEN_ERROR = '{"type": "Terminated", "message": "a second open run of its id"}'

# Each entry upgrades the schema from version i to i + 1. Types are written so that the
# same statements work on SQLite and, with the substitutions in ``ddl_for``, PostgreSQL.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL,
            workflow TEXT NOT NULL,
            status TEXT NOT NULL,
            input TEXT,
            result TEXT,
            error TEXT,
            started REAL NOT NULL,
            updated REAL NOT NULL,
            closed REAL,
            last_seq INTEGER NOT NULL DEFAULT 0,
            wf_pending INTEGER NOT NULL DEFAULT 0,
            stuck INTEGER NOT NULL DEFAULT 0,
            stuck_reason TEXT,
            paused INTEGER NOT NULL DEFAULT 0,
            retrying INTEGER NOT NULL DEFAULT 0,
            parent_run_id TEXT,
            parent_id TEXT,
            parent_ref INTEGER,
            continued_from TEXT,
            reset_from TEXT,
            reset_to TEXT,
            is_current INTEGER NOT NULL DEFAULT 1,
            step TEXT,
            lineage TEXT NOT NULL
        )""",
        "CREATE INDEX runs_pending ON runs(updated) WHERE wf_pending = 1",
        "CREATE INDEX runs_by_id ON runs(workflow_id, started)",
        "CREATE UNIQUE INDEX runs_current ON runs(workflow_id) WHERE is_current = 1",
        "CREATE INDEX runs_by_status ON runs(status, updated)",
        "CREATE INDEX runs_by_update ON runs(updated)",
        "CREATE INDEX runs_by_parent ON runs(parent_run_id) WHERE parent_run_id IS NOT NULL",
        """CREATE TABLE events (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            time REAL NOT NULL,
            attrs TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID""",
        """CREATE TABLE activity_tasks (
            run_id TEXT NOT NULL,
            ref INTEGER NOT NULL,
            name TEXT NOT NULL,
            args TEXT NOT NULL,
            options TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            due REAL NOT NULL,
            scheduled REAL NOT NULL,
            owner TEXT,
            attempt_started REAL,
            attempt_deadline REAL,
            heartbeat_deadline REAL,
            close_deadline REAL,
            heartbeat_details TEXT,
            last_failure TEXT,
            PRIMARY KEY (run_id, ref)
        )""",
        "CREATE INDEX activity_ready ON activity_tasks(due) WHERE owner IS NULL",
        "CREATE INDEX activity_owned ON activity_tasks(owner) WHERE owner IS NOT NULL",
        """CREATE TABLE timers (
            run_id TEXT NOT NULL,
            ref INTEGER NOT NULL,
            fire_at REAL NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (run_id, ref)
        )""",
        "CREATE INDEX timers_due ON timers(fire_at)",
        """CREATE TABLE manual_tasks (
            task_id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            workflow_id TEXT NOT NULL,
            workflow TEXT NOT NULL,
            ref INTEGER NOT NULL,
            kind TEXT NOT NULL,
            assignee TEXT,
            instructions TEXT NOT NULL DEFAULT '',
            data TEXT,
            created REAL NOT NULL,
            deadline REAL,
            status TEXT NOT NULL,
            result TEXT,
            reason TEXT,
            completed_by TEXT,
            completed_at REAL
        )""",
        "CREATE INDEX manual_tasks_open ON manual_tasks(status, deadline)",
        "CREATE INDEX manual_tasks_run ON manual_tasks(run_id)",
        """CREATE TABLE workers (
            worker_id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            pid_start TEXT NOT NULL,
            started REAL NOT NULL,
            heartbeat REAL NOT NULL,
            lease_ttl REAL NOT NULL,
            concurrency INTEGER NOT NULL,
            info TEXT NOT NULL DEFAULT '{}'
        )""",
        """CREATE TABLE workflow_types (
            name TEXT PRIMARY KEY,
            registered REAL NOT NULL
        )""",
        """CREATE TABLE provider_log (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            worker_id TEXT,
            provider TEXT NOT NULL,
            version TEXT,
            action TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE rate_limits (
            name TEXT PRIMARY KEY,
            window_start REAL NOT NULL,
            started INTEGER NOT NULL
        )""",
    ],
    # 2: lighter indexes on hot rows. Every step updates its run's `updated`, so an index
    # on it costs a page per commit; the lists sort a few thousand rows without one, and
    # running attempts are few enough to find by owner without an index.
    [
        "DROP INDEX runs_by_update",
        "DROP INDEX runs_by_status",
        "CREATE INDEX runs_by_status ON runs(status)",
        "DROP INDEX activity_owned",
        # queue tables keyed by (run_id, ref) keep their rows in that one B-tree
        """CREATE TABLE activity_tasks_v2 (
            run_id TEXT NOT NULL,
            ref INTEGER NOT NULL,
            name TEXT NOT NULL,
            args TEXT NOT NULL,
            options TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            due REAL NOT NULL,
            scheduled REAL NOT NULL,
            owner TEXT,
            attempt_started REAL,
            attempt_deadline REAL,
            heartbeat_deadline REAL,
            close_deadline REAL,
            heartbeat_details TEXT,
            last_failure TEXT,
            PRIMARY KEY (run_id, ref)
        ) WITHOUT ROWID""",
        "INSERT INTO activity_tasks_v2 SELECT run_id, ref, name, args, options, attempt, due, "
        "scheduled, owner, attempt_started, attempt_deadline, heartbeat_deadline, "
        "close_deadline, heartbeat_details, last_failure FROM activity_tasks",
        "DROP TABLE activity_tasks",
        "ALTER TABLE activity_tasks_v2 RENAME TO activity_tasks",
        "CREATE INDEX activity_ready ON activity_tasks(due) WHERE owner IS NULL",
        """CREATE TABLE timers_v2 (
            run_id TEXT NOT NULL,
            ref INTEGER NOT NULL,
            fire_at REAL NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (run_id, ref)
        ) WITHOUT ROWID""",
        "INSERT INTO timers_v2 SELECT run_id, ref, fire_at, kind FROM timers",
        "DROP TABLE timers",
        "ALTER TABLE timers_v2 RENAME TO timers",
        "CREATE INDEX timers_due ON timers(fire_at)",
    ],
    # 3: at most one open run per workflow id, enforced by the database itself. Earlier
    # versions could leave two open runs of one id after concurrent starts on PostgreSQL;
    # of those, the current one (else the newest) stays open and the others are
    # terminated, with their queue rows withdrawn, before the index is built.
    [
        f"INSERT INTO events (run_id, seq, type, time, attrs) SELECT run_id, last_seq + 1, "
        f"'WorkflowTerminated', updated, '{_SECOND_OPEN_REASON}' FROM runs WHERE "
        f"{_SECOND_OPEN}",
        f"DELETE FROM activity_tasks WHERE run_id IN (SELECT run_id FROM runs WHERE "
        f"{_SECOND_OPEN})",
        f"DELETE FROM timers WHERE run_id IN (SELECT run_id FROM runs WHERE {_SECOND_OPEN})",
        f"UPDATE manual_tasks SET status = 'canceled', completed_at = (SELECT updated FROM "
        f"runs WHERE runs.run_id = manual_tasks.run_id) WHERE status = 'open' AND run_id IN "
        f"(SELECT run_id FROM runs WHERE {_SECOND_OPEN})",
        f"UPDATE runs SET status = 'terminated', closed = updated, last_seq = last_seq + 1, "
        f"wf_pending = 0, stuck = 0, retrying = 0, step = 'terminated', "
        f"error = '{_SECOND_OPEN_ERROR}' WHERE {_SECOND_OPEN}",
        "CREATE UNIQUE INDEX runs_open ON runs(workflow_id) WHERE status = 'running'",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def ddl_for(dialect: str) -> list[list[str]]:
    """``MIGRATIONS`` in the DDL of ``dialect``: SQLite's as written, PostgreSQL's translated.

    PostgreSQL gets DOUBLE PRECISION for REAL (so floats round-trip exactly), a BIGSERIAL
    key where SQLite has an ``INTEGER PRIMARY KEY`` rowid alias, and no ``WITHOUT ROWID``.
    """
    if dialect == "sqlite":
        return MIGRATIONS
    if dialect != "postgresql":
        raise ValueError(f"no DDL for dialect {dialect!r}")
    return [[_postgres(statement) for statement in step] for step in MIGRATIONS]


def _postgres(statement: str) -> str:
    statement = re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement)
    statement = re.sub(r"\bINTEGER PRIMARY KEY\b", "BIGSERIAL PRIMARY KEY", statement)
    return re.sub(r"\)\s*WITHOUT ROWID\s*$", ")", statement)
