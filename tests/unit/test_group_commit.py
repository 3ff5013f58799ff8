"""Group commit: concurrent writes of one process share a transaction and its commit.

A *gate* makes batches deterministic: a job of the test holds the committer's leadership
(inside its open transaction) until the calls under test have all queued behind it; they
join the gate's transaction as it finishes. So "32 starts took 1 commit" (the gate's,
shared) is a count, not a timing. Every write is checked durable through a second engine (its own
connections) at the moment its call returned.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw
import pytest

from onward import Engine, StoreError
from onward.errors import BadInput, NotFound, StoreConflict, UnknownWorkflow, UpdatePending
from onward.events import Event
from onward.group_commit import GroupCommitter
from onward.store import runs
from onward.store import updates as update_rows
from onward.store.base import Tx
from tests.helpers import wait_until
from tests.unit.test_store_faults import FullSwitch, disk  # noqa: F401 - a fixture

FLOWS = str(Path(__file__).parents[1] / "flows" / "basic.py")
HANDLERS = str(Path(__file__).parents[1] / "flows" / "handlers.py")
N = 32


@contextmanager
def gate(committer: GroupCommitter, waiting: int,
         then: Callable[[], None] | None = None) -> Iterator[list[BaseException]]:
    """Hold ``committer`` (inside a transaction of its own) until ``waiting`` jobs queue
    behind it, so that those go in one transaction. ``then`` runs as the gate lets go
    (inside the gate's transaction). Start the callers inside the block."""
    entered, arrived = threading.Event(), threading.Event()
    failed: list[BaseException] = []
    committer.on_queue = lambda n: arrived.set() if n >= waiting else None

    def hold(tx: Tx) -> None:
        entered.set()
        assert arrived.wait(30), "the callers never queued"
        if then is not None:
            then()

    def lead() -> None:
        try:
            committer.run(hold)
        except BaseException as err:  # noqa: BLE001 - reported to the test
            failed.append(err)

    thread = threading.Thread(target=lead)
    thread.start()
    assert entered.wait(30)
    try:
        yield failed
    finally:
        thread.join(30)
        committer.on_queue = None


def together(eng: Engine, calls: list[Callable[[], Any]],
             then: Callable[[], None] | None = None) -> tuple[list[Any], int]:
    """Run ``calls`` on threads of their own, all queued behind a gate; each one's value
    or exception, and how many commits they and the gate took (the calls join the
    gate's transaction as it finishes, so all of them together take one)."""
    outcomes: list[Any] = [None] * len(calls)
    before = eng.store.commits

    def call(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except BaseException as err:  # noqa: BLE001 - compared by the test
            outcomes[i] = err

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    with gate(eng.runtime.committer, len(calls), then):
        for thread in threads:
            thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes, eng.store.commits - before


@pytest.fixture
def engines(any_db: str | Path) -> Iterator[tuple[Engine, Engine]]:
    """The engine under test and a second one on the same database, its own connections,
    to see what is durable."""
    eng = Engine(any_db, flows=[FLOWS])
    other = Engine(any_db, flows=[FLOWS])
    try:
        yield eng, other
    finally:
        other.close()
        eng.close()



def _log_job(name: str, fail: bool = False) -> Callable[[Tx], str]:
    """A job writing one provider log entry named ``name``, then raising if ``fail``."""
    def job(tx: Tx) -> str:
        runs.add_provider_log_entry(tx, time=1.0, worker_id=None, provider=name,
                                    version="1", action="load", message="")
        if fail:
            raise ValueError(f"{name} broke")
        return name
    return job

def test_32_concurrent_starts_share_one_commit_and_each_is_durable_when_it_returns(
        engines: tuple[Engine, Engine]) -> None:
    eng, other = engines

    def start(i: int) -> bool:
        eng.start("three_steps", i, id=f"s{i}")
        return other.show(f"s{i}", history=False)["status"] == "running"  # seen elsewhere

    outcomes, commits = together(eng, [lambda i=i: start(i) for i in range(N)])
    assert outcomes == [True] * N
    assert commits == 1
    assert len(other.list(all_runs=True)) == N


def test_starts_at_once_without_a_gate_take_fewer_commits_than_starts(
        engines: tuple[Engine, Engine]) -> None:
    eng, other = engines
    eng.start("three_steps", 0, id="warm")
    barrier = threading.Barrier(N)
    before = eng.store.commits

    def start(i: int) -> None:
        barrier.wait()
        eng.start("three_steps", i, id=f"b{i}")

    threads = [threading.Thread(target=start, args=(i,)) for i in range(N)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(other.list(all_runs=True)) == N + 1
    assert eng.store.commits - before < N


def test_concurrent_signals_share_one_commit_and_each_is_recorded_once(
        engines: tuple[Engine, Engine]) -> None:
    eng, other = engines
    eng.start("signals", N, id="sig")
    outcomes, commits = together(
        eng, [lambda i=i: eng.signal("sig", "item", i) for i in range(N)])
    assert outcomes == [None] * N and commits == 1
    payloads = [e["attrs"]["payload"] for e in other.history("sig")
                if e["type"] == "SignalReceived"]
    assert sorted(payloads) == list(range(N))
    with eng.worker():
        assert sorted(eng.handle("sig").result(timeout=30)) == list(range(N))


def test_concurrent_task_completions_share_one_commit(engines: tuple[Engine, Engine]) -> None:
    eng, other = engines
    with eng.worker():
        handles = [eng.start("approval", id=f"t{i}") for i in range(N)]
        wait_until(lambda: len(eng.tasks()) == N, message="every run opened its task")
    tasks = eng.tasks()
    outcomes, commits = together(
        eng, [lambda t=t: eng.complete_task(t["task_id"], t["task_id"], by="bob")
              for t in tasks])
    assert outcomes == [None] * N and commits == 1
    assert other.tasks() == []
    with eng.worker():
        results = {h.result(timeout=30) for h in handles}
    assert results == {t["task_id"] for t in tasks}


def test_concurrent_update_requests_share_one_commit(any_db: str | Path) -> None:
    eng = Engine(any_db, flows=[HANDLERS])
    other = Engine(any_db, flows=[HANDLERS])
    try:
        run_ids = [eng.start("approval", f"c{i}", id=f"u{i}").run_id for i in range(N)]
        outcomes, commits = together(eng, [
            lambda i=i: eng.update(f"u{i}", "approve", "bob", update_id=f"up{i}", timeout=0)
            for i in range(N)])
        assert all(isinstance(o, UpdatePending) for o in outcomes), outcomes
        assert commits == 1
        with other.store.read() as tx:
            assert all(update_rows.get(tx, run_ids[i], f"up{i}") is not None
                       for i in range(N))
        with eng.worker():  # the same ids: the stored requests' outcomes
            assert eng.update("u0", "approve", "bob", update_id="up0", timeout=30)
    finally:
        other.close()
        eng.close()


def test_32_concurrent_start_async_share_commits(engines: tuple[Engine, Engine]) -> None:
    eng, other = engines

    async def main() -> list[Any]:
        return await asyncio.gather(*(eng.start_async("three_steps", i, id=f"a{i}")
                                      for i in range(N)))

    before = eng.store.commits
    with gate(eng.runtime.committer, N):
        handles = asyncio.run(main())
    assert [h.id for h in handles] == [f"a{i}" for i in range(N)]
    assert eng.store.commits - before == 1  # the gate's, which they joined
    assert len(other.list(all_runs=True)) == N


def test_in_a_batch_each_failing_caller_gets_its_own_error_and_changes_nothing(
        engines: tuple[Engine, Engine]) -> None:
    eng, other = engines
    eng.start("three_steps", 0, id="closed")
    eng.terminate("closed")
    with eng.worker():
        calls: list[Callable[[], Any]] = [
            lambda: eng.start("three_steps", 1, id="good1"),
            lambda: eng.start("no_such_flow", id="bad1"),          # unknown workflow
            lambda: eng.signal("nobody", "item", 1),                # unknown run
            lambda: eng.signal("closed", "item", 1),                # closed run
            lambda: eng.cancel("closed"),                           # closed run
            lambda: eng.complete_task("task-nope", 1),              # unknown task
            lambda: eng.start("bad_result", id="held"),             # its workflow task fails
            lambda: eng.start("three_steps", 2, id="good2"),
        ]
        outcomes, _ = together(eng, calls)
        assert isinstance(outcomes[1], UnknownWorkflow)
        assert isinstance(outcomes[2], NotFound)
        assert isinstance(outcomes[3], BadInput) and "terminated" in str(outcomes[3])
        assert isinstance(outcomes[4], BadInput)
        assert isinstance(outcomes[5], NotFound)
        assert outcomes[6].id == "held"  # started; its run is held, nobody else's
        assert eng.handle("good1").result(timeout=30) == 4
        assert eng.handle("good2").result(timeout=30) == 5
        wait_until(lambda: other.show("held", history=False)["stuck"],
                   message="the run whose workflow task failed is held")
    ids = {r["id"] for r in other.list(all_runs=True)}
    assert ids == {"closed", "good1", "good2", "held"}
    assert [e["type"] for e in other.history("closed")].count("SignalReceived") == 0


@pytest.mark.parametrize("isolation", ["savepoint", "redo"])
def test_a_job_that_raises_after_writing_leaves_no_trace(db_path: Path, isolation: str
                                                         ) -> None:
    eng = Engine(db_path, flows=[FLOWS])
    try:
        committed: list[Tx] = []
        committer = GroupCommitter(eng.store.write, eng.runtime.advance_lock,
                                   isolation=isolation, on_commit=committed.append)
        eng.runtime.committer = committer
        undone: list[str] = []

        def add(name: str, fail: bool) -> Callable[[], str]:
            return lambda: committer.run(_log_job(name, fail),
                                         undo=lambda err: undone.append(name))

        calls = [add(f"p{i}", fail=i % 3 == 1) for i in range(9)]
        outcomes, commits = together(eng, calls)
        assert commits == 1
        for i, outcome in enumerate(outcomes):
            if i % 3 == 1:
                assert isinstance(outcome, ValueError) and f"p{i} broke" in str(outcome)
            else:
                assert outcome == f"p{i}"
        kept = {row["provider"] for row in eng.provider_log(stored=True)}
        assert kept == {f"p{i}" for i in range(9) if i % 3 != 1}
        assert {f"p{i}" for i in range(9) if i % 3 == 1} <= set(undone)
        # told once about each job that committed (its observers' events), never about a
        # failed one: the six that worked and the gate
        assert len(committed) == 7 and len({id(tx) for tx in committed}) == 7
    finally:
        eng.close()


def test_a_failed_commit_reaches_every_caller_of_its_batch_and_loses_nothing(
        disk: FullSwitch, db_path: Path) -> None:  # noqa: F811 - the fixture
    eng = Engine(db_path, flows=[FLOWS])
    try:
        with eng.worker():
            eng.start("three_steps", 0, id="warm").result(timeout=30)

            def fill() -> None:
                disk.full = True

            starts = [lambda i=i: eng.start("three_steps", i, id=f"f{i}") for i in range(8)]
            outcomes, _ = together(eng, starts, then=fill)
            disk.full = False
            assert all(isinstance(o, StoreError) and "full" in str(o) for o in outcomes), \
                outcomes
            assert {r["id"] for r in eng.list(all_runs=True)} == {"warm"}
            handles = [eng.start("three_steps", i, id=f"f{i}") for i in range(8)]
            assert [h.result(timeout=30) for h in handles] == [i + 3 for i in range(8)]
        for i in range(8):  # each step ran once: the eager claims of the lost batch did not
            steps = [e for e in eng.history(f"f{i}") if e["type"] == "ActivityCompleted"]
            assert len(steps) == 3
    finally:
        eng.close()


def test_a_nested_write_runs_in_the_transaction_under_way(db_path: Path) -> None:
    eng = Engine(db_path, flows=[FLOWS])
    try:
        committer = eng.runtime.committer
        before = eng.store.commits

        def outer(tx: Tx) -> int:
            return committer.run(lambda inner: 1 if inner is tx else 0) + 1

        assert committer.run(outer) == 2
        assert eng.store.commits - before == 1
    finally:
        eng.close()


def test_a_lone_caller_leads_at_once(db_path: Path) -> None:
    eng = Engine(db_path, flows=[FLOWS])
    try:
        committer = eng.runtime.committer
        batches, before = committer.batches, eng.store.commits
        for i in range(5):
            eng.start("three_steps", i, id=f"l{i}")
        assert committer.batches - batches == 5 and eng.store.commits - before == 5
    finally:
        eng.close()


def test_a_job_that_breaks_a_key_fails_alone(engines: tuple[Engine, Engine]) -> None:
    """A duplicate key inside one job's savepoint (PostgreSQL: a StoreConflict, which its
    caller would do again; SQLite: the constraint error) rolls back that job alone."""
    eng, other = engines
    run_id = eng.start("three_steps", 0, id="keyed").run_id
    committer = eng.runtime.committer

    def log_entry(name: str) -> Callable[[], str]:
        def job(tx: Tx) -> str:
            runs.add_provider_log_entry(tx, time=1.0, worker_id=None, provider=name,
                                        version="1", action="load", message="")
            return name
        return lambda: committer.run(job)

    def duplicate(tx: Tx) -> None:
        runs.add_provider_log_entry(tx, time=1.0, worker_id=None, provider="dup",
                                    version="1", action="load", message="")
        runs.add_event(tx, run_id, Event(1, "WorkflowStarted", 1.0, {}))  # seq 1 exists

    calls = [log_entry("a"), lambda: committer.run(duplicate), log_entry("b")]
    outcomes, commits = together(eng, calls)
    assert commits == 1
    assert outcomes[0] == "a" and outcomes[2] == "b"
    assert isinstance(outcomes[1], StoreConflict | apsw.ConstraintError), outcomes[1]
    assert {row["provider"] for row in other.provider_log(stored=True)} == {"a", "b"}


def test_a_sequential_workflow_takes_no_more_commits_and_every_commit_is_the_committers(
        db_path: Path) -> None:
    """One caller, one run at a time: every commit of the process is one of the
    committer's, and a 3-step workflow still takes its start plus one commit per step
    (the dispatcher's own turns aside)."""
    eng = Engine(db_path, flows=[FLOWS])
    try:
        with eng.worker() as worker:
            eng.start("three_steps", 0).result(timeout=10)  # warm up
            committer = eng.runtime.committer
            commits, batches = eng.store.commits, committer.batches
            ticks, n = worker.ticks, 20
            for i in range(n):
                assert eng.start("three_steps", i).result(timeout=10) == i + 3
            wait_until(lambda: eng.store.commits - commits == committer.batches - batches,
                       message="every batch of the committer commits once (a dispatcher "
                               "turn may still be under way)")
            assert eng.store.commits - commits <= 4 * n + (worker.ticks - ticks)
    finally:
        eng.close()


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The SQL of every statement on connections opened while the test runs."""
    seen: list[str] = []

    def hook(conn: apsw.Connection) -> None:
        conn.trace_v2(apsw.SQLITE_TRACE_STMT,
                      lambda event: seen.append(" ".join(str(event["sql"]).split())))

    apsw.connection_hooks.append(hook)
    try:
        yield seen
    finally:
        apsw.connection_hooks.remove(hook)


def test_an_sqlite_batch_runs_without_savepoints_until_a_job_raises(
        db_path: Path, statements: list[str]) -> None:
    eng = Engine(db_path, flows=[FLOWS])
    try:
        starts = [lambda i=i: eng.start("three_steps", i, id=f"q{i}") for i in range(8)]
        statements.clear()
        outcomes, commits = together(eng, starts)
        assert commits == 1 and [h.id for h in outcomes] == [f"q{i}" for i in range(8)]
        assert not [s for s in statements if s.startswith("SAVEPOINT")]

        calls: list[Callable[[], Any]] = [
            lambda i=i: eng.start("three_steps", i, id=f"r{i}") for i in range(4)]
        calls.insert(2, lambda: eng.signal("nobody", "item", 1))
        statements.clear()
        outcomes, commits = together(eng, calls)
        assert commits == 1  # rolled back and done again, each job (the gate's too) in its
        # own savepoint
        assert isinstance(outcomes[2], NotFound)
        assert [h.id for h in outcomes[:2] + outcomes[3:]] == [f"r{i}" for i in range(4)]
        assert len([s for s in statements if s.startswith("SAVEPOINT")]) == len(calls) + 1
        assert {r["id"] for r in eng.list(all_runs=True)} == \
            {f"q{i}" for i in range(8)} | {f"r{i}" for i in range(4)}
    finally:
        eng.close()


@pytest.mark.parametrize("isolation", ["savepoint", "redo"])
def test_jobs_queued_while_a_lone_job_runs_join_its_commit(db_path: Path, isolation: str
                                                           ) -> None:
    """A job that found the committer idle leads at once; jobs that queue while it runs
    join its transaction (one commit for all), each caller with its own outcome."""
    eng = Engine(db_path, flows=[FLOWS])
    try:
        committer = GroupCommitter(eng.store.write, eng.runtime.advance_lock,
                                   isolation=isolation)
        queued = threading.Event()
        committer.on_queue = lambda n: queued.set() if n >= 4 else None

        log = _log_job

        outcomes: dict[str, Any] = {}

        def call(name: str) -> None:
            try:
                outcomes[name] = committer.run(log(name, fail=name == "j2"))
            except ValueError as err:
                outcomes[name] = err

        def lone(tx: Tx) -> str:
            threads = [threading.Thread(target=call, args=(f"j{i}",)) for i in range(4)]
            for thread in threads:
                thread.start()
            assert queued.wait(30), "the others never queued"
            outcomes["threads"] = threads
            return log("lone")(tx)

        before, batches = eng.store.commits, committer.batches
        assert committer.run(lone) == "lone"
        for thread in outcomes.pop("threads"):
            thread.join(30)
        assert eng.store.commits - before == 1 and committer.batches - batches == 1
        assert isinstance(outcomes.pop("j2"), ValueError)
        assert outcomes == {"j0": "j0", "j1": "j1", "j3": "j3"}
        kept = {row["provider"] for row in eng.provider_log(stored=True)}
        assert kept == {"lone", "j0", "j1", "j3"}
    finally:
        eng.close()


@pytest.mark.parametrize(("callers", "commits"), [(0, 2), (1, 1)])
def test_a_workers_job_joins_only_a_batch_of_several_callers_writes(
        db_path: Path, callers: int, commits: int) -> None:
    """Beside a lone caller's write a worker's (background) job does not join: it leads
    the next batch (which gathers more outcomes for its turn). Once another caller's
    write joined, the batch has several and the worker's job goes along too."""
    eng = Engine(db_path, flows=[FLOWS])
    try:
        committer = eng.runtime.committer
        queued = threading.Event()
        committer.on_queue = lambda n: queued.set() if n >= 1 + callers else None
        outcomes: dict[str, Any] = {}

        def worker_job() -> None:
            outcomes["worker"] = committer.run_job(_log_job("worker"), background=True)[0]

        def caller() -> None:
            outcomes["caller"] = committer.run(_log_job("caller"))

        threads = [threading.Thread(target=worker_job)] + [
            threading.Thread(target=caller) for _ in range(callers)]

        def lone(tx: Tx) -> str:
            for thread in threads:
                thread.start()
            assert queued.wait(30), "the others never queued"
            return _log_job("lone")(tx)

        before = eng.store.commits
        assert committer.run(lone) == "lone"
        for thread in threads:
            thread.join(30)
        assert outcomes == {"worker": "worker", **({"caller": "caller"} if callers else {})}
        assert eng.store.commits - before == commits
        assert committer._foreground == 0  # callers' jobs counted out once (HOLD reads it)
    finally:
        eng.close()
