"""A PostgreSQL turn reads its runs together (engine/store/batched.py, engine/turn_reads.py).

Each read waits for the server; a dispatcher turn that records many outcomes and advances
many runs makes its reads once for all of them. These tests count the round trips of the
two parts of a turn, batched and one run at a time (counts, not timings), check that both
leave the same histories, and that a row read ahead is never used after the turn changed
that run another way. Every test runs on a fresh schema of a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip(
    "psycopg", reason="psycopg is not installed (pip install 'onward[postgres]'); skipping")

from onward import Engine, history  # noqa: E402
from onward.attempts import Ending, record_outcomes  # noqa: E402
from onward.store import pg_tx, queues, runs  # noqa: E402
from onward.store.pg_tx import PostgresTx  # noqa: E402
from onward.store.sqlite import SqliteTx  # noqa: E402
from onward.turn_reads import locked_runs  # noqa: E402
from tests.helpers import REPO  # noqa: E402
from tests.pg import pg_url  # noqa: E402, F401 - a fixture

pytestmark = pytest.mark.postgres

FLOWS = [str(REPO / "tests" / "flows" / "basic.py"), str(REPO / "tests" / "flows" / "children.py")]
N = 12
OWNER = "worker-test"


@pytest.fixture(params=[True, False], ids=["together", "one-by-one"])
def together(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Each test with grouped reads, then without (the reference: a read per run)."""
    monkeypatch.setattr(PostgresTx, "batch_reads", request.param)
    return bool(request.param)


@pytest.fixture
def eng(pg_url: str) -> Iterator[Engine]:  # noqa: F811
    with Engine(pg_url, flows=FLOWS) as engine:
        yield engine


def _types(eng: Engine, run_id: str) -> list[str]:
    with eng.store.read() as tx:
        return [e.type for e in history.load_events(tx, run_id)]


def _advance_due(eng: Engine, names: list[str]) -> tuple[list[str], int]:
    """Run the first workflow task of every due run in one transaction, claiming what they
    schedule for OWNER; the run ids and the round trips from reading the runs on."""
    with eng.store.write() as tx:
        due = queues.due_workflow_tasks(tx, names, 100)
        before = tx.round_trips  # type: ignore[attr-defined]
        for run in locked_runs(tx, due, eng.cache, set()):
            eng.advancer.advance(tx, run, lambda _name: OWNER)
        trips = tx.round_trips - before  # type: ignore[attr-defined]
    return due, trips


def test_a_turns_runs_are_read_in_one_round_trip(eng: Engine, together: bool) -> None:
    """N due runs' first workflow tasks: their rows and events are one round trip (two
    per run one by one); the writes that follow are queued until the commit."""
    for i in range(N):
        eng.start("three_steps", i)
    due, trips = _advance_due(eng, ["three_steps"])
    assert len(due) == N
    assert trips == (1 if together else 2 * N)
    for run_id in due:
        assert _types(eng, run_id) == ["WorkflowStarted", "ActivityScheduled"]


def test_a_turns_outcomes_are_recorded_in_one_round_trip(eng: Engine, together: bool) -> None:
    """N completed attempts: the N DELETE ... RETURNING and the N runs' locks are one round
    trip (two per outcome one by one); each run's next step is then queued."""
    for i in range(N):
        eng.start("three_steps", i)
    due, _ = _advance_due(eng, ["three_steps"])
    endings = (Ending(run_id, 2, OWNER, 1, True, result=10 + k)
               for k, run_id in enumerate(due))
    with eng.store.write() as tx:
        before = tx.round_trips  # type: ignore[attr-defined]
        for run in record_outcomes(tx, endings, eng.clock(), save=False):
            eng.advancer.advance(tx, run, lambda _name: OWNER)
        trips = tx.round_trips - before  # type: ignore[attr-defined]
    assert trips == (1 if together else 2 * N)
    for k, run_id in enumerate(due):
        assert _types(eng, run_id) == ["WorkflowStarted", "ActivityScheduled",
                                       "ActivityCompleted", "ActivityScheduled"]
        with eng.store.read() as tx:
            events = history.load_events(tx, run_id)
        assert events[2].attrs["result"] == 10 + k
        assert events[3].attrs["args"] == ["b", 10 + k]


def test_fenced_outcomes_among_batched_ones_are_not_recorded(eng: Engine,
                                                             together: bool) -> None:
    """Outcomes of attempts the owner does not hold (another attempt, another owner) are
    fenced off, batched or not; the others are recorded."""
    for i in range(3):
        eng.start("three_steps", i)
    due, _ = _advance_due(eng, ["three_steps"])
    endings = [Ending(due[0], 2, OWNER, 1, True, result=1),
               Ending(due[1], 2, OWNER, 7, True, result=1),  # not its attempt
               Ending(due[2], 2, OWNER, 1, True, result=1)]
    with eng.store.write() as tx:
        recorded = [run.run_id for run in record_outcomes(tx, endings, eng.clock())]
    assert recorded == [due[0], due[2]]
    assert _types(eng, due[1]) == ["WorkflowStarted", "ActivityScheduled"]
    with eng.store.read() as tx:
        assert queues.attempts_held_by(tx, OWNER) == [(due[1], 2, 1)]


def test_a_row_read_ahead_is_dropped_once_the_turn_changes_that_run(
        eng: Engine, together: bool) -> None:
    """Run A's workflow task signals run B, whose row was read with A's: B is read again
    after the signal (its held row would lack it, and its next event would clash)."""
    b = eng.start("signals", 1, id="target")
    a = eng.start("signaller", "target", "item", 42, id="sender")
    with eng.store.write() as tx:
        order = [a.run_id, b.run_id]  # A runs first
        for run in locked_runs(tx, order, eng.cache, set()):
            eng.advancer.advance(tx, run)
    assert a.result(timeout=0) == "sent"
    assert b.result(timeout=0) == [42]


def test_held_rows_are_dropped_by_a_save_or_an_append(eng: Engine) -> None:
    """The contract engine.store.batched relies on, on its own."""
    handle = eng.start("three_steps", 1)
    with eng.store.write() as tx:
        row = history.get_run(tx, handle.run_id)
        assert row is not None
        runs.hold(tx, [row])
        assert runs.take_held(tx, handle.run_id) is row
        assert runs.take_held(tx, handle.run_id) is None  # taken once
        for change in ("save", "append"):
            runs.hold(tx, [row])
            fresh = history.get_run(tx, handle.run_id, lock=True)
            assert fresh is not None
            if change == "save":
                history.save_run_state(tx, fresh)
            else:
                history.append(tx, fresh, "MarkerRecorded", {"name": "x"}, eng.clock())
                history.save_run_state(tx, fresh)
            assert runs.take_held(tx, handle.run_id) is None


def test_sqlite_reads_one_by_one(tmp_path: Any) -> None:
    """SQLite's reads cost no round trip: its turns never batch (its behaviour is as it was)."""
    assert SqliteTx.batch_reads is False
    assert PostgresTx.batch_reads is pg_tx.BATCH_READS
