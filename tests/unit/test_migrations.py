"""Schema migrations: an older database is upgraded in place, with its runs intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apsw
import pytest

from onward import Engine
from onward.errors import StoreError
from onward.store.schema import APPLICATION_ID, SCHEMA_VERSION
from onward.store.sqlite import SqliteStore

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")


def make_v1_database(path: Path) -> None:
    """A database as the first release wrote it, with one run waiting for its first task."""
    conn = apsw.Connection(str(path))
    with conn:
        for statement in SqliteStore.migrations()[0]:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute("PRAGMA user_version=1")
        conn.execute(
            "INSERT INTO runs (run_id, workflow_id, workflow, status, input, started, updated, "
            "last_seq, wf_pending, lineage) VALUES ('r1', 'old', 'three_steps', 'running', "
            "'[1]', 1.0, 1.0, 1, 1, 'r1')")
        conn.execute("INSERT INTO events (run_id, seq, type, time, attrs) VALUES "
                     "('r1', 1, 'WorkflowStarted', 1.0, ?)",
                     (json.dumps({"workflow": "three_steps", "input": [1]}),))
        conn.execute("INSERT INTO timers (run_id, ref, fire_at, kind) VALUES "
                     "('r1', 99, 1e12, 'timer')")
    conn.close()


def test_a_version_1_database_is_upgraded_and_its_runs_finish(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    make_v1_database(db)
    eng = Engine(db, flows=[FLOWS])
    try:
        with eng.store.read() as tx:
            assert tx.scalar("PRAGMA user_version") == SCHEMA_VERSION
            indexes = {r[0] for r in tx.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index'")}
            assert tx.scalar("SELECT count(*) FROM timers") == 1
        assert "activity_owned" not in indexes and "runs_by_update" not in indexes
        assert {"activity_ready", "timers_due", "runs_by_status"} <= indexes
        with eng.worker():
            assert eng.handle("old").result(timeout=10) == 4
    finally:
        eng.close()


RUN_INSERT = ("INSERT INTO runs (run_id, workflow_id, workflow, status, input, started, updated, "
              "last_seq, wf_pending, is_current, lineage) VALUES (?, ?, 'three_steps', ?, "
              "'[1]', ?, ?, 1, ?, ?, ?)")
EVENT_INSERT = "INSERT INTO events (run_id, seq, type, time, attrs) VALUES (?, 1, ?, ?, ?)"


def _two_open_runs(execute: Any) -> None:
    """Runs as concurrent starts on PostgreSQL could leave them before schema version 3:
    id ``dup`` has two open runs (the current one and an older one holding queue rows),
    id ``stale`` two open non-current runs beside a closed current one."""
    rows = [("old", "dup", "running", 1.0, 1, 0), ("new", "dup", "running", 2.0, 1, 1),
            ("s1", "stale", "running", 1.0, 1, 0), ("s2", "stale", "running", 2.0, 1, 0),
            ("s3", "stale", "completed", 3.0, 0, 1)]
    for run_id, wf_id, status, started, pending, current in rows:
        execute(RUN_INSERT, (run_id, wf_id, status, started, started, pending, current, run_id))
        execute(EVENT_INSERT, (run_id, "WorkflowStarted", started,
                               json.dumps({"workflow": "three_steps", "input": [1]})))
    execute("INSERT INTO activity_tasks (run_id, ref, name, args, options, attempt, due, "
            "scheduled) VALUES ('old', 2, 'step', '[]', '{}', 1, 1.0, 1.0)")
    execute("INSERT INTO timers (run_id, ref, fire_at, kind) VALUES ('old', 3, 1e12, 'timer')")
    execute("INSERT INTO manual_tasks (task_id, run_id, workflow_id, workflow, ref, kind, "
            "created, status) VALUES ('t1', 'old', 'dup', 'three_steps', 4, 'ok', 1.0, 'open')")


def _check_second_open_runs_closed(eng: Engine) -> None:
    with eng.store.read() as tx:
        status = dict(tx.execute("SELECT run_id, status FROM runs"))
        assert status == {"old": "terminated", "new": "running", "s1": "terminated",
                          "s2": "running", "s3": "completed"}
        assert tx.scalar("SELECT count(*) FROM activity_tasks") == 0
        assert tx.scalar("SELECT count(*) FROM timers") == 0
        assert tx.scalar("SELECT status FROM manual_tasks") == "canceled"
        last = tx.one("SELECT seq, type FROM events WHERE run_id = 'old' ORDER BY seq DESC")
        assert last == (2, "WorkflowTerminated")
        assert tx.scalar("SELECT last_seq FROM runs WHERE run_id = 'old'") == 2
    assert eng.show("dup")["run_id"] == "new"
    with pytest.raises((apsw.ConstraintError, StoreError), match="runs_open|runs.workflow_id"), \
            eng.store.write() as tx:
        tx.execute(RUN_INSERT, ("third", "dup", "running", 5.0, 5.0, 1, 0, "third"))


def test_a_version_2_sqlite_database_with_two_open_runs_of_one_id_keeps_one(
        tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    conn = apsw.Connection(str(db))
    with conn:
        for step in SqliteStore.migrations()[:2]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute("PRAGMA user_version=2")
        _two_open_runs(conn.execute)
    conn.close()
    eng = Engine(db, flows=[FLOWS])
    try:
        with eng.store.read() as tx:
            assert tx.scalar("PRAGMA user_version") == SCHEMA_VERSION
        _check_second_open_runs_closed(eng)
    finally:
        eng.close()


@pytest.mark.postgres
def test_a_version_2_postgres_schema_with_two_open_runs_of_one_id_keeps_one(
        pg_url: str) -> None:
    import psycopg

    from onward.store.postgres import PostgresStore
    schema = pg_url.split("search_path%3D", 1)[1].split("&", 1)[0]
    with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute("CREATE TABLE onward_schema (version INTEGER NOT NULL, "
                     "application BIGINT NOT NULL)")
        conn.execute("INSERT INTO onward_schema VALUES (2, %s)", (APPLICATION_ID,))
        for step in PostgresStore.migrations()[:2]:
            for statement in step:
                conn.execute(statement)
        _two_open_runs(lambda sql, params=(): conn.execute(sql.replace("?", "%s"), params))
    eng = Engine(pg_url, flows=[FLOWS])
    try:
        _check_second_open_runs_closed(eng)
    finally:
        eng.close()
