"""The load shapes, each on the same three-step workflow with its start counted.

    stream     one caller starts runs back to back while an in-process worker drains them
    threads    C caller threads in one process, each ``start`` → ``result`` in a loop
    processes  P client processes (``python -m bench.client``), each with its own Engine
               and C caller threads on one SQLite file, and its own in-process worker
               or none (worker processes then run the runs)

(``seq`` and ``drain`` are in ``bench.onward_bench``.) Every caller checks that it got its
own run's result; a latency is one caller's ``start`` → ``result``, measured per call.
Each function returns plain figures (a dict); printing is ``bench.__main__``'s job.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .common import BENCH_FLOWS, THROUGHPUT_WORKFLOW, BenchError, tracked_popen

WORKER_CONCURRENCY = 32
"""The in-process worker's concurrency in every shape (the drain's too)."""


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """p50 / p99 / max / mean of per-call latencies (given in seconds), in milliseconds."""
    if not seconds:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan"),
                "mean_ms": float("nan")}
    ordered = sorted(seconds)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": ordered[-1] * 1000,
            "mean_ms": sum(ordered) / len(ordered) * 1000}


def _engine(db: Path) -> Any:
    from onward import Engine
    return Engine(db, flows=[str(BENCH_FLOWS)])


def _warm(eng: Any) -> None:
    """Imports, caches and the WAL file: the same few runs before every measurement."""
    for i in range(5):
        eng.start(THROUGHPUT_WORKFLOW, -i - 10).result(timeout=60)


# -- stream -------------------------------------------------------------------------------
def stream(tmp: Path, n: int) -> dict[str, Any]:
    """One caller starts ``n`` runs back to back while the worker drains them.

    Timed from the first start to the moment all have completed (the run counts polled
    every 10 ms, as the drain is timed); each run's result is checked afterwards."""
    from .onward_bench import _wait_completed
    db = tmp / "stream.db"
    with _engine(db) as eng, eng.worker(concurrency=WORKER_CONCURRENCY):
        _warm(eng)
        warmed = eng.counts()["completed"]
        commits0 = eng.store.commits
        began = time.perf_counter()
        handles = [eng.start(THROUGHPUT_WORKFLOW, i) for i in range(n)]
        started = time.perf_counter() - began
        end = _wait_completed(eng, warmed + n, timeout=max(120.0, n / 5))
        commits = eng.store.commits - commits0
        for i, handle in enumerate(handles):
            result = handle.result(timeout=60)
            if result != i + 3:
                raise BenchError(f"stream: {THROUGHPUT_WORKFLOW}({i}) returned {result!r}")
    elapsed = end - began
    return {"workflows": n, "worker_concurrency": WORKER_CONCURRENCY,
            "start_seconds": started, "starts_per_s": n / started, "seconds": elapsed,
            "workflows_per_s": n / elapsed, "steps_per_s": 3 * n / elapsed,
            "commits_per_workflow": commits / n}


# -- threads ------------------------------------------------------------------------------
def caller_loop(eng: Any, caller: int, go: threading.Event, stop_at: list[float],
                out: list[float], failures: list[str]) -> None:
    """One caller: after ``go``, ``start`` → ``result`` until ``stop_at[0]`` (perf_counter),
    appending each call's latency to ``out``; a wrong result or an error goes to
    ``failures`` and ends this caller."""
    go.wait()
    k = 0
    try:
        while time.perf_counter() < stop_at[0]:
            arg = caller * 1_000_000 + k
            began = time.perf_counter()
            result = eng.start(THROUGHPUT_WORKFLOW, arg).result(timeout=120)
            out.append(time.perf_counter() - began)
            if result != arg + 3:
                failures.append(f"caller {caller}: {THROUGHPUT_WORKFLOW}({arg}) returned "
                                f"{result!r}")
                return
            k += 1
    except Exception as err:  # noqa: BLE001 - reported by the parent with the others
        failures.append(f"caller {caller}: {type(err).__name__}: {err}")


def run_callers(eng: Any, callers: int, seconds: float) -> dict[str, Any]:
    """``callers`` threads on ``eng`` for about ``seconds``: calls, latencies, wall times.

    Throughput is calls / (last call's end - the common go), so the calls still in flight
    at the deadline are waited for and counted."""
    go = threading.Event()
    stop_at = [0.0]
    latencies: list[list[float]] = [[] for _ in range(callers)]
    failures: list[str] = []
    threads = [threading.Thread(target=caller_loop, daemon=True, name=f"bench-caller-{c}",
                                args=(eng, c, go, stop_at, latencies[c], failures))
               for c in range(callers)]
    for t in threads:
        t.start()
    commits0 = eng.store.commits
    began_wall, began = time.time(), time.perf_counter()
    stop_at[0] = began + seconds
    go.set()
    for t in threads:
        t.join(timeout=seconds + 180)
    ended = time.perf_counter()
    commits = eng.store.commits - commits0
    if any(t.is_alive() for t in threads):
        failures.append("a caller did not finish within 180 s of the deadline")
    flat = [x for per in latencies for x in per]
    return {"callers": callers, "calls": len(flat), "seconds": ended - began,
            "began_wall": began_wall, "ended_wall": began_wall + (ended - began),
            "latencies": flat, "per_caller_calls": [len(per) for per in latencies],
            "commits": commits, "failures": failures}


def threads(tmp: Path, callers: int, seconds: float) -> dict[str, Any]:
    """``callers`` caller threads and one in-process worker in one process."""
    db = tmp / f"threads-{callers}.db"
    with _engine(db) as eng, eng.worker(concurrency=max(WORKER_CONCURRENCY, callers)):
        _warm(eng)
        raw = run_callers(eng, callers, seconds)
    if raw["failures"]:
        raise BenchError(f"{callers} threads: {raw['failures'][0]} "
                         f"({len(raw['failures'])} failure(s))")
    return _summary(raw, processes=1, worker_concurrency=max(WORKER_CONCURRENCY, callers))


def _summary(raw: dict[str, Any], **extra: Any) -> dict[str, Any]:
    calls, secs = raw["calls"], raw["seconds"]
    if not calls:
        raise BenchError("no call completed")
    lat = raw.pop("latencies")
    return {**extra, **raw, "workflows_per_s": calls / secs, "steps_per_s": 3 * calls / secs,
            "commits_per_workflow": raw["commits"] / calls, **latency_stats(lat)}


# -- processes ----------------------------------------------------------------------------
def processes(tmp: Path, count: int, callers: int, seconds: float,
              worker_processes: int = 0) -> dict[str, Any]:
    """``count`` client processes on one file, each with its own Engine and ``callers``
    caller threads, and either an in-process worker each (``worker_processes`` 0) or no
    worker, ``worker_processes`` ``onward worker`` processes running the runs instead;
    the clients begin together (each warmed up first)."""
    from .onward_bench import _worker
    tag = f"processes-{worker_processes}w"
    db = tmp / f"{tag}.db"
    with _engine(db):
        pass  # the schema, before the clients race to create it
    workers = [_worker(db, tmp / f"{tag}-worker-{k}.log", flows=BENCH_FLOWS,
                       concurrency=WORKER_CONCURRENCY) for k in range(worker_processes)]
    for w in workers:
        w.wait_ready()
    logs = [tmp / f"{tag}-client-{k}.log" for k in range(count)]
    extra = ["--no-worker"] if worker_processes else []
    children = [tracked_popen([sys.executable, "-m", "bench.client", "--db", str(db),
                               "--callers", str(callers), "--seconds", str(seconds), *extra],
                              log=log)
                for log in logs]
    try:
        for child, log in zip(children, logs, strict=True):
            _expect(child, log, "ready", timeout=120)
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        reports = [json.loads(_expect(child, log, "{", timeout=seconds + 240))
                   for child, log in zip(children, logs, strict=True)]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
        for w in workers:
            w.stop()
    failures = [f for r in reports for f in r["failures"]]
    if failures:
        raise BenchError(f"client processes: {failures[0]} ({len(failures)} failure(s))")
    began = min(r["began_wall"] for r in reports)
    ended = max(r["ended_wall"] for r in reports)
    calls = sum(r["calls"] for r in reports)
    lat = [x for r in reports for x in r["latencies"]]
    return {"processes": count, "callers_per_process": callers,
            "worker_processes": worker_processes,
            "worker": f"{worker_processes} worker process(es) (concurrency "
                      f"{WORKER_CONCURRENCY}), none in the clients" if worker_processes else
                      f"one in-process worker (concurrency {WORKER_CONCURRENCY}) in each",
            "calls": calls, "seconds": ended - began, "workflows_per_s": calls / (ended - began),
            "steps_per_s": 3 * calls / (ended - began),
            "per_process_calls": [r["calls"] for r in reports],
            "commits_per_workflow": sum(r["commits"] for r in reports) / max(calls, 1),
            "commits_what": "the client processes' commits per workflow" + (
                " (their starts; the worker process's are not counted)" if worker_processes
                else " (their starts and their workers' turns)"),
            **latency_stats(lat)}


def _expect(child: Any, log: Path, prefix: str, timeout: float) -> str:
    """The child's next stdout line starting with ``prefix``; BenchError (with its log's
    tail) if it exits first; it is killed if the line takes longer than ``timeout``."""
    assert child.stdout is not None
    timer = threading.Timer(timeout, child.kill)
    timer.start()
    try:
        while True:
            line = child.stdout.readline()
            if not line:
                tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
                raise BenchError(f"client process exited ({child.wait(timeout=30)}) before "
                                 f"its {prefix!r} line (time limit {timeout:.0f}s): {tail}")
            if line.startswith(prefix):
                return str(line)
    finally:
        timer.cancel()
