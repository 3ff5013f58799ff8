"""The Onward sections: sequential and concurrent throughput, replay, recovery, memory.

Each function takes a fresh directory, does its work on new database files there, and
returns plain figures (a dict); printing and ratios are ``bench.__main__``'s job.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.helpers import WorkerProcess, env_for, wait_until

from .common import (
    BASIC_FLOWS,
    BENCH_FLOWS,
    REPO,
    THROUGHPUT_WORKFLOW,
    BenchError,
    count_fsyncs,
    proc_status,
    strace_path,
)
from .shapes import latency_stats


def _engine(db: Path, *flows: Path, **options: Any) -> Any:
    from onward import Engine
    return Engine(db, flows=[str(f) for f in (flows or (BASIC_FLOWS,))], **options)


def _worker(db: Path | str, log: Path, *, flows: Path = BASIC_FLOWS, concurrency: int = 4,
            env: dict[str, str] | None = None) -> WorkerProcess:
    """``onward worker`` on ``db`` in a child process, its stderr in ``log``."""
    return WorkerProcess(db, flows=[flows], concurrency=concurrency, env=env, log=log,
                         cwd=REPO)


def _start_many(eng: Any, workflow: str, n: int, arg: Any = None) -> float:
    """Start ``n`` runs with ``eng.start`` (one commit each); seconds taken."""
    start = time.perf_counter()
    for i in range(n):
        eng.start(workflow, i if arg is None else arg)
    return time.perf_counter() - start


def _wait_completed(eng: Any, n: int, timeout: float, interval: float = 0.01) -> float:
    """Poll ``eng.counts()`` until ``n`` runs completed; perf_counter time when seen.

    With a worker in this process, the closes it announces are awaited first (no read of
    the store meanwhile: a count every 10 ms took ~10 % of a drain's CPU, under the GIL
    the engine needs); the counts then confirm."""
    counts: dict[str, int] = {}
    feed = eng.runtime.feed
    if eng.runtime.workers:
        seen = feed.closes_seen  # (before the count: a close in between ends the wait early)
        target = seen + n - eng.counts()["completed"]
        deadline = time.monotonic() + timeout
        while feed.closes_seen < target and time.monotonic() < deadline and \
                eng.runtime.workers:
            feed.wait_for_close(0.05, feed.closes_seen)

    def completed() -> float | None:
        counts.update(eng.counts())
        if counts["completed"] >= n:
            return time.perf_counter()
        if counts.get("failed") or counts.get("stuck"):
            raise BenchError(f"runs went wrong while draining: {_brief(counts)}")
        return None

    return float(wait_until(completed, timeout, lambda: f"{n} runs to complete (only "
                            f"{counts['completed']} did: {_brief(counts)})", interval))


def _brief(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v)


# -- seq ------------------------------------------------------------------------------------
def sequential(tmp: Path, n: int, probe: tuple[int, int] | None) -> dict[str, Any]:
    """``n`` three-step runs one after another (start, then result) on an in-process worker."""
    db = tmp / "seq.db"
    with _engine(db, BENCH_FLOWS) as eng, eng.worker(concurrency=8):
        for i in range(5):  # warm-up: imports, caches, the WAL file
            eng.start(THROUGHPUT_WORKFLOW, -i).result(timeout=60)
        commits0 = eng.store.commits
        latencies = []
        start = time.perf_counter()
        for i in range(n):
            began = time.perf_counter()
            result = eng.start(THROUGHPUT_WORKFLOW, i).result(timeout=60)
            latencies.append(time.perf_counter() - began)
            if result != i + 3:
                raise BenchError(f"{THROUGHPUT_WORKFLOW}({i}) returned {result!r}")
        elapsed = time.perf_counter() - start
        commits = eng.store.commits - commits0
        with eng.store.read() as tx:
            sqlite = {"journal_mode": tx.scalar("PRAGMA journal_mode"),
                      "synchronous": tx.scalar("PRAGMA synchronous")}
    out: dict[str, Any] = {"sqlite": sqlite,
        "workflows": n, "seconds": elapsed, "workflows_per_s": n / elapsed,
        "steps_per_s": 3 * n / elapsed, "commits_per_workflow": commits / n,
        "commits_per_step": commits / (3 * n), "fsyncs_per_workflow": None,
        **latency_stats(latencies),
    }
    if probe:
        out["fsyncs_per_workflow"], out["fsync_note"] = fsyncs_per_unit(
            tmp, "onward-seq", probe)
    return out


def fsyncs_per_unit(tmp: Path, what: str, sizes: tuple[int, int]) -> tuple[float | None, str]:
    """fsync+fdatasync calls per unit of ``bench.probe WHAT``, by difference of two runs."""
    if strace_path() is None:
        return None, "n/a (strace not installed)"
    counts = []
    try:
        for n in sizes:
            db = tmp / f"probe-{what}-{n}-{uuid.uuid4().hex[:6]}.db"
            total, _ = count_fsyncs([sys.executable, "-m", "bench.probe", what, "--db",
                                     str(db), "--n", str(n)], tmp)
            counts.append(total)
    except BenchError as err:
        return None, f"n/a ({err})"
    per = (counts[1] - counts[0]) / (sizes[1] - sizes[0])
    return per, f"strace -f -c, ({counts[1]} - {counts[0]}) / ({sizes[1]} - {sizes[0]})"


# -- drain ----------------------------------------------------------------------------------
def concurrent_inprocess(tmp: Path, n: int, concurrency: int = 32) -> dict[str, Any]:
    """Start ``n`` runs, then drain them with one in-process worker."""
    db = tmp / "conc-inproc.db"
    with _engine(db, BENCH_FLOWS) as eng:
        started = _start_many(eng, THROUGHPUT_WORKFLOW, n)
        commits0 = eng.store.commits
        start = time.perf_counter()
        with eng.worker(concurrency=concurrency):
            end = _wait_completed(eng, n, timeout=max(120.0, n / 5))
            commits = eng.store.commits - commits0
        elapsed = end - start
    return {"workflows": n, "concurrency": concurrency, "start_seconds": started,
            "starts_per_s": n / started, "seconds": elapsed, "workflows_per_s": n / elapsed,
            "steps_per_s": 3 * n / elapsed, "commits_per_workflow": commits / n}


def concurrent_processes(tmp: Path, n: int, processes: int = 2, concurrency: int = 32
                         ) -> dict[str, Any]:
    """Start ``n`` runs, then drain them with ``processes`` ``onward worker`` processes."""
    db = tmp / "conc-procs.db"
    with _engine(db, BENCH_FLOWS) as eng:
        _start_many(eng, THROUGHPUT_WORKFLOW, n)
        return drain_by_processes(eng, db, tmp, "conc", n, processes, concurrency,
                                  timeout=max(120.0, n / 5), interval=0.02)


def drain_by_processes(eng: Any, db: Path | str, tmp: Path, tag: str, n: int, processes: int,
                       concurrency: int, *, timeout: float, interval: float) -> dict[str, Any]:
    """Launch ``processes`` worker processes on ``db`` and wait until ``n`` runs completed.

    The drain is timed from the first worker's registration (the ``workers.started``
    column, written just before its dispatcher begins) to the moment all have completed;
    the time from launching the processes is reported too.
    """
    launched_wall = time.time()
    launched = time.perf_counter()
    workers = [_worker(db, tmp / f"{tag}-worker-{k}.log", flows=BENCH_FLOWS,
                       concurrency=concurrency) for k in range(processes)]
    try:
        end = _wait_completed(eng, n, timeout=timeout, interval=interval)
        end_wall = time.time()
        with eng.store.read() as tx:
            first = tx.scalar("SELECT min(started) FROM workers")
            registered = tx.scalar("SELECT count(*) FROM workers")
    except (BenchError, AssertionError) as err:
        raise BenchError(f"{err}; worker log: {workers[0].tail(600)}") from None
    finally:
        for w in workers:
            w.stop()
    with_start = end - launched
    began = launched_wall if first is None or not launched_wall <= float(first) <= end_wall \
        else float(first)
    elapsed = end_wall - began
    return {"workflows": n, "processes": processes, "concurrency": concurrency,
            "seconds": elapsed, "workflows_per_s": n / elapsed, "steps_per_s": 3 * n / elapsed,
            "seconds_incl_process_start": with_start,
            "workflows_per_s_incl_process_start": n / with_start,
            "steps_per_s_incl_process_start": 3 * n / with_start,
            "workers_registered": registered}


# -- replay -----------------------------------------------------------------------------
def replay_long(tmp: Path, activities: int) -> dict[str, Any]:
    """Run one workflow of ``activities`` activities, then time rebuilding it from history."""
    from onward import history, repair
    db = tmp / "replay-long.db"
    with _engine(db, BASIC_FLOWS, BENCH_FLOWS) as eng:
        with eng.worker(concurrency=8):
            start = time.perf_counter()
            handle = eng.start("long_history", activities, id="long-history")
            total = handle.result(timeout=max(600.0, activities / 5))
            built = time.perf_counter() - start
        if total != activities * (activities - 1) // 2:
            raise BenchError(f"long_history returned {total!r}")
        with eng.store.read() as tx:
            run = history.current_run(tx, "long-history")
            events = history.load_events(tx, run.run_id)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            result = repair.replay_one(eng, run, events)
            times.append(time.perf_counter() - t0)
            if not result.ok:
                raise BenchError(f"replaying long_history failed: {result.error}")
        # The same through the public API, loading included (one run, for reference).
        t0 = time.perf_counter()
        report = eng.replay(["long-history"])
        public = time.perf_counter() - t0
        if not all(r.get("ok") for r in report):
            raise BenchError(f"eng.replay reported a break: {report}")
    best = min(times)
    return {"activities": activities, "events": len(events), "build_seconds": built,
            "build_steps_per_s": activities / built, "replay_seconds": best,
            "events_per_s": len(events) / best, "replay_api_seconds": public}


def _clone_runs(db: Path, templates: list[str], count: int) -> None:
    """Copy whole runs (row and events) under new ids, with the columns the schema has now."""
    import apsw
    conn = apsw.Connection(str(db))
    conn.set_busy_timeout(15_000)
    try:
        run_cols = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
        event_cols = [r[1] for r in conn.execute("PRAGMA table_info(events)")]
        if not {"run_id", "workflow_id"} <= set(run_cols) or "run_id" not in event_cols:
            raise BenchError("unexpected schema: cannot clone runs")
        new_for = {"run_id": "?1", "workflow_id": "?2", "lineage": "?1"}
        run_sql = (f"INSERT INTO runs ({', '.join(run_cols)}) SELECT "
                   + ", ".join(new_for.get(c, c) for c in run_cols)
                   + " FROM runs WHERE run_id = ?3")
        event_sql = (f"INSERT INTO events ({', '.join(event_cols)}) SELECT "
                     + ", ".join("?1" if c == "run_id" else c for c in event_cols)
                     + " FROM events WHERE run_id = ?2")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for k in range(count):
                template = templates[k % len(templates)]
                run_id = uuid.uuid4().hex
                conn.execute(run_sql, (run_id, f"clone-{k:06d}", template))
                conn.execute(event_sql, (run_id, template))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def replay_deploy_check(tmp: Path, histories: int, real: int = 200) -> dict[str, Any]:
    """``eng.replay(all_runs=True)`` over ``histories`` completed three_steps runs.

    ``real`` runs go through the engine; the rest are SQL copies of them under new ids
    (identical histories), which is much faster than running them all.
    """
    db = tmp / "replay-many.db"
    real = min(real, histories)
    with _engine(db) as eng:
        _start_many(eng, "three_steps", real)
        with eng.worker(concurrency=32):
            _wait_completed(eng, real, timeout=120)
        templates = [r["run_id"] for r in eng.list(status="completed")]
        _clone_runs(db, templates, histories - real)
        counts = eng.counts()
        if counts["completed"] != histories:
            raise BenchError(f"expected {histories} completed runs, found {_brief(counts)}")
        start = time.perf_counter()
        report = eng.replay(all_runs=True)
        elapsed = time.perf_counter() - start
    bad = [r for r in report if not r.get("ok")]
    if len(report) != histories or bad:
        raise BenchError(f"replay check: {len(report)} reports, {len(bad)} not ok: "
                         f"{bad[:1]}")
    return {"histories": histories, "real_runs": real, "seconds": elapsed,
            "histories_per_s": histories / elapsed,
            "seconds_per_10k": elapsed * 10_000 / histories}


# -- recovery ---------------------------------------------------------------------------
def _gated_env(gates: Path) -> dict[str, str]:
    return env_for(ONWARD_TEST_GATES=str(gates))


def _hold(gates: Path, name: str) -> None:
    """Close the gate ``name``: the activity that reaches it blocks until it is removed."""
    (gates / f"{name}.entered").unlink(missing_ok=True)
    (gates / name).touch()


def _wait_gate(gates: Path, name: str, workers: list[WorkerProcess]) -> None:
    """Wait until an activity is blocked at gate ``name`` (failing early if a worker died)."""
    def entered() -> bool:
        for w in workers:
            if w.proc.poll() is not None:
                raise BenchError(f"worker exited with status {w.proc.returncode}: "
                                 f"{w.tail(600)}")
        return (gates / f"{name}.entered").exists()
    wait_until(entered, 60, f"the activity to reach {name}", 0.01)


def recovery_restart(tmp: Path, db: Any = None, tag: str = "") -> dict[str, Any]:
    """kill -9 a worker inside an activity; time a new worker process to finish the run.

    ``db`` is a SQLite file (default) or a PostgreSQL URL; ``tag`` keeps file names apart.
    """
    db = db or tmp / "recovery.db"
    gates = tmp / f"{tag}gates-restart"
    gates.mkdir()
    env = _gated_env(gates)
    with _engine(db) as eng:
        _hold(gates, "gate3")
        handle = eng.start("gated", 1, id="recover-me")
        first = _worker(db, tmp / f"{tag}recovery-a.log", env=env)
        try:
            _wait_gate(gates, "gate3", [first])
        finally:
            first.kill()
        (gates / "gate3").unlink()
        launched_wall = time.time()
        start = time.perf_counter()
        second = _worker(db, tmp / f"{tag}recovery-b.log", env=env)
        try:
            result = handle.result(timeout=60)
            elapsed = time.perf_counter() - start
            with eng.store.read() as tx:
                registered = tx.scalar("SELECT started FROM workers WHERE pid = ?",
                                       (second.pid,))
        finally:
            second.stop()
        if result != 4:
            raise BenchError(f"gated(1) returned {result!r}")
        lost = [e for e in eng.show("recover-me")["history"]
                if e["type"] == "ActivityAttemptFailed"]
    return {"seconds": elapsed, "attempts_failed": len(lost),
            "registered_after_seconds": None if registered is None
            else registered - launched_wall}


def recovery_takeover(tmp: Path, db: Any = None, tag: str = "") -> dict[str, Any]:
    """Two workers; kill -9 the one running the attempt; time until the other finishes it."""
    db = db or tmp / "takeover.db"
    gates = tmp / f"{tag}gates-takeover"
    gates.mkdir()
    env = _gated_env(gates)
    with _engine(db) as eng:
        workers = [_worker(db, tmp / f"{tag}takeover-{k}.log", env=env)
                   for k in range(2)]
        try:
            for w in workers:
                w.wait_ready()
            _hold(gates, "gate3")
            handle = eng.start("gated", 1, id="take-me-over")
            _wait_gate(gates, "gate3", workers)
            pending = eng.show("take-me-over", history=False)["pending"]["activities"]
            owner = pending[0]["worker"] if pending else None
            if owner is None:
                raise BenchError(f"no running attempt found: {pending}")
            with eng.store.read() as tx:
                pid = tx.scalar("SELECT pid FROM workers WHERE worker_id = ?", (owner,))
            holder = next((w for w in workers if w.pid == pid), None)
            if holder is None:
                raise BenchError(f"attempt held by {owner} (pid {pid}), not one of ours")
            start = time.perf_counter()
            holder.kill()
            (gates / "gate3").unlink()
            result = handle.result(timeout=60)
            elapsed = time.perf_counter() - start
        finally:
            for w in workers:
                w.stop()
        if result != 4:
            raise BenchError(f"gated(1) returned {result!r}")
    return {"seconds": elapsed}


# -- memory -----------------------------------------------------------------------------
def _insert_waiting_runs(eng: Any, n: int, batch: int = 1000) -> float:
    """Create ``n`` approval runs, ``batch`` per transaction (the engine's own insert_run)."""
    from onward import history
    start = time.perf_counter()
    done = 0
    while done < n:
        count = min(batch, n - done)
        now = eng.clock()
        with eng.store.write() as tx:
            for k in range(done, done + count):
                history.insert_run(tx, run_id=eng.new_id("run"), workflow_id=f"wait-{k:06d}",
                                   workflow="approval", args=[], now=now)
        done += count  # the worker, another process, sees the commit through the store
    return time.perf_counter() - start


def memory(tmp: Path, n: int) -> dict[str, Any]:
    """Peak RSS of one worker process holding ``n`` runs that wait on a manual task."""
    db = tmp / "memory.db"
    with _engine(db) as eng:
        worker = _worker(db, tmp / "memory-worker.log", concurrency=32)
        try:
            worker.wait_ready()
            time.sleep(0.5)
            idle = proc_status(worker.pid)
            begin = time.perf_counter()
            try:
                insert = _insert_waiting_runs(eng, n)
                how = "insert_run, 1,000 per transaction"
            except TypeError:  # the engine's insert_run changed shape: fall back
                insert = _start_many(eng, "approval", n)
                how = "eng.start"

            def settled() -> bool:
                if worker.proc.poll() is not None:
                    raise BenchError(f"worker exited: {worker.tail(600)}")
                return eng.counts()["waiting"] >= n

            wait_until(settled, max(120.0, n / 20), f"{n} runs to wait on their manual task",
                       0.05)
            elapsed = time.perf_counter() - begin
            status = proc_status(worker.pid)
        finally:
            worker.stop()
    return {"runs": n, "peak_rss_bytes": status["VmHWM"], "rss_bytes": status["VmRSS"],
            "idle_rss_bytes": idle["VmRSS"], "created_with": how,
            "create_seconds": insert, "all_waiting_seconds": elapsed,
            "bytes_per_run": (status["VmHWM"] - idle["VmHWM"]) / n,
            "pid": worker.pid, "python": sys.version.split()[0],
            "cpus": os.cpu_count()}


# -- updates ------------------------------------------------------------------------------
def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _update_rounds(eng: Any, ident: str, n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        eng.update(ident, "bump", timeout=30)
        times.append(time.perf_counter() - began)
    return {"updates": n, "median_ms": _percentile(times, 0.5) * 1000,
            "p99_ms": _percentile(times, 0.99) * 1000, "max_ms": max(times) * 1000}


def update_round_trip(tmp: Path, n: int) -> dict[str, Any]:
    """``eng.update`` on an idle run, one after another: with the worker in the caller's
    process, and with the worker in another process (the caller wakes on the store)."""
    figures: dict[str, Any] = {}
    db = tmp / "updates.db"
    with _engine(db, BENCH_FLOWS) as eng:
        with eng.worker(concurrency=4):
            eng.start("bench_updatable", id="u-in")
            eng.update("u-in", "bump", timeout=30)  # the run is waiting: warm
            figures["in_process"] = _update_rounds(eng, "u-in", n)
            eng.signal("u-in", "finish")
        eng.start("bench_updatable", id="u-out")
    with _worker(db, tmp / "updates-worker.log", flows=BENCH_FLOWS) as worker:
        worker.wait_ready()
        with _engine(db, BENCH_FLOWS) as eng:
            eng.update("u-out", "bump", timeout=30)
            figures["other_process"] = _update_rounds(eng, "u-out", n)
            eng.signal("u-out", "finish")
    return figures
