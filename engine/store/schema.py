"""The schema, as numbered migrations applied in order inside one transaction."""

from __future__ import annotations

from dataclasses import dataclass

APPLICATION_ID = 0x4F4E5744  # "ONWD": marks a SQLite file as an Onward database


@dataclass(frozen=True)
class SchemaTypes:
    """The words of DDL in which backends differ; each backend states its own."""

    real: str
    """A floating-point column that round-trips a Python float exactly."""
    rowid_key: str
    """An integer primary key the database assigns on insert."""
    clustered: str
    """Written after a table's closing parenthesis: keep its rows in its primary key's
    B-tree (SQLite's `` WITHOUT ROWID``), or nothing where tables are heaps anyway."""
    binary_text: str = "TEXT"
    """A text column that compares and sorts by code point (PostgreSQL: the C collation),
    so range queries on keywords agree across backends."""
    binary_collate: str = ""
    """Written after a text expression to compare it by code point (PostgreSQL:
    `` COLLATE "C"``; SQLite compares so already)."""


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


# Each entry upgrades the schema from version i to i + 1, written once for every backend:
# the few words in which their DDL differs come from the backend's ``SchemaTypes``.
def migrations(t: SchemaTypes) -> list[list[str]]:
    """The migrations in the DDL of the backend whose words are ``t``; entry i upgrades
    the schema from version i to i + 1."""
    return [
        [
            f"""CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL,
            workflow TEXT NOT NULL,
            status TEXT NOT NULL,
            input TEXT,
            result TEXT,
            error TEXT,
            started {t.real} NOT NULL,
            updated {t.real} NOT NULL,
            closed {t.real},
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
            f"""CREATE TABLE events (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            time {t.real} NOT NULL,
            attrs TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        ){t.clustered}""",
            f"""CREATE TABLE activity_tasks (
            run_id TEXT NOT NULL,
            ref INTEGER NOT NULL,
            name TEXT NOT NULL,
            args TEXT NOT NULL,
            options TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            due {t.real} NOT NULL,
            scheduled {t.real} NOT NULL,
            owner TEXT,
            attempt_started {t.real},
            attempt_deadline {t.real},
            heartbeat_deadline {t.real},
            close_deadline {t.real},
            heartbeat_details TEXT,
            last_failure TEXT,
            PRIMARY KEY (run_id, ref)
        )""",
            "CREATE INDEX activity_ready ON activity_tasks(due) WHERE owner IS NULL",
            "CREATE INDEX activity_owned ON activity_tasks(owner) WHERE owner IS NOT NULL",
            f"""CREATE TABLE timers (
            run_id TEXT NOT NULL,
            ref INTEGER NOT NULL,
            fire_at {t.real} NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (run_id, ref)
        )""",
            "CREATE INDEX timers_due ON timers(fire_at)",
            f"""CREATE TABLE manual_tasks (
            task_id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            workflow_id TEXT NOT NULL,
            workflow TEXT NOT NULL,
            ref INTEGER NOT NULL,
            kind TEXT NOT NULL,
            assignee TEXT,
            instructions TEXT NOT NULL DEFAULT '',
            data TEXT,
            created {t.real} NOT NULL,
            deadline {t.real},
            status TEXT NOT NULL,
            result TEXT,
            reason TEXT,
            completed_by TEXT,
            completed_at {t.real}
        )""",
            "CREATE INDEX manual_tasks_open ON manual_tasks(status, deadline)",
            "CREATE INDEX manual_tasks_run ON manual_tasks(run_id)",
            f"""CREATE TABLE workers (
            worker_id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            pid_start TEXT NOT NULL,
            started {t.real} NOT NULL,
            heartbeat {t.real} NOT NULL,
            lease_ttl {t.real} NOT NULL,
            concurrency INTEGER NOT NULL,
            info TEXT NOT NULL DEFAULT '{{}}'
        )""",
            f"""CREATE TABLE workflow_types (
            name TEXT PRIMARY KEY,
            registered {t.real} NOT NULL
        )""",
            f"""CREATE TABLE provider_log (
            id {t.rowid_key},
            time {t.real} NOT NULL,
            worker_id TEXT,
            provider TEXT NOT NULL,
            version TEXT,
            action TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT ''
        )""",
            f"""CREATE TABLE rate_limits (
            name TEXT PRIMARY KEY,
            window_start {t.real} NOT NULL,
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
            f"""CREATE TABLE activity_tasks_v2 (
            run_id TEXT NOT NULL,
            ref INTEGER NOT NULL,
            name TEXT NOT NULL,
            args TEXT NOT NULL,
            options TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            due {t.real} NOT NULL,
            scheduled {t.real} NOT NULL,
            owner TEXT,
            attempt_started {t.real},
            attempt_deadline {t.real},
            heartbeat_deadline {t.real},
            close_deadline {t.real},
            heartbeat_details TEXT,
            last_failure TEXT,
            PRIMARY KEY (run_id, ref)
        ){t.clustered}""",
            "INSERT INTO activity_tasks_v2 SELECT run_id, ref, name, args, options, attempt, due, "
            "scheduled, owner, attempt_started, attempt_deadline, heartbeat_deadline, "
            "close_deadline, heartbeat_details, last_failure FROM activity_tasks",
            "DROP TABLE activity_tasks",
            "ALTER TABLE activity_tasks_v2 RENAME TO activity_tasks",
            "CREATE INDEX activity_ready ON activity_tasks(due) WHERE owner IS NULL",
            f"""CREATE TABLE timers_v2 (
            run_id TEXT NOT NULL,
            ref INTEGER NOT NULL,
            fire_at {t.real} NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (run_id, ref)
        ){t.clustered}""",
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
        # 4: updates. A request is stored (durable) before a worker validates it against the
        # run's state; accepted, it becomes UpdateAccepted in history and its row follows the
        # handler to UpdateCompleted; rejected, only the row records why. ``updates_pending``
        # tells a workflow task that requests are waiting, without a query per task.
        [
            "ALTER TABLE runs ADD COLUMN updates_pending INTEGER NOT NULL DEFAULT 0",
            f"""CREATE TABLE updates (
            run_id TEXT NOT NULL,
            update_id TEXT NOT NULL,
            workflow_id TEXT NOT NULL,
            name TEXT NOT NULL,
            args TEXT NOT NULL,
            status TEXT NOT NULL,
            result TEXT,
            error TEXT,
            seq INTEGER,
            created {t.real} NOT NULL,
            finished {t.real},
            PRIMARY KEY (run_id, update_id)
        ){t.clustered}""",
            "CREATE INDEX updates_open ON updates(run_id) WHERE status = 'pending'",
        ],
        # 5: activity cancellation. A running attempt the workflow code canceled keeps its
        # row, marked with how it was canceled ('try', 'wait' or 'abandon'), until it ends:
        # its worker reads the mark and tells the attempt to stop ('abandon': never tells).
        [
            "ALTER TABLE activity_tasks ADD COLUMN cancel TEXT",
        ],
        # 6: visibility. Each search attribute name has one type (``search_attr_types``);
        # values are rows of ``search_attrs`` (keywords in ``kw``, numbers, bools and
        # datetimes in ``num``), indexed by name and value; ``run_meta`` keeps a run's
        # attributes and memo as given, for ``show``. Built-in fields a query may name get
        # indexes too (status with workflow type, start and close times); none leads with
        # the workflow type, which would take the workers' due-task query (workflow IN ...)
        # away from its partial index runs_pending.
        [
            """CREATE TABLE search_attr_types (
            name TEXT PRIMARY KEY,
            type TEXT NOT NULL
        )""",
            f"""CREATE TABLE search_attrs (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            pos INTEGER NOT NULL,
            kw {t.binary_text},
            num {t.real},
            PRIMARY KEY (run_id, name, pos)
        ){t.clustered}""",
            "CREATE INDEX search_attrs_kw ON search_attrs(name, kw)",
            "CREATE INDEX search_attrs_num ON search_attrs(name, num)",
            f"""CREATE TABLE run_meta (
            run_id TEXT PRIMARY KEY,
            search_attributes TEXT NOT NULL,
            memo TEXT
        ){t.clustered}""",
            "CREATE INDEX runs_by_status_type ON runs(status, workflow)",
            "CREATE INDEX runs_by_start ON runs(started)",
            "CREATE INDEX runs_by_close ON runs(closed)",
            # few runs are stuck, paused or retrying at once: these stay small
            "CREATE INDEX runs_stuck ON runs(status) WHERE stuck = 1",
            "CREATE INDEX runs_paused ON runs(status) WHERE paused = 1",
            "CREATE INDEX runs_retrying ON runs(status) WHERE retrying = 1",
        ],
        # 7: schedules. A schedule's row holds its spec, policies, counts, the fire it has
        # buffered (overlap buffer_one) and its next fire (``next_fire`` nominal, ``due``
        # with jitter); ``schedule_runs`` maps each fire time to the run it started (whose
        # workflow id, ``{schedule}-{fire time}``, makes a second start of it impossible).
        [
            f"""CREATE TABLE schedules (
            schedule_id TEXT PRIMARY KEY,
            workflow TEXT NOT NULL,
            args TEXT NOT NULL,
            spec TEXT NOT NULL,
            tz TEXT NOT NULL,
            overlap TEXT NOT NULL,
            catchup {t.real} NOT NULL,
            jitter {t.real} NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            note TEXT,
            created {t.real} NOT NULL,
            fired INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            missed INTEGER NOT NULL DEFAULT 0,
            buffered {t.real},
            last_workflow_id TEXT,
            next_fire {t.real},
            due {t.real}
        )""",
            "CREATE INDEX schedules_due ON schedules(due) WHERE paused = 0",
            f"""CREATE TABLE schedule_runs (
            schedule_id TEXT NOT NULL,
            fire_time {t.real} NOT NULL,
            workflow_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            started {t.real} NOT NULL,
            PRIMARY KEY (schedule_id, workflow_id)
        ){t.clustered}""",
        ],
    ]


SCHEMA_VERSION = len(migrations(SchemaTypes("", "", "")))
