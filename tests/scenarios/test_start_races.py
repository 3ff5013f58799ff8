"""Every write path that creates runs, raced by two real processes on the same ids.

Start, ``--rerun``, retry, reset and child starts each create a run; continue-as-new
replaces one. Two processes released together by a barrier do the same thing to the same
ids, on SQLite and on PostgreSQL. Afterwards each id has at most one open run, exactly the
runs one caller alone would have made, every caller got an answer (never "no run"), and
every activity ran once.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

import pytest

from onward import Engine, OnwardError
from tests.helpers import executions, wait_until
from tests.scenarios.racing import FLOWS, race

pytestmark = pytest.mark.slow

IDS = [f"id-{i}" for i in range(30)]


def runs_by_id(eng: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every run of every id, oldest first."""
    runs: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for run in sorted(eng.list(all_runs=True), key=lambda r: r["started"]):
        runs[run["id"]].append(run)
    return runs


def open_runs(runs: list[dict[str, Any]]) -> list[str]:
    return [r["run_id"] for r in runs if r["status"] == "running"]


def drain(eng: Engine, ids: list[str]) -> None:
    """Run every open run of ``ids`` to its end with an in-process worker."""
    with eng.worker(concurrency=4):
        for ident in ids:
            eng.handle(ident).result(timeout=30)


def test_concurrent_starts_of_one_id_make_one_run(any_db: Path | str, tmp_path: Path,
                                                  log: Path) -> None:
    a, b = race(any_db, "start", IDS, tmp_path)
    with Engine(any_db, flows=[FLOWS]) as eng:
        runs = runs_by_id(eng)
        for ident in IDS:
            assert len(runs[ident]) == 1, (ident, runs[ident])
            assert a[ident][0] == b[ident][0] == "ok", (a[ident], b[ident])
            (run_a, created_a), (run_b, created_b) = a[ident][1], b[ident][1]
            assert run_a == run_b == runs[ident][0]["run_id"]
            assert sorted([created_a, created_b]) == [False, True]
        drain(eng, IDS)
    assert_each_step_ran_once(log)


def assert_each_step_ran_once(log: Path) -> None:
    """Both steps of every raced id executed exactly once, whoever won the race."""
    done = collections.Counter(e["label"] for e in executions(log))
    assert done == {f"{ident}:{n}": 1 for ident in IDS for n in (1, 2)}


def _closed_runs(db: Path | str, ids: list[str]) -> None:
    with Engine(db, flows=[FLOWS]) as eng:
        for ident in ids:
            eng.start("two_steps", ident, id=ident)
            eng.terminate(ident, "closed for the rerun test")


def test_concurrent_reruns_of_a_closed_id_make_one_new_run(any_db: Path | str,
                                                           tmp_path: Path, log: Path) -> None:
    _closed_runs(any_db, IDS)
    a, b = race(any_db, "rerun", IDS, tmp_path)
    with Engine(any_db, flows=[FLOWS]) as eng:
        runs = runs_by_id(eng)
        for ident in IDS:
            assert len(runs[ident]) == 2, (ident, runs[ident])
            assert len(open_runs(runs[ident])) == 1
            # The loser is handed the winner's new run: one new run, as one rerun makes.
            # (A loser that looked only after the winner committed finds the run open.)
            new_run = open_runs(runs[ident])[0]
            winner, loser = sorted([a[ident], b[ident]], key=lambda r: r != ["ok", [new_run, True]])
            assert winner == ["ok", [new_run, True]], (a[ident], b[ident])
            assert loser in (["ok", [new_run, False]], [
                "BadInput", f"run {ident} is still running; --rerun needs its last run to "
                "have closed"]), loser
        drain(eng, IDS)
    assert_each_step_ran_once(log)


def _failed_runs(db: Path | str, ids: list[str]) -> None:
    with Engine(db, flows=[FLOWS]) as eng:
        with eng.worker(concurrency=2):
            for ident in ids:
                eng.start("fails_at_once", id=ident)
            wait_until(lambda: all(r["status"] == "failed" for r in eng.list()),
                       message="every run failed")


def test_concurrent_retries_of_a_failed_run_make_one_new_run(any_db: Path | str,
                                                             tmp_path: Path) -> None:
    ids = IDS[:20]
    _failed_runs(any_db, ids)
    a, b = race(any_db, "retry", ids, tmp_path)
    with Engine(any_db, flows=[FLOWS]) as eng:
        runs = runs_by_id(eng)
        for ident in ids:
            assert [r["status"] for r in runs[ident]] == ["failed", "running"], runs[ident]
            new_run = runs[ident][1]["run_id"]
            winner, loser = sorted([a[ident], b[ident]], key=lambda r: not r[1].startswith(
                "retrying"))
            assert winner == ["ok", f"retrying {ident}: new run {new_run} continues from "
                              "event 1 with today's code"], (a[ident], b[ident])
            # told of the winner's run; or, having looked only after the winner committed,
            # that the (new) current run has nothing to retry
            assert loser in (
                ["ok", f"{ident} was already retried a moment ago: new run {new_run}"],
                ["BadInput", f"run {ident} (run {new_run}, retried from "
                 f"{runs[ident][0]['run_id']}) is not failed, stuck or waiting out a retry "
                 "backoff: nothing to retry"]), loser


def test_concurrent_resets_of_a_run_make_one_new_run(any_db: Path | str,
                                                     tmp_path: Path) -> None:
    """Both operators reset the failed run they were looking at (by its run id)."""
    ids = IDS[:20]
    _failed_runs(any_db, ids)
    with Engine(any_db, flows=[FLOWS]) as eng:
        failed = {ident: runs[0]["run_id"] for ident, runs in runs_by_id(eng).items()}
        a, b = race(any_db, "reset", list(failed.values()), tmp_path)
        runs = runs_by_id(eng)
        for ident in ids:
            assert [r["status"] for r in runs[ident]] == ["failed", "running"], runs[ident]
            old, new_run = failed[ident], runs[ident][1]["run_id"]
            winner, loser = sorted([a[old], b[old]], key=lambda r: r != ["ok", [new_run, True]])
            assert winner == ["ok", [new_run, True]], (a[old], b[old])
            assert loser in (["ok", [new_run, False]], [
                "NotCurrentRun", f"run {old} is not the current run of {ident}; its current "
                f"run is {new_run} (running): act on {ident}"]), loser


def test_concurrent_child_starts_of_one_id_make_one_child(any_db: Path | str,
                                                          tmp_path: Path) -> None:
    ids = [f"kid-{i}" for i in range(12)]
    race(any_db, "child", ids, tmp_path)
    with Engine(any_db, flows=[FLOWS]) as eng:
        with eng.worker(concurrency=2):
            def parents_waiting() -> bool:
                runs = runs_by_id(eng)
                return all(len(runs[f"{k}-parent-{i}"]) == 1 for k in ids for i in (0, 1))
            wait_until(parents_waiting, message="both parents of every child started")
            runs = runs_by_id(eng)
            for kid in ids:
                assert len(runs[kid]) == 1, (kid, runs[kid])
            for kid in ids:
                eng.signal(kid, "go")
            results = sorted(str(eng.handle(f"{kid}-parent-{i}").result(timeout=30))
                             for kid in ids for i in (0, 1))
    assert results.count("went") == len(ids)
    refused = [r for r in results if r != "went"]
    assert len(refused) == len(ids) and all("already has an open run" in r for r in refused)


def test_a_rerun_racing_a_retry_of_one_failed_run_makes_one_new_run(any_db: Path | str,
                                                                    tmp_path: Path) -> None:
    ids = IDS[:20]
    _failed_runs(any_db, ids)
    rerun, retry = race(any_db, "rerun_or_retry", ids, tmp_path)
    with Engine(any_db, flows=[FLOWS]) as eng:
        runs = runs_by_id(eng)
    for ident in ids:
        assert [r["status"] for r in runs[ident]] == ["failed", "running"], runs[ident]
        new_run = runs[ident][1]["run_id"]
        if rerun[ident] == ["ok", [new_run, True]]:  # the rerun made it
            assert retry[ident][0] == "BadInput" and "nothing to retry" in retry[ident][1]
        else:  # the retry made it; the rerun was handed its run, or looked too late
            assert retry[ident] == ["ok", f"retrying {ident}: new run {new_run} continues "
                                    "from event 1 with today's code"], retry[ident]
            assert rerun[ident] in (["ok", [new_run, False]], [
                "BadInput", f"run {ident} is still running; --rerun needs its last run to "
                "have closed"]), rerun[ident]


def test_a_child_start_racing_a_start_of_its_id_makes_one_run(any_db: Path | str,
                                                              tmp_path: Path) -> None:
    ids = [f"kid-{i}" for i in range(12)]
    parents, starts = race(any_db, "child_or_start", ids, tmp_path)
    with Engine(any_db, flows=[FLOWS]) as eng:
        runs = runs_by_id(eng)
        for kid in ids:
            assert len(runs[kid]) == 1 and len(runs[f"{kid}-parent-0"]) == 1, runs[kid]
            assert starts[kid] == ["ok", [runs[kid][0]["run_id"], starts[kid][1][1]]]


def test_starts_and_signals_racing_continue_as_new_always_find_the_current_run(
        any_db: Path | str) -> None:
    """A run that continues as new over and over, while another engine starts and signals
    its id: every call finds the id's current run; there is never a second open run."""
    worker_side = Engine(any_db, flows=[FLOWS])
    caller = Engine(any_db, flows=[FLOWS])
    errors: list[str] = []
    answers = collections.Counter[str]()
    try:
        with worker_side.worker(concurrency=2):
            looping = worker_side.start("counts_down", 60, id="loop")
            stop = threading.Event()

            def hammer() -> None:
                while not stop.is_set():
                    try:
                        handle = caller.start("counts_down", 5, id="loop")
                        answers["created" if handle.created else "existing"] += 1
                        caller.signal("loop", "poke", 1)
                        answers["signaled"] += 1
                    except OnwardError as err:
                        if "it has completed" not in str(err):
                            errors.append(f"{type(err).__name__}: {err}")

            threads = [threading.Thread(target=hammer) for _ in range(2)]
            for thread in threads:
                thread.start()
            try:
                assert looping.result(timeout=60) == 0
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=30)
        runs = runs_by_id(caller)["loop"]
    finally:
        caller.close()
        worker_side.close()
    assert errors == []
    assert answers["created"] == 0 and answers["existing"] > 0
    assert len(runs) == 61 and len(open_runs(runs)) == 0


def test_three_racers_still_make_one_run_per_id(any_db: Path | str, tmp_path: Path) -> None:
    ids = IDS[:10]
    reports = race(any_db, "start", ids, tmp_path, processes=3)
    with Engine(any_db, flows=[FLOWS]) as eng:
        runs = runs_by_id(eng)
        for ident in ids:
            assert len(runs[ident]) == 1
            assert [r[1][1] for r in (rep[ident] for rep in reports)].count(True) == 1
