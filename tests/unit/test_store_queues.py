"""The queues behind the store's operations: no SQL in the engine modules that use them,
row locks stated by the operations (never rewritten into the SQL), and the hot queries on
their indexes."""

from __future__ import annotations

import ast
from pathlib import Path

import apsw
import pytest

from engine import Engine, history
from engine.store.sqlite import SqliteStore
from tests.pg import pg_url  # noqa: F401 - a fixture

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
    from engine.store.postgres import translate
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
    from engine.store.postgres import PostgresStore
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
    from engine import attempts
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


def test_hot_queue_queries_use_their_indexes(tmp_path: Path) -> None:
    from engine.store import queues
    Engine(tmp_path / "plan.db").close()
    conn = apsw.Connection(str(tmp_path / "plan.db"))
    try:
        def plan(sql: str, params: tuple[object, ...]) -> str:
            return " ".join(str(row[3]) for row in conn.execute(
                "EXPLAIN QUERY PLAN " + sql, params))

        claim = plan(queues.ready_attempts_sql(2, ""), (1.0, "a", "b", 10))
        assert "activity_ready" in claim, claim
        timers = plan(queues.due_timers_sql(""), (1.0, 10))
        assert "timers_due" in timers and "TEMP B-TREE" not in timers, timers
        pending = plan(queues.due_workflow_tasks_sql(3, ""), ("a", "b", "c", 10))
        assert "runs_pending" in pending and "TEMP B-TREE" not in pending, pending
    finally:
        conn.close()
