"""The runtime layer under ``Engine``: in-process workers started and stopped through the
public API, the change feed's close announcements, and ``find_run``."""

from __future__ import annotations

from pathlib import Path

import pytest

from onward import Engine, NotFound

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")


def test_start_worker_runs_this_engines_work_and_stop_worker_stops_it(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    worker = eng.start_worker(concurrency=2)
    assert eng.runtime.workers == [worker]
    assert eng.start("three_steps", 1).result(timeout=20) == 4
    eng.stop_worker(worker, grace=1.0)
    assert eng.runtime.workers == []
    assert worker.error is None
    with eng.store.read() as tx:
        assert eng.runtime.find_run(tx, eng.list()[0]["id"]).status == "completed"


def test_stop_worker_without_a_worker_stops_every_in_process_worker(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine(flows=[FLOWS])
    eng.start_worker(concurrency=1)
    eng.start_worker(concurrency=1)
    eng.stop_worker()
    assert eng.runtime.workers == []
    handle = eng.start("three_steps", 1)  # no worker: nothing runs it
    assert handle.status() == "running"


def test_a_close_wakes_its_own_waiters_once_its_transaction_committed(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine()
    feed = eng.runtime.feed
    mine, other = feed.watch_close("r1"), feed.watch_close("r2")
    with eng.store.write() as tx:
        feed.count_close(tx, "r1")  # (as the advancer does inside a transaction)
    assert not mine.wait(0)  # committed, not announced yet
    feed.notify(tx)  # (after the commit)
    assert mine.wait(0)
    assert mine.row is None  # this transaction published no close event: the waiter reads
    assert not other.wait(0)  # another run's waiter sleeps on
    assert feed.watch_close("r1") is None  # a waiter that comes after the close reads at once
    feed.unwatch("r2", other)
    with eng.store.write() as tx:
        pass
    feed.notify(tx)  # a commit that closed nothing announces no close
    assert feed.watch_close("r2") is not None


def test_find_run_names_the_missing_id(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng: Engine = make_engine()
    with eng.store.read() as tx, pytest.raises(NotFound, match="no run with id 'nope'"):
        eng.runtime.find_run(tx, "nope")
