"""The queues behind the store's operations: no SQL in the engine modules that use them,
row locks stated by the operations (never rewritten into the SQL), and the hot queries on
their indexes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from onward import Engine, history
from onward.store.sqlite import SqliteStore
from tests.pg import any_db, pg_url  # noqa: F401 - fixtures

ENGINE = Path(__file__).resolve().parents[2] / "engine"
SQL_WORDS = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "RETURNING", " FOR UPDATE")
QUEUE_MODULES = ("attempts.py", "worker.py", "advance.py")
"""Engine modules whose store access goes through engine.store.queues and membership."""
QUEUE_FUNCTIONS = {"client.py": ("_close_task",), "repair.py": ("_recreate_pending", "_hurry")}
"""Functions, in modules other helpers own, whose SQL moved to engine.store.queues."""


def sql_strings(tree: ast.AST) -> list[str]:
    """String constants (and f-string parts) in ``tree`` that read like SQL."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.upper()
            if any(word in text for word in SQL_WORDS) and not node.value.strip().startswith(
                    ('"', "A ", "The ")) and "\n" not in node.value.strip()[:1]:
                found.append(node.value)
    return found


def docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant):
            ids.add(id(body[0].value))
    return ids


def code_sql(tree: ast.AST) -> list[str]:
    skip = docstrings(tree)
    return [text for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and id(node) not in skip
            for text in sql_strings(node)]


@pytest.mark.parametrize("module", QUEUE_MODULES)
def test_queue_modules_outside_the_store_hold_no_sql(module: str) -> None:
    tree = ast.parse((ENGINE / module).read_text())
    assert code_sql(tree) == []


@pytest.mark.parametrize("module", sorted(QUEUE_FUNCTIONS))
def test_task_and_timer_writes_in_client_and_repair_go_through_the_store(module: str) -> None:
    tree = ast.parse((ENGINE / module).read_text())
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                 and node.name in QUEUE_FUNCTIONS[module]]
    assert len(functions) == len(QUEUE_FUNCTIONS[module])
    for function in functions:
        assert code_sql(function) == [], function.name


def test_postgres_translation_only_converts_placeholders_and_percent_signs() -> None:
    pytest.importorskip("psycopg")
    from onward.store.postgres import translate
    claim = ("SELECT a.run_id FROM activity_tasks a JOIN runs r ON r.run_id = a.run_id "
             "WHERE a.owner IS NULL AND a.name LIKE '%x' LIMIT ? FOR UPDATE SKIP LOCKED")
    assert translate(claim)[0] == claim.replace("%", "%%").replace("?", "%s")


def test_sqlite_and_read_only_transactions_lock_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "o.db")
    try:
        with store.write() as tx:
            assert tx.lock_rows_of("a", skip_locked=True) == "" and tx.lock_rows_of() == ""
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_writers_state_the_rows_they_lock(pg_url: str) -> None:  # noqa: F811
    from onward.store.postgres import PostgresStore
    store = PostgresStore(pg_url)
    try:
        with store.write() as tx:
            assert tx.lock_rows_of() == " FOR UPDATE"
            assert tx.lock_rows_of("a", skip_locked=True) == " FOR UPDATE OF a SKIP LOCKED"
            with pytest.raises(ValueError):
                tx.lock_rows_of("a; DROP TABLE runs")
        with store.read() as tx:
            assert tx.lock_rows_of("a", skip_locked=True) == ""
    finally:
        store.close()


FLOWS = str(Path(__file__).parents[1] / "flows" / "basic.py")


@pytest.mark.postgres
def test_a_claim_on_postgres_takes_an_attempt_whose_run_another_transaction_locks(
        pg_url: str) -> None:  # noqa: F811
    """The claim locks the activity task rows it takes, not the runs it joins to read: a
    run locked by someone else (a signal, a step) does not hide its ready attempts."""
    from onward import attempts
    eng = Engine(pg_url, flows=[FLOWS])
    try:
        handle = eng.start("three_steps", 1, id="locked")  # no worker: nothing runs
        with eng.store.write() as tx:
            tx.execute("INSERT INTO activity_tasks (run_id, ref, name, args, options, "
                       "attempt, due, scheduled) VALUES (?, 2, 'step', '[]', '{}', 1, 0, 0)",
                       (handle.run_id,))
        with eng.store.write() as holder:
            assert history.get_run(holder, handle.run_id, lock=True) is not None
            with eng.store.write() as claimer:
                taken = attempts.claim(claimer, "w", ["step"], 5, 1e12, {})
        assert [a.run_id for a in taken] == [handle.run_id]
    finally:
        eng.close()



def test_no_engine_module_writes_row_locking_sql_itself() -> None:
    """Row locks are stated through ``Tx.lock_rows_of`` (or ``for_update``); only the
    PostgreSQL backend (postgres.py, pg_tx.py) spells the clause."""
    for path in sorted(ENGINE.rglob("*.py")):
        if path.name in ("postgres.py", "pg_tx.py"):  # the PostgreSQL backend
            continue
        for text in code_sql(ast.parse(path.read_text())) + [
                node.value for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
                and node.value.strip().upper().startswith(("FOR UPDATE", "SKIP LOCKED"))]:
            assert "SKIP LOCKED" not in text.upper() and "FOR UPDATE" not in text.upper(), \
                (path.name, text)


def _open(db: object) -> object:
    from onward.store.postgres import PostgresStore
    return SqliteStore(db) if isinstance(db, Path) else PostgresStore(str(db))


def test_workers_register_advertise_beat_and_deregister(any_db: object) -> None:  # noqa: F811
    from onward.store import membership
    store = _open(any_db)
    try:
        with store.write() as tx:  # type: ignore[attr-defined]
            for worker_id in ("w1", "w2"):
                membership.register_worker(tx, worker_id, host="h", pid=1, pid_start="s",
                                           now=1.0, lease_ttl=5.0, concurrency=2,
                                           activities=["a"])
            tx.execute("INSERT INTO workers (worker_id, host, pid, pid_start, started, "
                       "heartbeat, lease_ttl, concurrency, info) VALUES "
                       "('odd', 'h', 2, 's', 0, 0, 5, 1, 'not json')")
            membership.advertise_activities(tx, "w2", ["b", "c"])
            assert membership.offered_activities(tx) == {"a", "b", "c"}
            membership.register_worker(tx, "w1", host="h", pid=1, pid_start="s", now=9.0,
                                       lease_ttl=5.0, concurrency=2, activities=["a"])
            others = membership.other_workers(tx, "w2")
            assert {(w.worker_id, w.heartbeat) for w in others} == {("w1", 9.0), ("odd", 0.0)}
            assert tx.scalar("SELECT started FROM workers WHERE worker_id = 'w1'") == 1.0
            assert membership.renew_heartbeat(tx, "w1", 10.0)
            membership.deregister_worker(tx, "w1")
            assert not membership.renew_heartbeat(tx, "w1", 11.0)
    finally:
        store.close()  # type: ignore[attr-defined]


def test_timers_fire_once_and_tasks_close_once(any_db: object) -> None:  # noqa: F811
    from onward.store import queues
    store = _open(any_db)
    try:
        with store.write() as tx:  # type: ignore[attr-defined]
            queues.open_manual_task(tx, "t1", "r", "wf", "flow", 3, "approve", None, "", "null",
                                    1.0, 5.0)
            queues.add_timer(tx, "r", 4, 2.0, "timer")
            assert queues.due_timers(tx, 4.0, 10) == [("r", 4, "timer")]
            assert queues.next_due(tx, 4.0) == (2.0, None, None, False)
            assert queues.remove_timer(tx, "r", 4) and not queues.remove_timer(tx, "r", 4)
            assert queues.lock_manual_task(tx, "t1") == ("r", 3, "approve", "open", None)
            queues.close_task(tx, "t1", "r", 3, "completed", result="1", reason=None,
                              by="me", now=3.0)
            assert queues.time_out_task(tx, "r", 3, 6.0) is None  # already closed
            assert not queues.has_due_timer(tx, 10.0)  # its deadline timer went with it
            assert queues.lock_manual_task(tx, "t1") == ("r", 3, "approve", "completed", "me")
            assert queues.lock_manual_task(tx, "none") is None
    finally:
        store.close()  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_claimers_on_postgres_skip_the_timers_and_runs_others_hold(pg_url: str) -> None:  # noqa: F811
    from onward.store import queues
    from onward.store.postgres import PostgresStore
    store = PostgresStore(pg_url)
    try:
        with store.write() as tx:
            for ref in (1, 2):
                queues.add_timer(tx, "r", ref, float(ref), "timer")
        with store.write() as first, store.write() as second:
            assert queues.due_timers(first, 5.0, 1) == [("r", 1, "timer")]
            assert queues.due_timers(second, 5.0, 10) == [("r", 2, "timer")]
    finally:
        store.close()
