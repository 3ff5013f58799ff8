"""Leases and fencing: a worker presumed dead cannot complete what it no longer owns."""

from __future__ import annotations

from pathlib import Path

import pytest

from onward import Engine, WorkflowFailed, attempts
from tests.helpers import wait_until

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")


@pytest.fixture
def db_path(any_db: Path | str) -> Path | str:
    """Both fencing tests on an SQLite file and on a PostgreSQL schema."""
    return any_db


def test_expired_lease_of_another_host_is_taken_over_and_its_result_fenced(
        make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    eng.start("three_steps", 1, id="f")
    now = eng.clock()
    with eng.store.write() as tx:
        # A worker on another machine took the run's first workflow task and attempt, then
        # went silent: its heartbeat is older than its lease.
        tx.execute("INSERT INTO workers (worker_id, host, pid, pid_start, started, heartbeat, "
                   "lease_ttl, concurrency) VALUES ('ghost', 'elsewhere:1', 1, '1', ?, ?, 2, 1)",
                   (now - 60, now - 60))
    eng.store.close()
    eng = make_engine(flows=[FLOWS])
    with eng.store.write() as tx:
        run = eng.runtime.find_run(tx, "f")
        eng.advancer.advance(tx, run, lambda name: "ghost")
    with eng.worker():
        assert eng.handle("f").result(timeout=10) == 4
    history = eng.show("f")["history"]
    lost = [e for e in history if e["type"] == "ActivityAttemptFailed"]
    assert lost[0]["attrs"]["error"]["type"] == "WorkerLost"
    assert "missed its lease" in lost[0]["attrs"]["error"]["message"]
    before = len(history)
    with eng.store.write() as tx:
        late = attempts.complete(tx, eng.show("f")["run_id"], lost[0]["attrs"]["ref"], "ghost",
                                 1, 99, ("late", "v0"), eng.clock())
    assert late is None
    assert len(eng.show("f")["history"]) == before


def test_a_live_worker_on_another_host_keeps_its_lease(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    eng.start("three_steps", 1, id="held")
    now = eng.clock()
    with eng.store.write() as tx:
        tx.execute("INSERT INTO workers (worker_id, host, pid, pid_start, started, heartbeat, "
                   "lease_ttl, concurrency) VALUES ('busy', 'elsewhere:1', 1, '1', ?, ?, 3600, 1)",
                   (now, now))
        run = eng.runtime.find_run(tx, "held")
        eng.advancer.advance(tx, run, lambda name: "busy")
    with eng.worker() as worker:
        wait_until(lambda: worker.ticks > 8, message="several turns of the local worker")
        pending = eng.show("held")["pending"]["activities"]
        assert pending[0]["worker"] == "busy" and pending[0]["running"]
    assert "ActivityAttemptFailed" not in [e["type"] for e in eng.show("held")["history"]]


def test_a_dead_worker_holding_several_attempts_of_one_run(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    eng.start("fan_out_once", 3, id="many")
    now = eng.clock()
    with eng.store.write() as tx:
        tx.execute("INSERT INTO workers (worker_id, host, pid, pid_start, started, heartbeat, "
                   "lease_ttl, concurrency) VALUES ('gone', 'elsewhere:1', 1, '1', ?, ?, 2, 3)",
                   (now - 60, now - 60))
        run = eng.runtime.find_run(tx, "many")
        eng.advancer.advance(tx, run, lambda name: "gone")
    with eng.worker():
        with pytest.raises(WorkflowFailed):
            eng.handle("many").result(timeout=10)
    history = eng.show("many")["history"]
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    assert sum(e["type"] == "ActivityFailed" for e in history) == 3
    with eng.store.read() as tx:
        assert tx.scalar("SELECT last_seq FROM runs WHERE workflow_id = 'many'") == len(history)
