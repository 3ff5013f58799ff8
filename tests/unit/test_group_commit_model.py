"""Client writes from several threads at once, through the group committer, against a model.

Hypothesis draws, for 2-4 threads, a list of operations each (start, signal, cancel,
terminate of a few ids); the threads run them at once (a barrier lets them go together, so
their writes land in shared batches, in every order), and the database is then checked
against what the calls returned: an id has one run however many starts raced for it, one
start said it created it, each acknowledged signal is in its run's history exactly once and
each refused one nowhere, a run is terminated or cancel-requested at most once, and a
thread sees its own acknowledged writes. More examples with ``ONWARD_GC_EXAMPLES``.
"""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onward import Engine
from onward.errors import BadInput, NotFound

FLOWS = str(Path(__file__).parents[1] / "flows" / "basic.py")
IDS = 3
EXAMPLES = int(os.environ.get("ONWARD_GC_EXAMPLES", "10"))

operation = st.tuples(st.sampled_from(["start", "start", "signal", "signal", "signal",
                                       "cancel", "terminate"]),
                      st.integers(0, IDS - 1))
plans = st.lists(st.lists(operation, min_size=1, max_size=10), min_size=2, max_size=4)


def run_plan(eng: Engine, plan: list[list[tuple[str, int]]]) -> list[list[tuple[str, int,
                                                                               int, Any]]]:
    """Run each thread's operations at once; per thread, (op, id, signal number, outcome)."""
    numbers = itertools.count()
    barrier = threading.Barrier(len(plan))
    done: list[list[tuple[str, int, int, Any]]] = [[] for _ in plan]

    def one(op: str, k: int, n: int) -> Any:
        wid = f"w{k}"
        if op == "start":
            return eng.start("signals", 1000, id=wid).created
        if op == "signal":
            return eng.signal(wid, "item", n)
        if op == "cancel":
            return eng.cancel(wid)
        return eng.terminate(wid)

    def thread(i: int) -> None:
        barrier.wait()
        for op, k in plan[i]:
            n = next(numbers)
            try:
                outcome: Any = one(op, k, n)
            except (NotFound, BadInput) as err:
                outcome = err
            done[i].append((op, k, n, outcome))

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(len(plan))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return done


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=plans)
def test_interleaved_client_writes_agree_with_the_model(
        plan: list[list[tuple[str, int]]], tmp_path_factory: pytest.TempPathFactory) -> None:
    db = tmp_path_factory.mktemp("gc") / "onward.db"
    eng = Engine(db, flows=[FLOWS])
    try:
        done = run_plan(eng, plan)
    finally:
        eng.close()
    check = Engine(db, flows=[FLOWS])  # a fresh engine: only what is durable
    try:
        flat = [step for steps in done for step in steps]
        started = {k for op, k, _, _ in flat if op == "start"}
        assert {r["id"] for r in check.list(all_runs=True)} == {f"w{k}" for k in started}
        for k in started:
            creators = [o for op, kk, _, o in flat if op == "start" and kk == k and o is True]
            assert len(creators) == 1, f"w{k}: {len(creators)} starts said they created it"
            events = check.history(f"w{k}")
            got = sorted(e["attrs"]["payload"] for e in events if e["type"] == "SignalReceived")
            acked = sorted(n for op, kk, n, o in flat
                           if op == "signal" and kk == k and o is None)
            assert got == acked
            terminated = [o for op, kk, _, o in flat if op == "terminate" and kk == k
                          and o is None]
            assert len(terminated) == [e["type"] for e in events].count("WorkflowTerminated")
            assert len(terminated) <= 1
            asked = [o for op, kk, _, o in flat if op == "cancel" and kk == k
                     and isinstance(o, str) and o.startswith("asked")]
            assert len(asked) == [e["type"] for e in events].count("CancelRequested") <= 1
        for steps in done:  # a thread sees its own acknowledged writes
            mine: set[int] = set()
            for op, k, _, outcome in steps:
                if op == "start":
                    mine.add(k)
                elif k in mine:
                    assert not isinstance(outcome, NotFound), (op, k, outcome)
    finally:
        check.close()
