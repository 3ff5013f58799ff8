"""A SQLite turn finishes its completed attempts together (engine/store/batched.py).

Recording N outcomes used to cost 2 N statements before any workflow code ran (each
attempt's ``DELETE ... RETURNING``, then its run's ``SELECT``); with ``Tx.finish_together``
= "sqlite" they are two statements for the whole turn. These tests count the statements
(counts, not timings) with the grouping and without it, check that both leave the same
histories, that fenced outcomes are still fenced, and that a run changed by another run's
workflow task in the same turn is read again. Real SQLite files throughout.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from onward import Engine, history
from onward.attempts import Ending, record_outcomes
from onward.store import queues
from onward.store.sqlite import SqliteTx
from onward.turn_reads import locked_runs
from tests.helpers import REPO

FLOWS = [str(REPO / "tests" / "flows" / "basic.py"), str(REPO / "tests" / "flows" / "finish.py")]
N = 12
OWNER = "worker-test"


@pytest.fixture(params=["sqlite", ""], ids=["together", "one-by-one"])
def together(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Each test with the grouped finish, then without (the reference: one per attempt)."""
    monkeypatch.setattr(SqliteTx, "finish_together", request.param)
    return bool(request.param)


@pytest.fixture
def eng(tmp_path: Path) -> Iterator[Engine]:
    with Engine(tmp_path / "onward.db", flows=FLOWS) as engine:
        yield engine


class Statements:
    """The statements one connection runs while counting."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.texts: list[str] = []
        conn.trace_v2(apsw.SQLITE_TRACE_STMT, self._traced)

    def _traced(self, event: dict[str, Any]) -> None:
        self.texts.append(" ".join(str(event["sql"]).split()))

    def starting(self, prefix: str) -> int:
        return sum(text.startswith(prefix) for text in self.texts)


def _types(eng: Engine, run_id: str) -> list[str]:
    with eng.store.read() as tx:
        return [e.type for e in history.load_events(tx, run_id)]


def _advance_due(eng: Engine, names: list[str]) -> list[str]:
    """Run the first workflow task of every due run in one transaction, claiming what they
    schedule for OWNER; the run ids."""
    with eng.store.write() as tx:
        due = queues.due_workflow_tasks(tx, names, 100)
        for run in locked_runs(tx, due, eng.cache, set()):
            eng.advancer.advance(tx, run, lambda _name: OWNER)
    return due


def test_a_turns_outcomes_are_finished_in_two_statements(eng: Engine, together: bool) -> None:
    """N completed attempts: one DELETE and one SELECT of runs for all of them (N of each
    one by one); each run's next step is recorded as before."""
    for i in range(N):
        eng.start("three_steps", i)
    due = _advance_due(eng, ["three_steps"])
    assert len(due) == N
    endings = [Ending(run_id, 2, OWNER, 1, True, result=10 + k)
               for k, run_id in enumerate(due)]
    with eng.store.write() as tx:
        assert isinstance(tx, SqliteTx)
        seen = Statements(tx.conn)
        for run in record_outcomes(tx, endings, eng.clock(), save=False):
            eng.advancer.advance(tx, run, lambda _name: OWNER)
        tx.conn.trace_v2(0, None)
    assert seen.starting("DELETE FROM activity_tasks") == (1 if together else N)
    assert seen.starting("SELECT run_id, workflow_id") == (1 if together else N)
    for k, run_id in enumerate(due):
        assert _types(eng, run_id) == ["WorkflowStarted", "ActivityScheduled",
                                       "ActivityCompleted", "ActivityScheduled"]
        with eng.store.read() as tx:
            events = history.load_events(tx, run_id)
        assert events[2].attrs["result"] == 10 + k
        assert events[3].attrs["args"] == ["b", 10 + k]
    with eng.store.read() as tx:  # the second steps (ref 4), claimed; the first ones gone
        assert sorted(queues.attempts_held_by(tx, OWNER)) == sorted((r, 4, 1) for r in due)


def test_fenced_outcomes_among_grouped_ones_are_not_recorded(eng: Engine,
                                                             together: bool) -> None:
    """Outcomes of attempts the owner does not hold (another attempt number) are fenced
    off, grouped or not; the others are recorded."""
    for i in range(3):
        eng.start("three_steps", i)
    due = _advance_due(eng, ["three_steps"])
    endings = [Ending(due[0], 2, OWNER, 1, True, result=1),
               Ending(due[1], 2, OWNER, 7, True, result=1),  # not its attempt
               Ending(due[2], 2, OWNER, 1, True, result=1)]
    with eng.store.write() as tx:
        recorded = [run.run_id for run in record_outcomes(tx, endings, eng.clock())]
    assert recorded == [due[0], due[2]]
    assert _types(eng, due[1]) == ["WorkflowStarted", "ActivityScheduled"]
    with eng.store.read() as tx:
        assert queues.attempts_held_by(tx, OWNER) == [(due[1], 2, 1)]


def test_a_run_signalled_in_the_turn_is_read_again(eng: Engine, together: bool) -> None:
    """Run A's completion runs its workflow task, which signals run B, whose completion
    comes next in the same turn: B's row read with A's lacks the signal, so it is read
    again, and B's history stays whole (no clash of sequence numbers)."""
    b = eng.start("step_then_wait", id="target")
    a = eng.start("step_then_signal", "target", id="sender")
    due = _advance_due(eng, ["step_then_wait", "step_then_signal"])
    assert sorted(due) == sorted([a.run_id, b.run_id])
    with eng.store.read() as tx:
        held = {run_id: ref for run_id, ref, _ in queues.attempts_held_by(tx, OWNER)}
    endings = [Ending(a.run_id, held[a.run_id], OWNER, 1, True, result=5),
               Ending(b.run_id, held[b.run_id], OWNER, 1, True, result=7)]
    with eng.store.write() as tx:
        for run in record_outcomes(tx, endings, eng.clock(), save=False):
            eng.advancer.advance(tx, run)
    assert a.result(timeout=0) == "sent"
    assert b.result(timeout=0) == [7, "item"]
    assert _types(eng, b.run_id).count("SignalReceived") == 1
