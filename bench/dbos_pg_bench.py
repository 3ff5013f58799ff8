"""The three-step workflow on DBOS Transact with a PostgreSQL system database.

As bench.dbos_bench, one phase per child process, one JSON line on stdout:

    python -m bench.dbos_pg_bench enqueue --url URL --n N [--concurrency 32] [--poll 0.01]
    python -m bench.dbos_pg_bench drain --url URL --n N

URL names a database (DBOS creates it if missing); its tables live in schema ``dbos``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from dbos import DBOS

# The same workflow, step and configuration as the SQLite run (DBOS takes a URL there too).
from bench.dbos_bench import QUEUE, _configure, three_steps  # noqa: E402


def _succeeded(conn: object) -> int:
    row = conn.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS'").fetchone()
    return int(row[0])


def enqueue(url: str, n: int, concurrency: int, poll: float) -> dict[str, object]:
    _configure(url)
    DBOS.listen_queues([])
    DBOS.launch()
    try:
        queue = DBOS.register_queue(QUEUE, worker_concurrency=concurrency,
                                    polling_interval_sec=poll)
        start = time.perf_counter()
        for i in range(n):
            queue.enqueue(three_steps, i)
        elapsed = time.perf_counter() - start
    finally:
        DBOS.destroy()
    return {"workflows": n, "enqueue_seconds": elapsed, "concurrency": concurrency,
            "polling_interval_sec": poll}


def drain(url: str, n: int, timeout: float) -> dict[str, object]:
    import psycopg
    watch = psycopg.connect(url, autocommit=True)
    before = _succeeded(watch)
    _configure(url)
    DBOS.listen_queues([QUEUE])
    start = time.perf_counter()
    DBOS.launch()
    try:
        deadline = start + timeout
        while _succeeded(watch) - before < n:
            if time.perf_counter() > deadline:
                raise SystemExit(f"DBOS drained {_succeeded(watch) - before} of {n} "
                                 f"workflows in {timeout:.0f}s")
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
    finally:
        DBOS.destroy()
        watch.close()
    return {"workflows": n, "seconds": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbos_pg_bench")
    parser.add_argument("mode", choices=["enqueue", "drain"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--poll", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.mode == "enqueue":
        out = enqueue(args.url, args.n, args.concurrency, args.poll)
    else:
        out = drain(args.url, args.n, args.timeout)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
