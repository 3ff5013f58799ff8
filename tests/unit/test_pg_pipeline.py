"""PostgreSQL write transactions in pipeline mode (engine/store/pg_tx.py).

Statements that need no answer are queued and fail only at the next sync; these tests check
that a failure still lands where it belongs (the savepoint it was queued in, or the whole
transaction), raises the same engine error as without pipelining, and that a workflow step
costs fewer round trips. Every test runs on a fresh schema of a real server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

psycopg = pytest.importorskip(
    "psycopg", reason="psycopg is not installed (pip install 'onward[postgres]'); skipping")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from onward import Engine  # noqa: E402
from onward.errors import StoreConflict, StoreError  # noqa: E402
from onward.store import pg_tx  # noqa: E402
from onward.store.pg_tx import ANSWERS, CHANGES, MAY_CHANGE, plan  # noqa: E402
from onward.store.postgres import PostgresStore  # noqa: E402
from tests.helpers import REPO  # noqa: E402
from tests.pg import pg_url  # noqa: E402, F401 - a fixture

pytestmark = pytest.mark.postgres

FLOWS = str(REPO / "tests" / "flows" / "basic.py")
EXAMPLES = int(os.environ.get("ONWARD_PG_PIPELINE_EXAMPLES", "25"))
ADD = "INSERT INTO workflow_types (name, registered) VALUES (?, ?)"


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:  # noqa: F811
    s = PostgresStore(pg_url)
    yield s
    s.close()


@pytest.fixture(params=[True, False], ids=["pipelined", "waiting"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Each test with pipeline mode on, then off (every statement waits: the reference)."""
    monkeypatch.setattr(pg_tx, "PIPELINE", request.param)
    return bool(request.param)


def names(store: PostgresStore) -> list[str]:
    with store.read() as tx:
        return [r[0] for r in tx.execute("SELECT name FROM workflow_types ORDER BY name")]


def test_statements_are_queued_only_when_their_answer_is_not_needed() -> None:
    assert plan(ADD) == CHANGES
    assert plan("UPDATE runs SET status = ? WHERE run_id = ?") == MAY_CHANGE
    assert plan("DELETE FROM timers WHERE run_id = ?") == MAY_CHANGE
    assert plan("INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO NOTHING") == MAY_CHANGE
    assert plan("INSERT INTO t (a) SELECT a FROM u") == MAY_CHANGE
    assert plan("DELETE FROM timers WHERE run_id = ? RETURNING ref") == ANSWERS
    assert plan("SELECT 1") == ANSWERS
    assert plan("SELECT pg_advisory_xact_lock(?, hashtext(?))") == ANSWERS


def test_a_failing_statement_in_a_savepoint_rolls_back_that_savepoint_only(
        store: PostgresStore, mode: bool) -> None:
    with store.write() as tx:
        assert tx.pipelined is mode  # type: ignore[attr-defined]
        tx.execute(ADD, ("before", 1.0))
        with pytest.raises(StoreConflict, match="conflicts"), tx.savepoint():
            tx.execute(ADD, ("inside", 2.0))
            tx.execute(ADD, ("before", 3.0))  # a duplicate key: queued, fails at the sync
            tx.execute("UPDATE workflow_types SET registered = 9 WHERE name = 'before'")
        tx.execute(ADD, ("after", 4.0))
    assert names(store) == ["after", "before"]
    with store.read() as tx:
        assert tx.scalar("SELECT registered FROM workflow_types WHERE name = 'before'") == 1.0


def test_a_failure_queued_before_a_savepoint_is_not_the_savepoints(
        store: PostgresStore, mode: bool) -> None:
    ran: list[str] = []
    with pytest.raises(StoreConflict), store.write() as tx:
        tx.execute(ADD, ("a", 1.0))
        tx.execute(ADD, ("a", 2.0))  # fails here, or (pipelined) as the savepoint opens
        try:
            with tx.savepoint():
                ran.append("body")
                tx.execute(ADD, ("b", 1.0))
        except StoreConflict:
            ran.append("caught at the savepoint")
            raise
    assert names(store) == []  # the whole transaction rolled back
    assert ran == (["caught at the savepoint"] if mode else [])


@pytest.mark.parametrize("then", ["read", "commit"])
def test_a_constraint_error_raises_the_same_error_at_the_next_sync(
        store: PostgresStore, mode: bool, then: str) -> None:
    with store.write() as tx:
        tx.execute(ADD, ("x", 1.0))
    with pytest.raises(StoreConflict, match="duplicate key"), store.write() as tx:
        tx.execute(ADD, ("y", 1.0))
        tx.execute(ADD, ("x", 2.0))
        if then == "read":
            tx.execute("SELECT count(*) FROM workflow_types")
    assert names(store) == ["x"]
    before = store.commits
    with store.write() as tx:  # the connection is clean for the next transaction
        tx.execute(ADD, ("z", 1.0))
    assert names(store) == ["x", "z"] and store.commits == before + 1


def test_an_aborted_transaction_does_not_commit_even_if_its_error_was_caught(
        store: PostgresStore, mode: bool) -> None:
    with pytest.raises(StoreError, match="aborted by an earlier error"), \
            store.write() as tx:
        tx.execute(ADD, ("x", 1.0))
        with pytest.raises(StoreConflict):
            tx.execute(ADD, ("x", 1.0))
            tx.execute("SELECT 1")
    assert names(store) == []


def test_a_write_step_costs_two_round_trips(store: PostgresStore) -> None:
    """A read, five writes and an UPDATE, then the commit: one round trip for BEGIN and the
    read, one for the writes and the commit (the inserts tell that the NOTIFY is due)."""
    with store.write() as tx:
        tx.execute(ADD, ("seed", 0.0))
    store.round_trips = 0
    with store.write() as tx:
        assert tx.execute("SELECT name FROM workflow_types") == [("seed",)]
        for i in range(5):
            tx.execute(ADD, (f"n{i}", float(i)))
        tx.execute("UPDATE workflow_types SET registered = 1 WHERE name = 'seed'")
    assert store.round_trips == 2
    store.round_trips = 0
    with store.write() as tx:  # only the server knows whether the DELETE changed a row
        tx.execute("DELETE FROM workflow_types WHERE name = 'nobody'")
    assert store.round_trips == 2
    store.round_trips = 0
    with store.write() as tx:  # a start: the id's lock is queued, the lookup waits for it
        tx.lock_workflow_id("order-1")
        assert tx.execute("SELECT name FROM workflow_types WHERE name = 'order-1'") == []
        tx.execute(ADD, ("order-1", 1.0))
    assert store.round_trips == 2


def test_a_workflow_takes_half_the_round_trips_it_did(pg_url: str,  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    """The same three-step workflows, with and without pipeline mode: round trips per
    write transaction (counted, not timed)."""
    per_commit: dict[bool, float] = {}
    for piped in (False, True):
        monkeypatch.setattr(pg_tx, "PIPELINE", piped)
        with Engine(pg_url, flows=[FLOWS]) as eng, eng.worker(concurrency=4):
            eng.start("three_steps", 0).result(timeout=30)
            trips, commits = eng.store.round_trips, eng.store.commits
            handles = [eng.start("three_steps", i) for i in range(10)]
            assert [h.result(timeout=30) for h in handles] == [i + 3 for i in range(10)]
            per_commit[piped] = (eng.store.round_trips - trips) / (eng.store.commits - commits)
    assert per_commit[True] <= 0.6 * per_commit[False], per_commit


# -- the family: any mix of statements, savepoints and failures, pipelined or not --------
Step = tuple[str, Any]
_step = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 5)),
    st.tuples(st.just("bump"), st.integers(0, 5)),
    st.tuples(st.just("drop"), st.integers(0, 5)),
    st.tuples(st.just("read"), st.none()),
    st.tuples(st.just("raise"), st.none()),
)
_program = st.lists(st.one_of(
    _step, st.tuples(st.just("savepoint"), st.lists(_step, max_size=4))), max_size=8)


def _run(store: PostgresStore, program: list[Any], log: list[str]) -> None:
    def step(tx: Any, kind: str, arg: Any) -> None:
        if kind == "add":
            tx.execute(ADD, (f"k{arg}", 0.0))
        elif kind == "bump":
            tx.execute("UPDATE workflow_types SET registered = registered + 1 "
                       "WHERE name = ?", (f"k{arg}",))
        elif kind == "drop":
            tx.execute("DELETE FROM workflow_types WHERE name = ?", (f"k{arg}",))
        elif kind == "read":
            log.append(f"read {tx.scalar('SELECT count(*) FROM workflow_types')}")
        else:
            raise RuntimeError("the caller's own error")

    with store.write() as tx:
        for kind, arg in program:
            if kind != "savepoint":
                step(tx, kind, arg)
                continue
            try:
                with tx.savepoint():
                    for inner in arg:
                        step(tx, *inner)
                log.append("released")
            except (StoreConflict, RuntimeError) as err:
                log.append(f"rolled back: {type(err).__name__}")


def _outcome(store: PostgresStore, program: list[Any]) -> tuple[Any, ...]:
    with store.write() as tx:
        tx.execute("DELETE FROM workflow_types")
    log: list[str] = []
    try:
        _run(store, program, log)
        error = None
    except (StoreError, RuntimeError) as err:
        error = type(err).__name__
        log = []  # (how far it got before the error surfaced may differ: nothing is kept)
    with store.read() as tx:
        rows = tx.execute("SELECT name, registered FROM workflow_types ORDER BY name")
    return error, rows, log


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=_program)
def test_any_program_ends_as_it_does_without_pipelining(
        store: PostgresStore, monkeypatch: pytest.MonkeyPatch, program: list[Any]) -> None:
    """Same committed rows, same error out of the transaction, same savepoint outcomes."""
    results: dict[bool, Any] = {}
    for piped in (False, True):
        monkeypatch.setattr(pg_tx, "PIPELINE", piped)
        results[piped] = _outcome(store, program)
    assert results[True] == results[False]


def _kill_connections(store: PostgresStore, pg_url: str) -> None:  # noqa: F811
    """End every server connection of ``store``'s schema and wait until they are gone."""
    from tests.helpers import wait_until
    from tests.pg import BASE_URL
    schema = pg_url.split("application_name=")[1]
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = %s", (schema,))
        wait_until(lambda: not admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = %s",
            (schema,)).fetchone(), timeout=10, message="the backends exit")


def test_a_connection_lost_before_the_first_answer_is_replaced_and_the_writes_resent(
        store: PostgresStore, pg_url: str) -> None:  # noqa: F811
    """The server ends the connection after the INSERT was queued, before anything was
    answered: BEGIN and the INSERT are sent again on a new connection, once, and the row
    is written once (the first connection's transaction died uncommitted)."""
    with store.write() as tx:
        tx.execute(ADD, ("before", 1.0))
    with store.write() as tx:
        tx.execute(ADD, ("queued", 2.0))
        _kill_connections(store, pg_url)
        assert tx.scalar("SELECT count(*) FROM workflow_types") == 2
        assert tx.replaced == 1  # type: ignore[attr-defined]
    assert names(store) == ["before", "queued"]


def test_a_connection_lost_before_the_commits_answer_is_an_error_not_a_resend(
        store: PostgresStore, pg_url: str) -> None:  # noqa: F811
    """The commit's answer may be lost after the server committed: never sent twice."""
    with store.write() as tx:
        tx.execute(ADD, ("before", 1.0))
    with pytest.raises(StoreError), store.write() as tx:
        tx.execute(ADD, ("queued", 2.0))
        _kill_connections(store, pg_url)
    assert tx.replaced == 0  # type: ignore[attr-defined]
    assert names(store) == ["before"]  # (the pool replaced the dead connection)
