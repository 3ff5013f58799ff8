"""The per-step fast path: commits per step, index use, id order, thread reuse.

Counts here are deterministic properties of the engine; timings live in ``bench/``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onward import Engine
from onward.client import time_ordered_id
from onward.errors import WorkflowFailed
from onward.executor import _ThreadPool
from onward.store import queues
from tests.helpers import executions, wait_until

FLOWS = str(Path(__file__).parents[1] / "flows" / "basic.py")


def test_a_sequential_workflow_commits_once_per_step_plus_its_start(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    with eng.worker() as worker:
        eng.start("three_steps", 0).result(timeout=10)  # warm up
        commits, ticks, inline = eng.store.commits, worker.ticks, worker.inline_settled
        n = 20
        for i in range(n):
            assert eng.start("three_steps", i).result(timeout=10) == i + 3
        dispatcher_turns = worker.ticks - ticks
        # Each start is one commit (its first workflow task rides along) and each step one
        # more, recorded in the thread that ran it; the dispatcher's own turns (upkeep,
        # or a step it recorded instead) are the only other commits.
        assert eng.store.commits - commits <= 4 * n + dispatcher_turns
        # One workflow in flight: a dispatcher turn records at most one of its steps.
        assert worker.inline_settled - inline >= 3 * n - dispatcher_turns


def test_result_of_a_run_this_process_closes_reads_nothing(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    reads = [0]
    real_read = eng.store.read

    def counting_read():  # type: ignore[no-untyped-def]
        reads[0] += 1
        return real_read()

    with eng.worker():
        eng.start("three_steps", 0).result(timeout=10)  # warm up
        eng.store.read = counting_read  # type: ignore[method-assign]
        for i in range(5):
            handle = eng.start("three_steps", i)
            before = reads[0]
            assert handle.result(timeout=10) == i + 3
            # the close this process announced carried the run's result: no read at all
            assert reads[0] - before == 0
        failing = eng.start("refused", "non_retryable")
        before = reads[0]
        with pytest.raises(WorkflowFailed) as failed:
            failing.result(timeout=10)
        assert failed.value.status == "failed" and reads[0] - before == 0
        slow = eng.start("sleeper", 0.2)  # still open when result()'s first wait ends
        before = reads[0]
        assert slow.result(timeout=10) == "slept True"
        assert reads[0] - before >= 1  # it read, found the run open, and waited on


def test_a_turn_that_only_records_outcomes_looks_for_no_other_work(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    with eng.worker() as worker:
        eng.start("three_steps", 0).result(timeout=10)  # warm up
        worker.executor.settle_inline = None  # every outcome goes to a dispatcher turn
        scans: list[int] = []
        upkeep: list[int] = []
        real_scan, real_upkeep = worker._advance_pending, worker._maintain

        def scan(*args):  # type: ignore[no-untyped-def]
            scans.append(1)
            return real_scan(*args)

        def maintain(*args):  # type: ignore[no-untyped-def]
            upkeep.append(1)
            return real_upkeep(*args)

        worker._advance_pending = scan  # type: ignore[method-assign]
        worker._maintain = maintain  # type: ignore[method-assign]
        ticks = worker.ticks
        for i in range(10):
            assert eng.start("three_steps", i).result(timeout=10) == i + 3
        assert worker.ticks - ticks >= 30  # each step's outcome was recorded by a turn
        # Only the periodic upkeep looked for due timers and pending workflow tasks: an
        # outcome of this worker's own attempt is no news of other work.
        assert len(scans) <= len(upkeep)


def test_runs_beyond_one_batch_of_pending_tasks_start_without_waiting_for_upkeep(
        make_engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from onward import worker as worker_module
    monkeypatch.setattr(worker_module, "BATCH", 5)  # a turn takes 5 pending runs at most
    monkeypatch.setattr(worker_module, "MAINTENANCE_INTERVAL", 3600.0)  # upkeep: once
    eng: Engine = make_engine(flows=[FLOWS])
    handles = [eng.start("three_steps", i) for i in range(20)]  # no worker yet: all pending
    with eng.worker():
        # A full batch makes the next turn look again; the outcomes of the first five do
        # not (they are no news), so without that the rest would wait for the upkeep.
        for i, handle in enumerate(handles):
            assert handle.result(timeout=20) == i + 3


def test_result_after_the_worker_stopped_reads_without_waiting(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    with eng.worker():
        handle = eng.start("three_steps", 1)
        wait_until(lambda: eng.counts()["completed"] == 1)
    waits = []
    eng.wait_for_close = lambda *args: waits.append(args)  # type: ignore[method-assign]
    assert handle.result(timeout=10) == 4
    assert waits == []  # no close can be announced any more: it read at once


def test_hot_queries_use_their_indexes(tmp_path: Path) -> None:
    Engine(tmp_path / "plan.db").close()
    conn = apsw.Connection(str(tmp_path / "plan.db"))
    try:
        def plan(sql: str, params: tuple[object, ...]) -> str:
            return " ".join(str(row[3]) for row in conn.execute(
                "EXPLAIN QUERY PLAN " + sql, params))

        pending = plan(queues.due_workflow_tasks_sql(3, ""), ("a", "b", "c", 10))
        assert "runs_pending" in pending and "TEMP B-TREE" not in pending, pending
        children = plan(queues.CHILDREN_SQL, ("r",))
        assert "runs_by_parent" in children, children
        claim = plan(queues.ready_attempts_sql(2, ""), (1.0, "a", "b", 10))
        assert "activity_ready" in claim, claim
        timers = plan(queues.due_timers_sql(""), (1.0, 10))
        assert "timers_due" in timers and "TEMP B-TREE" not in timers, timers
    finally:
        conn.close()


def test_run_ids_are_32_hex_digits_ordered_by_time() -> None:
    first = time_ordered_id()
    time.sleep(0.002)  # ids order by the millisecond they were made in
    later = [time_ordered_id() for _ in range(100)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in [first, *later])
    assert all(first < i for i in later)
    assert len(set(later)) == 100  # same millisecond, distinct random tails


def test_closing_a_run_withdraws_what_it_left_outstanding(make_engine, log: Path) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    with eng.worker():
        handle = eng.start("leaves_work", id="lw")
        assert handle.result(timeout=10) == "done"
    with eng.store.read() as tx:
        for table in ("activity_tasks", "timers"):
            assert tx.scalar(f"SELECT count(*) FROM {table} WHERE run_id = ?",
                             (handle.run_id,)) == 0
    scheduled = [e["type"] for e in eng.show("lw")["history"]]
    assert "ActivityScheduled" in scheduled and "TimerStarted" in scheduled
    assert executions(log) == []  # the activity never started


def test_a_step_submitted_while_recording_runs_next_in_the_same_thread() -> None:
    ran: dict[str, str] = {}
    other_ran, done = threading.Event(), threading.Event()
    pool: _ThreadPool

    def run(name: str, follow: str | None, _unused: object) -> None:
        ran[name] = threading.current_thread().name
        if name == "from-activity-code":
            other_ran.set()
        elif follow is None:
            done.set()
        else:
            # Activity code that starts work and waits for it must not deadlock: its job
            # runs on another thread while this one is still busy.
            pool.submit(("from-activity-code", None, None))  # type: ignore[arg-type]
            assert other_ran.wait(5)
            with pool.keep_next():  # as when recording the outcome
                pool.submit((follow, None, None))  # type: ignore[arg-type]

    pool = _ThreadPool(4, run)  # type: ignore[arg-type]
    with pool.keep_next():  # outside the pool's threads: no effect
        pool.submit(("first", "second", None))  # type: ignore[arg-type]
    assert done.wait(5)
    pool.shutdown(wait=True)
    assert ran["second"] == ran["first"]  # no hand-off to another thread
    assert ran["from-activity-code"] != ran["first"]


def test_the_pool_drops_queued_jobs_at_shutdown() -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def run(name: str, _a: object, _b: object) -> None:
        ran.append(name)
        started.set()
        release.wait(5)

    pool = _ThreadPool(1, run)  # type: ignore[arg-type]
    pool.submit(("busy", None, None))  # type: ignore[arg-type]
    assert started.wait(5)
    pool.submit(("queued", None, None))  # type: ignore[arg-type]
    pool.shutdown(wait=False)  # while "busy" still runs: "queued" is dropped
    release.set()
    for thread in pool._threads:
        thread.join(5)
        assert not thread.is_alive()
    assert ran == ["busy"]


def test_a_run_whose_task_cannot_be_recorded_is_held_without_stalling_its_batch(
        make_engine, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Turns run without per-run savepoints; when one run's workflow task fails to be
    recorded, the turn is done again with each run isolated, and only that run is held."""
    from onward.advance import Advancer
    record_completion = Advancer._on_WorkflowCompleted

    def fails_for_poison(self, tx, run, command, now, outcome):  # type: ignore[no-untyped-def]
        if run.workflow_id == "poison":
            raise RuntimeError("cannot record this one")
        return record_completion(self, tx, run, command, now, outcome)

    monkeypatch.setattr(Advancer, "_on_WorkflowCompleted", fails_for_poison)
    eng: Engine = make_engine(flows=[FLOWS])
    healthy = [eng.start("three_steps", i, id=f"ok-{i}") for i in range(8)]
    eng.start("three_steps", 100, id="poison")  # all queued before a worker exists
    with eng.worker() as worker:
        assert [h.result(timeout=10) for h in healthy] == [i + 3 for i in range(8)]
        shown = wait_until(lambda: (s := eng.show("poison"))["stuck"] and s, timeout=10,
                           message="poison held")
        assert worker._isolate is False  # back to the fast path after the isolated turn
    assert shown["status"] == "running" and shown["stuck"]
    assert "could not be recorded: RuntimeError: cannot record this one" in shown["stuck_reason"]
    assert [e["type"] for e in shown["history"]][-2:] == ["ActivityCompleted",
                                                          "WorkflowTaskFailed"]


def test_a_start_whose_first_task_cannot_be_recorded_holds_the_run_and_returns(
        make_engine, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The first workflow task of an eager start runs without a savepoint; when it cannot
    be recorded the start is done again with the task isolated, and the run is held."""
    from onward.advance import Advancer
    schedule = Advancer._on_ActivityScheduled
    tries: list[str] = []

    def fails_for_poison(self, tx, run, command, now, outcome):  # type: ignore[no-untyped-def]
        if run.workflow_id == "poison":
            tries.append(run.run_id)
            raise RuntimeError("cannot record this one")
        return schedule(self, tx, run, command, now, outcome)

    monkeypatch.setattr(Advancer, "_on_ActivityScheduled", fails_for_poison)
    eng: Engine = make_engine(flows=[FLOWS])
    with eng.worker():
        handle = eng.start("three_steps", 1, id="poison")
        assert handle.created
        assert eng.start("three_steps", 1, id="fine").result(timeout=10) == 4
        shown = eng.show("poison")
    # without a savepoint, then isolated; a start that shared its batch with a worker's
    # turn has that batch done again isolated first (SQLite's redo: one more try, undone)
    assert len(tries) in (2, 3)
    assert shown["status"] == "running" and shown["stuck"]
    assert "could not be recorded: RuntimeError: cannot record this one" in shown["stuck_reason"]
    assert [e["type"] for e in shown["history"]] == ["WorkflowStarted", "WorkflowTaskFailed"]
    with eng.store.read() as tx:  # one run of the id (the lost try left nothing)
        assert tx.scalar("SELECT count(*) FROM runs WHERE workflow_id = 'poison'") == 1


def test_a_start_while_the_local_worker_drains_leaves_its_run_due(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    worker = eng.start_worker()
    # its first turn done (one under way would join the start's transaction and run it)
    wait_until(lambda: worker.ticks and eng.runtime.committer.idle,
               message="the worker's first turn")
    worker._draining = True  # as while stop() lets running attempts finish
    handle = eng.start("three_steps", 1)
    with eng.store.read() as tx:
        assert tx.scalar("SELECT wf_pending FROM runs WHERE run_id = ?", (handle.run_id,)) == 1
    eng.stop_worker(worker)
    with eng.worker():  # a later worker's dispatcher runs it
        assert eng.handle(handle.id).result(timeout=10) == 4


@pytest.mark.parametrize("value", [
    [], [1, "a", None, True, False, -5], ["é", 1.5, [1, 2], {"k": "v"}], [2**70],
    ["x" * 2000], list(range(100))])
def test_checked_arguments_read_back_as_json_would_give_them(value: list[object]) -> None:
    from onward import payloads
    checked = payloads.check(value, "arguments")
    assert checked == json.loads(json.dumps(value)) and checked is not value


def test_checked_arguments_refuse_what_json_cannot_hold() -> None:
    from onward import payloads
    from onward.errors import PayloadError
    with pytest.raises(PayloadError, match="not JSON"):
        payloads.check([10 ** 5000], "arguments")
    with pytest.raises(PayloadError, match="not JSON"):
        payloads.check([float("nan")], "arguments")


# -- what one sequential workflow costs the store (counts, never timings) --------------------

@pytest.fixture
def traced() -> Iterator[dict[str, list[tuple[str, str]]]]:
    """Every statement on the connections opened while the test runs, as (thread, SQL);
    their automatic checkpoints are off, so the WAL file keeps every page written."""
    seen: dict[str, list[tuple[str, str]]] = {"sql": []}

    def trace(_cursor: apsw.Cursor, sql: str, _bindings: object) -> bool:
        seen["sql"].append((threading.current_thread().name, " ".join(sql.split())))
        return True

    def hook(conn: apsw.Connection) -> None:
        conn.exec_trace = trace
        conn.set_wal_hook(lambda *_args: apsw.SQLITE_OK)  # (replaces auto-checkpointing)

    apsw.connection_hooks.append(hook)
    try:
        yield seen
    finally:
        apsw.connection_hooks.remove(hook)


def _wal_pages_by_btree(db: Path) -> dict[str, int]:
    """How many page images the WAL file holds for each table or index."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        owner = {page: name for name, page in conn.execute("SELECT name, pageno FROM dbstat")}
        size = int(conn.execute("PRAGMA page_size").fetchall()[0][0])
    finally:
        conn.close()
    data = Path(f"{db}-wal").read_bytes()
    counts: dict[str, int] = {}
    for offset in range(32, len(data) - 24, 24 + size):  # frame header, then the page
        page = int.from_bytes(data[offset:offset + 4], "big")
        name = owner.get(page, "?")
        counts[name] = counts.get(name, 0) + 1
    return counts


def _checkpoint(db: Path) -> None:
    conn = apsw.Connection(str(db))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def test_a_sequential_workflow_writes_a_fixed_set_of_rows_with_few_statements(
        make_engine, db_path: Path, traced) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    with eng.worker() as worker:
        eng.start("three_steps", 0).result(timeout=10)  # warm up
        traced["sql"].clear()
        ticks, n = worker.ticks, 20
        for i in range(n):
            assert eng.start("three_steps", i).result(timeout=10) == i + 3
        ticks = worker.ticks - ticks
        traced_sql = list(traced["sql"])  # (before the worker's deregistration)
    statements = [sql for thread, sql in traced_sql if thread != "onward-dispatcher"]
    writes = [sql.split(" (")[0].split(" SET")[0].split(" WHERE")[0]
              for _thread, sql in traced_sql  # (a dispatcher turn may record a step)
              if sql.startswith(("INSERT", "UPDATE", "DELETE"))]
    per_workflow = {kind: writes.count(kind) / n for kind in set(writes)
                    if kind.split()[-1] in ("runs", "events", "activity_tasks")}
    # start: the run and WorkflowStarted; each of 3 steps: ActivityScheduled, its queue row
    # (claimed in the same insert), then ActivityCompleted as the row is deleted; the
    # close: WorkflowCompleted. The run row is saved once per transaction.
    assert per_workflow == {"INSERT INTO runs": 1, "INSERT INTO events": 8,
                            "INSERT INTO activity_tasks": 3, "DELETE FROM activity_tasks": 3,
                            "UPDATE runs": 4}, per_workflow
    # Only the close changes the status: the other saves leave its two indexes alone.
    status_saves = [s for _, s in traced_sql if s.startswith("UPDATE runs SET status")]
    assert len(status_saves) == n
    # Four transactions (start, three steps); everything else is the run's row read once
    # per step. The dispatcher's own turns are not counted.
    assert statements.count("BEGIN IMMEDIATE") <= 4 * n
    # Nothing else: the first workflow task runs in the start's transaction without a
    # savepoint, and result() takes the closed run from the close it is told of (no read).
    assert not [s for s in statements if "SAVEPOINT" in s or s == "BEGIN"], statements
    assert len(statements) <= 30 * n + 10 * ticks, len(statements) / n


def _has_dbstat() -> bool:
    """Whether this SQLite was built with the dbstat table (apsw's older wheels were not)."""
    conn = apsw.Connection(":memory:")
    try:
        conn.execute("SELECT count(*) FROM dbstat").fetchall()
        return True
    except apsw.SQLError:
        return False
    finally:
        conn.close()


@pytest.mark.skipif(not _has_dbstat(), reason="this SQLite has no dbstat table: the WAL's "
                    "pages cannot be traced to their b-trees")
def test_steps_leave_the_status_indexes_alone(make_engine, db_path: Path,  # type: ignore[no-untyped-def]
                                              traced) -> None:
    eng: Engine = make_engine(flows=[FLOWS])
    with eng.worker():
        eng.start("three_steps", 0).result(timeout=10)  # warm up
        _checkpoint(db_path)
        n = 20
        for i in range(n):
            assert eng.start("three_steps", i).result(timeout=10) == i + 3
        pages = _wal_pages_by_btree(db_path)
    # Each run's row enters runs_by_status and runs_open when it starts and moves when it
    # closes: one page each time, and none for the steps in between.
    assert pages.get("runs_by_status", 0) <= 2 * n, pages
    assert pages.get("runs_open", 0) <= 2 * n, pages
    assert pages.get("runs", 0) <= 4 * n + 2, pages  # the run row, once per commit
    # Its closed time too enters runs_by_close when it starts and moves when it closes.
    assert pages.get("runs_by_close", 0) <= 2 * n + 2, pages
    # The first workflow task runs in the start's transaction: the run is never due.
    assert pages.get("runs_pending", 0) == 0, pages


# -- JSON written and read by msgspec must mean what the standard library's would -----------

_STDLIB = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_scalars = st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63) | \
    st.floats() | st.text(max_size=8) | st.just("\ud800") | \
    st.just(5000).map(lambda digits: 10 ** digits)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.tuples(inner, inner) | st.frozensets(st.integers(), max_size=2)
                       | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=4),
                       max_leaves=12)


def _outcome(fn, value):  # type: ignore[no-untyped-def]
    try:
        return "ok", json.loads(fn(value))
    except Exception as err:  # noqa: BLE001 - the kind of failure is the result
        return "raised", type(err).__name__


@settings(max_examples=400, deadline=None)
@given(_values)
def test_bookkeeping_json_encodes_as_the_standard_encoder_would(value: object) -> None:
    from onward import payloads
    expected = _outcome(_STDLIB, value)
    assert _outcome(payloads.encode, value) == expected  # same values, or the same refusal
    got = _outcome(lambda v: payloads.dumps(v, "x"), value)
    if expected[0] == "ok" and got[0] == "ok":
        assert got == expected
    else:  # dumps refuses what the standard encoder refuses (and also too much or bad UTF-8)
        assert got[0] == "raised"


@settings(max_examples=400, deadline=None)
@given(_values.map(lambda v: _outcome(lambda x: json.dumps(x, allow_nan=True), v))
       .filter(lambda o: o[0] == "ok").map(lambda o: json.dumps(o[1], allow_nan=True))
       | st.text(max_size=12))
def test_stored_json_reads_back_as_json_loads_would(text: str) -> None:
    from onward import payloads

    def read(fn):  # type: ignore[no-untyped-def]
        try:
            return "ok", repr(fn(text))  # repr: NaN equals itself, -0.0 differs from 0
        except Exception as err:  # noqa: BLE001 - the kind of failure is the result
            return "raised", type(err).__name__

    assert read(payloads.decode) == read(json.loads)


def test_saving_a_run_writes_its_status_only_when_it_changed(make_engine) -> None:  # type: ignore[no-untyped-def]
    from onward import history
    eng: Engine = make_engine(flows=[FLOWS])
    with eng.store.write() as tx:
        run = history.insert_run(tx, run_id="r1", workflow_id="w1", workflow="three_steps",
                                 args=[1], now=1.0, first_of_id=True)
        run.step, run.last_seq = "stepping", 5
        history.save_run_state(tx, run)  # status unchanged: the other columns still saved
    with eng.store.write() as tx:
        stored = history.get_run(tx, "r1", lock=True)
        assert stored is not None
        assert (stored.status, stored.step, stored.last_seq) == ("running", "stepping", 5)
        stored.status, stored.result, stored.closed = "completed", "4", 2.0
        history.save_run_state(tx, stored)
    with eng.store.read() as tx:
        closed = history.get_run(tx, "r1")
        assert closed is not None
        assert (closed.status, closed.result, closed.closed) == ("completed", "4", 2.0)
        assert tx.scalar("SELECT count(*) FROM runs WHERE status = 'running'") == 0
