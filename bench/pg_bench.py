"""The postgres section: the PostgreSQL store with 1, 2 and 4 worker processes, recovery.

Shapes: ``throughput`` is the drain (runs started first, not counted; then drained by 1, 2
or 4 worker processes); ``sequential`` is one caller, start then result, one after another,
on an in-process worker (starts counted), with the round trips per workflow the store
counted. Each measurement gets a fresh schema (``onward_bench_<random>`` in the URL's
search_path, as tests/pg.py does) that is dropped afterwards. ``$ONWARD_PG_URL`` names the
server (default ``postgresql://postgres@127.0.0.1:5432/test``); ``ONWARD_PG_PIPELINE=0``
turns pipeline mode off and ``ONWARD_PG_BATCH=0`` a turn's grouped reads, for comparison
(engine/store/pg_tx.py).

Alone: ``python -m bench.pg_bench [--n 2000] [--seq 300] [--processes 1 2 4]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import onward_bench

from .common import BASIC_FLOWS, BENCH_FLOWS, THROUGHPUT_WORKFLOW

BASE_URL = os.environ.get("ONWARD_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(BASE_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return f"PostgreSQL not reachable at {BASE_URL}: {str(err).strip().splitlines()[0]}"
    return None


def server_version() -> str:
    import psycopg
    with psycopg.connect(BASE_URL, connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
    return f"{row[0] if row else '?'} (synchronous_commit={sync[0] if sync else '?'}, " \
           f"fsync={fsync[0] if fsync else '?'})"


def _url_for(schema: str) -> str:
    joiner = "&" if "?" in BASE_URL else "?"
    return f"{BASE_URL}{joiner}options=-csearch_path%3D{schema}&application_name={schema}"


def _drop_schema(schema: str) -> None:
    import psycopg
    with psycopg.connect(BASE_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL on a new schema (created by the first store opened), dropped afterwards."""
    schema = f"onward_bench_{uuid.uuid4().hex[:12]}"
    try:
        yield _url_for(schema)
    finally:
        _drop_schema(schema)


def _engine(url: str) -> Any:
    from onward import Engine

    return Engine(url, flows=[str(BASIC_FLOWS), str(BENCH_FLOWS)])


def throughput(tmp: Path, n: int, processes: int, concurrency: int = 32) -> dict[str, Any]:
    """Start ``n`` three-step runs, then drain them with ``processes`` worker processes."""
    with fresh_schema() as url, _engine(url) as eng:
        t0 = time.perf_counter()
        for i in range(n):
            eng.start(THROUGHPUT_WORKFLOW, i)
        start_s = time.perf_counter() - t0
        drained = onward_bench.drain_by_processes(
            eng, url, tmp, f"pg-{processes}", n, processes, concurrency,
            timeout=max(180.0, n / 5), interval=0.05)
    return {**drained, "start_seconds": start_s, "starts_per_s": n / start_s}


def sequential(tmp: Path, n: int) -> dict[str, Any]:
    """``n`` three-step runs one after another (start, then result) on an in-process
    worker: wf/s, latency p50/p99, commits and round trips per workflow (``tmp`` unused:
    the signature matches the other shapes')."""
    from onward.store import pg_tx
    with fresh_schema() as url, _engine(url) as eng, eng.worker(concurrency=8):
        for i in range(5):  # warm-up: imports, pooled connections, prepared statements
            eng.start(THROUGHPUT_WORKFLOW, -i).result(timeout=60)
        commits0, trips0 = eng.store.commits, eng.store.round_trips
        latencies = []
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            result = eng.start(THROUGHPUT_WORKFLOW, i).result(timeout=60)
            latencies.append(time.perf_counter() - t0)
            if result != i + 3:
                raise RuntimeError(f"{THROUGHPUT_WORKFLOW}({i}) returned {result!r}")
        elapsed = time.perf_counter() - start
        commits = eng.store.commits - commits0
        trips = eng.store.round_trips - trips0
    latencies.sort()
    return {"workflows": n, "seconds": elapsed, "workflows_per_s": n / elapsed,
            "steps_per_s": 3 * n / elapsed, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))],
            "commits_per_workflow": commits / n, "round_trips_per_workflow": trips / n,
            "round_trips_per_commit": trips / max(1, commits), "pipeline": pg_tx.PIPELINE}


def recovery_restart(tmp: Path) -> dict[str, Any]:
    """kill -9 a worker inside an activity; time a new worker process to finish the run."""
    with fresh_schema() as url:
        return onward_bench.recovery_restart(tmp, db=url, tag="pg-")


def recovery_takeover(tmp: Path) -> dict[str, Any]:
    """Two workers; kill -9 the one running the attempt; time until the other finishes it."""
    with fresh_schema() as url:
        return onward_bench.recovery_takeover(tmp, db=url, tag="pg-")


# -- DBOS on PostgreSQL -------------------------------------------------------------------
@contextmanager
def fresh_database() -> Iterator[str]:
    """A URL naming a new database on the same server (DBOS creates it), dropped after."""
    import psycopg
    name = f"onward_bench_dbos_{uuid.uuid4().hex[:10]}"
    base, _, query = BASE_URL.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")
    try:
        yield url
    finally:
        with psycopg.connect(BASE_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    """Drain with each number of worker processes, then the sequential shape; one line each."""
    parser = argparse.ArgumentParser(prog="python -m bench.pg_bench",
                                     description="Onward on PostgreSQL: drain and sequential")
    parser.add_argument("--n", type=int, default=2000, help="runs per drain (default 2000)")
    parser.add_argument("--seq", type=int, default=300,
                        help="runs of the sequential shape (default 300; 0 skips it)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    print(f"PostgreSQL {server_version()}; pipeline "
          f"{'off' if os.environ.get('ONWARD_PG_PIPELINE') == '0' else 'on'}, grouped reads "
          f"{'off' if os.environ.get('ONWARD_PG_BATCH') == '0' else 'on'}")
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for procs in args.processes:
        t = throughput(tmp, args.n, procs)
        print(f"drain, {procs} worker process{'es' if procs > 1 else ''} x32 ({args.n}): "
              f"{t['workflows_per_s']:.0f} wf/s, {t['steps_per_s']:.0f} steps/s "
              f"(starts {t['starts_per_s']:.0f}/s, not counted)")
    if args.seq:
        q = sequential(tmp, args.seq)
        print(f"sequential, start -> result ({args.seq}): {q['workflows_per_s']:.0f} wf/s, "
              f"p50 {q['p50_ms']:.1f} ms, p99 {q['p99_ms']:.1f} ms; "
              f"{q['commits_per_workflow']:.1f} commits and "
              f"{q['round_trips_per_workflow']:.1f} round trips per workflow")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
