"""The PostgreSQL store: the narrow interface, the engine on top of it, many workers, migrate.

Every test runs on a fresh schema (``tests.pg.pg_url``) and is skipped with a clear
message where no PostgreSQL server is reachable.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from pathlib import Path

import pytest

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed (pip install 'onward[postgres]'); skipping")

from onward import Engine, WorkflowFailed  # noqa: E402
from onward.errors import BadInput, DatabaseCorrupt, DatabaseMissing, StoreError  # noqa: E402
from onward.migrate import migrate  # noqa: E402
from onward.store.postgres import PostgresStore, translate  # noqa: E402
from onward.store.schema import SCHEMA_VERSION  # noqa: E402
from tests.helpers import REPO, WorkerProcess, env_for, executions, wait_until  # noqa: E402
from tests.pg import BASE_URL, drop_schema, pg_url, url_for  # noqa: E402, F401 - a fixture

pytestmark = pytest.mark.postgres

FLOWS = str(REPO / "tests" / "flows" / "basic.py")


@pytest.fixture
def store(pg_url: str) -> PostgresStore:  # noqa: F811
    s = PostgresStore(pg_url)
    yield s
    s.close()


@pytest.fixture
def eng(pg_url: str) -> Engine:  # noqa: F811
    e = Engine(pg_url, flows=[FLOWS])
    yield e
    e.close()


def types(eng: Engine, ident: str) -> list[str]:
    return [e["type"] for e in eng.show(ident)["history"]]


# -- the store interface --------------------------------------------------------------------
def test_placeholders_are_translated_once_and_nothing_else_is_rewritten() -> None:
    assert translate("SELECT a FROM t WHERE x = ? AND y LIKE '%'")[0] == \
        "SELECT a FROM t WHERE x = %s AND y LIKE '%%'"
    claim = ("SELECT a.run_id FROM activity_tasks a JOIN runs r ON r.run_id = a.run_id "
             "WHERE a.owner IS NULL ORDER BY a.due LIMIT ? FOR UPDATE SKIP LOCKED")
    assert translate(claim)[0] == claim.replace("?", "%s")  # locking is stated, not guessed
    plain = "SELECT run_id FROM runs WHERE wf_pending = 1 LIMIT ? FOR UPDATE SKIP LOCKED"
    assert translate(plain)[0].endswith("FOR UPDATE SKIP LOCKED")
    assert translate("UPDATE runs SET x = ?")[1] is False
    assert translate(plain) is translate(plain)  # cached


def test_rows_are_tuples_floats_round_trip_and_savepoints_roll_back(store: PostgresStore
                                                                     ) -> None:
    before = store.commits
    value = 1732483200.123456789
    with store.write() as tx:
        tx.execute("INSERT INTO timers (run_id, ref, fire_at, kind) VALUES (?,?,?,?)",
                   ("r", 1, value, "timer"))
        tx.executemany("INSERT INTO workflow_types (name, registered) VALUES (?, ?)",
                       [("a", 0.1), ("b", 1e-300)])
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.execute("DELETE FROM timers")
            raise RuntimeError("undo the delete")
        assert tx.one("SELECT run_id, ref, fire_at FROM timers") == ("r", 1, value)
    assert store.commits == before + 1
    with store.read() as tx:
        assert tx.execute("SELECT name, registered FROM workflow_types ORDER BY name") == \
            [("a", 0.1), ("b", 1e-300)]
        assert tx.scalar("SELECT count(*) FROM timers WHERE fire_at = ?", (value,)) == 1
        assert tx.for_update == "" and tx.lock_rows_of("a", skip_locked=True) == ""
    with pytest.raises(ValueError), store.write() as tx:
        tx.execute("DELETE FROM timers")
        raise ValueError("roll back everything")
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM timers") == 1
    assert store.check_integrity() == "ok"


def test_reads_see_one_snapshot_and_cannot_write(store: PostgresStore, pg_url: str  # noqa: F811
                                                 ) -> None:
    other = PostgresStore(pg_url)
    try:
        with store.read() as tx:
            assert tx.scalar("SELECT count(*) FROM workflow_types") == 0
            with other.write() as wtx:
                wtx.execute("INSERT INTO workflow_types VALUES ('x', 1.0)")
            assert tx.scalar("SELECT count(*) FROM workflow_types") == 0
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                tx.execute("DELETE FROM workflow_types")
        with store.read() as tx:
            assert tx.scalar("SELECT count(*) FROM workflow_types") == 1
    finally:
        other.close()


def test_other_processes_commits_change_the_token_and_wake_waiters(
        store: PostgresStore, pg_url: str) -> None:  # noqa: F811
    other = PostgresStore(pg_url)
    try:
        token = store.change_token()
        with other.read() as tx:  # a read notifies nobody
            tx.execute("SELECT 1")
        with other.write() as tx:  # nor does a write that changed nothing
            tx.execute("DELETE FROM timers WHERE run_id = 'none'")
        time.sleep(0.2)
        assert store.change_token() == token

        def later() -> None:
            time.sleep(0.3)
            with other.write() as tx:
                tx.execute("INSERT INTO workflow_types VALUES ('y', 2.0)")

        thread = threading.Thread(target=later)
        started = time.monotonic()
        thread.start()
        store.wait_for_change(10)
        waited = time.monotonic() - started
        thread.join()
        assert 0.25 < waited < 2.0, waited
        assert store.change_token() != token
    finally:
        other.close()


def test_a_sessions_token_ignores_its_own_commits(store: PostgresStore) -> None:
    session, other = store.session(), store.session()
    try:
        token = session.change_token()
        with session.write() as tx:
            tx.execute("INSERT INTO workflow_types VALUES ('mine', 1.0)")
        with session.read() as tx:
            assert tx.scalar("SELECT count(*) FROM workflow_types") == 1
        time.sleep(0.2)
        assert session.change_token() == token
        with other.write() as tx:
            tx.execute("INSERT INTO workflow_types VALUES ('theirs', 1.0)")
        wait_until(lambda: session.change_token() != token, timeout=5,
                   message="the other session's commit is news")
    finally:
        session.close()
        other.close()


def test_concurrent_starters_set_up_one_schema(pg_url: str) -> None:  # noqa: F811
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(PostgresStore(pg_url))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert not errors and len(stores) == 6
    schema = pg_url.split("%3D")[1].split("&")[0]
    with psycopg.connect(BASE_URL) as conn:
        assert conn.execute(f'SELECT version FROM "{schema}".onward_schema').fetchall() == \
            [(SCHEMA_VERSION,)]


def test_missing_server_database_or_schema_is_a_clear_error(pg_url: str) -> None:  # noqa: F811
    with pytest.raises(DatabaseMissing, match="server is not reachable.*start it"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    with pytest.raises(DatabaseMissing, match="database onward_nope does not exist"):
        PostgresStore("postgresql://postgres@127.0.0.1:5432/onward_nope")
    with pytest.raises(DatabaseMissing, match="holds no Onward database"):
        PostgresStore(pg_url, create=False)
    with pytest.raises(BadInput, match="not a PostgreSQL URL"):
        PostgresStore("postgresql://x/y?nosuchoption=1")


def test_foreign_or_newer_schemas_are_refused(pg_url: str) -> None:  # noqa: F811
    schema = pg_url.split("application_name=")[1]
    other = schema + "_x"
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{other}"')
        admin.execute(f'CREATE TABLE "{other}".runs (id int)')
    try:
        with pytest.raises(DatabaseCorrupt, match="not an Onward database"):
            PostgresStore(url_for(other))
    finally:
        drop_schema(other)
    PostgresStore(pg_url).close()
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f'UPDATE "{schema}".onward_schema SET version = 99')
    with pytest.raises(StoreError, match="newer than this Onward"):
        PostgresStore(pg_url)


def test_an_unquoted_mixed_case_schema_is_folded_like_postgresql_does(
        pg_url: str) -> None:  # noqa: F811 - only for its skip when there is no server
    schema = f"Onward_Test_{uuid.uuid4().hex[:8]}"
    try:
        store = PostgresStore(url_for(schema))
        assert store.schema == schema.lower()
        store.close()
    finally:
        drop_schema(schema.lower())


def test_a_lost_connection_is_replaced_and_a_dead_server_is_a_store_error(
        store: PostgresStore, pg_url: str) -> None:  # noqa: F811
    schema = pg_url.split("application_name=")[1]
    with store.write() as tx:
        tx.execute("INSERT INTO workflow_types VALUES ('z', 1.0)")
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = %s", (schema,))
    with store.read() as tx:  # the pool's dead connection is swapped for a new one
        assert tx.scalar("SELECT count(*) FROM workflow_types") == 1
    wait_until(lambda: store.change_token() is not None and store.changes.listening, timeout=10,
               message="the listener reconnects")
    with pytest.raises(StoreError, match="terminat|closed the connection"), \
            store.write() as tx:
        tx.execute("SELECT 1")  # (BEGIN is queued with it: now the backend is in a transaction)
        with psycopg.connect(BASE_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = %s AND state LIKE 'idle in%%'", (schema,))
        tx.execute("SELECT 1")
    with store.write() as tx:  # and the next transaction works again
        assert tx.scalar("SELECT count(*) FROM workflow_types") == 1


# -- the engine on PostgreSQL ---------------------------------------------------------------
def test_engine_basics_on_postgres(eng: Engine, log: Path) -> None:
    with eng.worker():
        assert eng.start("three_steps", 1, id="w").result(timeout=10) == 4
        assert eng.start("retrying", 2, id="r").result(timeout=10) == "ok after 3"
        assert eng.start("sleeper", 0.3, id="nap").result(timeout=10) == "slept True"
        sig = eng.start("signals", 2, id="sig")
        eng.signal("sig", "item", {"n": 1})
        eng.signal("sig", "item", [2])
        assert sig.result(timeout=10) == [{"n": 1}, [2]]
        task_run = eng.start("approval", id="ask")
        task = wait_until(eng.tasks, timeout=10, message="a manual task")[0]
        assert task["assignee"] == "alice" and task["data"] == {"x": 1}
        eng.complete_task(task["task_id"], {"ok": True}, by="bob")
        with pytest.raises(BadInput, match="already completed by bob"):
            eng.complete_task(task["task_id"], {"ok": False})
        assert task_run.result(timeout=10) == {"ok": True}
        saga = eng.start("saga", id="saga")
        wait_until(lambda: "TimerStarted" in types(eng, "saga"), timeout=10,
                   message="saga sleeping")
        eng.cancel("saga")
        with pytest.raises(WorkflowFailed) as failed:
            saga.result(timeout=10)
        assert failed.value.status == "canceled"
        assert eng.start("parent", False, id="p").result(timeout=10) == "child done"
        assert eng.start("parent", True, id="pf").result(timeout=10) == \
            "child failed: ChildWorkflowError"
        assert eng.start("looper", 0, 100, id="loop").result(timeout=30) == 100
    labels = collections.Counter(str(e.get("label")) for e in executions(log))
    assert labels["a"] == labels["b"] == labels["c"] == 1 and labels["compensate"] == 1
    assert types(eng, "w") == ["WorkflowStarted"] + ["ActivityScheduled",
                                                     "ActivityCompleted"] * 3 + [
        "WorkflowCompleted"]
    assert [e["attrs"]["attempt"] for e in eng.show("r")["history"]
            if e["type"] == "ActivityAttemptFailed"] == [1, 2]
    shown = eng.show("loop")
    assert len(shown["runs"]) == 101 and len(shown["history"]) == 2
    assert eng.show("p")["children"][0]["status"] == "completed"
    assert eng.counts()["completed"] == 9  # eight runs and the child of p


def test_stuck_run_is_held_and_listed(eng: Engine) -> None:
    with eng.worker():
        eng.start("buggy", id="bug")
        wait_until(lambda: eng.show("bug")["stuck"], timeout=10, message="run held stuck")
    shown = eng.show("bug")
    assert shown["status"] == "running" and "KeyError" in shown["stuck_reason"]
    assert [r["id"] for r in eng.list("stuck")] == ["bug"]
    assert types(eng, "bug")[-1] == "WorkflowTaskFailed"


def test_two_worker_processes_share_the_database(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    env = env_for(ONWARD_TEST_LOG=str(tmp_path / "log.jsonl"), ONWARD_TEST_STEP_DELAY="0.01")
    client = Engine(pg_url, flows=[FLOWS])
    try:
        ids = [f"m{i}" for i in range(30)]
        with WorkerProcess(pg_url, flows=[FLOWS], env=env, concurrency=4) as a, \
                WorkerProcess(pg_url, flows=[FLOWS], env=env, concurrency=4) as b:
            for i, ident in enumerate(ids):
                client.start("three_steps" if i % 2 else "fan_out", i if i % 2 else 3,
                             id=ident)
            for i, ident in enumerate(ids):
                expected = i + 3 if i % 2 else [1, 2, 3]
                assert client.handle(ident).result(timeout=30) == expected, ident
            pids = {a.pid, b.pid}
        lines = executions(Path(env["ONWARD_TEST_LOG"]))
        keys = collections.Counter(line["key"] for line in lines)
        assert len(keys) == 15 * 3 + 15 * 3 and set(keys.values()) == {1}
        assert {line["pid"] for line in lines} == pids, "both workers should have worked"
        for ident in ids:
            completed = [e for e in client.show(ident)["history"]
                         if e["type"] == "ActivityCompleted"]
            assert len(completed) == 3
    finally:
        client.close()


def test_kill_9_worker_is_taken_over_at_once(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    gates = tmp_path / "gates"
    gates.mkdir()
    env = env_for(ONWARD_TEST_LOG=str(tmp_path / "log.jsonl"), ONWARD_TEST_GATES=str(gates))
    client = Engine(pg_url, flows=[FLOWS])
    try:
        (gates / "gate2").touch()
        first = WorkerProcess(pg_url, flows=[FLOWS], env=env).wait_ready()
        client.start("gated", 1, id="g")
        wait_until(lambda: (gates / "gate2.entered").exists(), timeout=20,
                   message="second step running")
        first.kill()
        (gates / "gate2").unlink()
        started = time.monotonic()
        with WorkerProcess(pg_url, flows=[FLOWS], env=env):
            assert client.handle("g").result(timeout=30) == 4
        assert time.monotonic() - started < 15  # a dead local worker is noticed at once
        labels = [line["label"] for line in executions(Path(env["ONWARD_TEST_LOG"]))]
        assert sorted(labels) == ["gate1", "gate2", "gate3"]
        lost = [e for e in client.show("g")["history"] if e["type"] == "ActivityAttemptFailed"]
        assert len(lost) == 1 and lost[0]["attrs"]["error"]["type"] == "WorkerLost"
    finally:
        client.close()


def test_many_workers_fire_each_timer_once(pg_url: str) -> None:  # noqa: F811
    engines = [Engine(pg_url, flows=[FLOWS]) for _ in range(3)]
    try:
        with engines[0].worker(), engines[1].worker(), engines[2].worker():
            handles = [engines[0].start("sleeper", 0.05, id=f"nap{i}") for i in range(20)]
            for handle in handles:
                assert handle.result(timeout=20) == "slept True"
        fired = {h.id: types(engines[0], h.id).count("TimerFired") for h in handles}
        assert set(fired.values()) == {1}, fired
    finally:
        for e in engines:
            e.close()


# -- moving up: onward migrate ----------------------------------------------------------------
def test_migrate_moves_runs_in_flight_and_a_postgres_worker_finishes_them(
        tmp_path: Path, pg_url: str, log: Path) -> None:  # noqa: F811
    source = tmp_path / "small.db"
    local = Engine(source, flows=[FLOWS])
    with local.worker():
        local.start("three_steps", 1, id="done").result(timeout=10)
        local.start("approval", id="ask")
        local.start("sleeper", 0.5, id="nap")
        local.start("signals", 1, id="sig")
        local.start("looper", 0, 3, id="loop").result(timeout=10)
        wait_until(lambda: local.tasks() and "TimerStarted" in types(local, "nap"),
                   timeout=10, message="runs waiting")
    local.signal("sig", "item", "early")
    # A worker killed while it ran an attempt: the copy hands its lease back.
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "gate2").touch()
    crashed = WorkerProcess(source, flows=[FLOWS], env=env_for(
        ONWARD_TEST_LOG=str(log), ONWARD_TEST_GATES=str(gates))).wait_ready()
    local.start("gated", 1, id="cut")
    wait_until(lambda: (gates / "gate2.entered").exists(), timeout=20,
               message="an attempt in flight")
    crashed.kill()
    (gates / "gate2").unlink()
    before = {r["id"]: r["status"] for r in local.list(all_runs=True)}
    local.close()

    report = migrate(source, pg_url)
    assert "every table verified" in report and "handed back 1 attempt" in report
    assert all(f" {table} " in report for table in ("runs", "events", "activity_tasks"))

    eng = Engine(pg_url, flows=[FLOWS])
    try:
        assert {r["id"]: r["status"] for r in eng.list(all_runs=True)} == before
        with eng.worker():
            task = eng.tasks()[0]
            eng.complete_task(task["task_id"], "yes")
            assert eng.handle("ask").result(timeout=10) == "yes"
            assert eng.handle("nap").result(timeout=10) == "slept True"
            assert eng.handle("sig").result(timeout=10) == ["early"]
            assert eng.handle("cut").result(timeout=10) == 4
        lost = [e for e in eng.show("cut")["history"] if e["type"] == "ActivityAttemptFailed"]
        assert [e["attrs"]["error"]["type"] for e in lost] == ["WorkerLost"]
        assert eng.handle("done").result(timeout=1) == 4
        assert eng.start("three_steps", 5).result is not None
    finally:
        eng.close()
    labels = collections.Counter(str(e.get("label")) for e in executions(log))
    assert labels["a"] == 1 and labels["after-sleep"] == 1
    assert labels["gate1"] == labels["gate2"] == labels["gate3"] == 1

    with pytest.raises(BadInput, match="not empty"):
        migrate(source, pg_url)


def test_migrate_refuses_while_a_worker_is_attached(tmp_path: Path, pg_url: str  # noqa: F811
                                                    ) -> None:
    source = tmp_path / "busy.db"
    Engine(source, flows=[FLOWS]).close()
    with WorkerProcess(source, flows=[FLOWS]):
        with pytest.raises(BadInput, match="worker.*attached"):
            migrate(source, pg_url)
    with pytest.raises(BadInput, match="no database"):
        migrate(tmp_path / "missing.db", pg_url)
    with pytest.raises(BadInput, match="postgresql://"):
        migrate(source, str(tmp_path / "other.db"))


# -- operator commands that lose a deadlock ---------------------------------------------------
def _waiting_on_a_lock(schema_url: str) -> bool:
    application = schema_url.rsplit("application_name=", 1)[-1]
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        return bool(conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND "
            "wait_event_type = 'Lock'", (application,)).fetchone())


def test_an_operator_command_that_loses_a_deadlock_is_done_again_not_failed(
        pg_url: str) -> None:  # noqa: F811
    """A worker locks a run's queue rows, then its run row; a terminate locks the run row,
    then withdraws those queue rows. PostgreSQL breaks the cycle by rolling one back; the
    operator's command is then done again, not reported as a failure."""
    eng = Engine(pg_url, flows=[FLOWS])
    try:
        with eng.worker():
            run = eng.start("sleeper", 600, id="nap")
            wait_until(lambda: "TimerStarted" in types(eng, "nap"), timeout=10,
                       message="the timer started")
        outcome: list[object] = []
        with psycopg.connect(pg_url) as rival:
            rival.execute("SET deadlock_timeout = '30s'")  # the engine's side detects first
            rival.execute("SELECT ref FROM timers WHERE run_id = %s FOR UPDATE",
                          (run.run_id,))

            def terminate() -> None:
                try:
                    eng.terminate("nap", "closing the shop")
                    outcome.append("done")
                except Exception as err:  # noqa: BLE001 - the outcome is what is checked
                    outcome.append(err)

            operator = threading.Thread(target=terminate)
            operator.start()
            wait_until(lambda: _waiting_on_a_lock(pg_url), timeout=10,
                       message="the terminate waiting on the timer row")
            rival.execute("SELECT status FROM runs WHERE run_id = %s FOR UPDATE",
                          (run.run_id,))
            rival.commit()
        operator.join(timeout=30)
        assert outcome == ["done"], outcome
        assert eng.show("nap", history=False)["status"] == "terminated"
        assert types(eng, "nap").count("WorkflowTerminated") == 1
    finally:
        eng.close()


def test_every_client_write_is_done_again_when_it_loses_a_conflict() -> None:
    """The family of the test above: each Engine method that opens a write transaction
    (itself, through the group committer or through repair) is wrapped so that a lost
    conflict is done again."""
    import inspect
    import re

    from onward import client

    writers = [name for name, fn in vars(client.Engine).items() if callable(fn) and (
        re.search(r"store\.write\(\)|committer\.run",
                  inspect.getsource(inspect.unwrap(fn)))
        or re.search(r"repair\.(retry|reset_run|set_paused)\(",
                     inspect.getsource(inspect.unwrap(fn))))]
    assert {"start", "signal", "cancel", "terminate", "retry", "reset"} <= set(writers)
    unwrapped = [name for name in writers if not hasattr(getattr(client.Engine, name),
                                                         "__wrapped__")]
    assert not unwrapped, f"client writes not redone on a conflict: {unwrapped}"
