"""Schema migrations: an older database is upgraded in place, with its runs intact."""

from __future__ import annotations

import json
from pathlib import Path

import apsw

from engine import Engine
from engine.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")


def make_v1_database(path: Path) -> None:
    """A database as the first release wrote it, with one run waiting for its first task."""
    conn = apsw.Connection(str(path))
    with conn:
        for statement in MIGRATIONS[0]:
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
