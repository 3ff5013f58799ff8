"""The same three-step workflow on DBOS Transact, with a SQLite (or PostgreSQL) database.

DBOS keeps process-wide state, so ``python -m bench`` runs each phase in its own child
process and reads one JSON line from its stdout:

    python -m bench.dbos_bench seq --db PATH --n N
        N workflows one after another (call, wait for the result), in this process.
    python -m bench.dbos_bench enqueue --db PATH_OR_URL --n N [--concurrency 32] [--poll 0.01]
        register queue "bench" and enqueue N workflows while listening to no queue.
    python -m bench.dbos_bench drain --db PATH_OR_URL --n N
        launch DBOS listening to "bench" and time until all N workflows succeeded.

DBOS runs with its own SQLite settings (it sets a busy timeout and IMMEDIATE
transactions, and leaves the journal mode and synchronous level at SQLite's defaults);
the JSON reports which were in effect.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from typing import Any

from dbos import DBOS, DBOSConfig

from tests.helpers import wait_until

QUEUE = "bench"


@DBOS.step()
def step(label: str, value: int) -> int:
    return value + 1


@DBOS.workflow()
def three_steps(start: int) -> int:
    a = step("a", start)
    b = step("b", a)
    return step("c", b)


def _configure(db: str) -> None:
    """Point DBOS at a SQLite file, or at a database URL (PostgreSQL) given as is."""
    config: DBOSConfig = {
        "name": "onward-bench",
        "system_database_url": db if "://" in db else f"sqlite:///{db}",
        "application_version": "onward-bench-1",
        "log_level": "WARNING",
    }
    DBOS(config=config)


def _sqlite_settings(db: str) -> dict[str, object]:
    if "://" in db:
        return {}
    conn = sqlite3.connect(db)
    try:
        return {"journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": conn.execute("PRAGMA synchronous").fetchone()[0]}
    finally:
        conn.close()


def _watch(db: str) -> Any:
    """A connection to count finished workflows: sqlite3, or psycopg for a URL."""
    if "://" in db:
        import psycopg
        return psycopg.connect(db, autocommit=True)
    return sqlite3.connect(db, timeout=30)


def _succeeded(conn: Any) -> int:
    table = "workflow_status" if isinstance(conn, sqlite3.Connection) else \
        "dbos.workflow_status"
    return int(conn.execute(
        f"SELECT count(*) FROM {table} WHERE status = 'SUCCESS'").fetchone()[0])


def use_wal(db: str) -> None:
    """Put a new SQLite file in WAL mode before DBOS creates its tables (the mode is kept
    in the file; DBOS leaves it alone)."""
    conn = sqlite3.connect(db)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    finally:
        conn.close()
    if str(mode).lower() != "wal":
        raise SystemExit(f"could not put {db} in WAL mode (got {mode})")


def seq(db: str, n: int) -> dict[str, object]:
    _configure(db)
    DBOS.launch()
    try:
        assert three_steps(-1) == 2  # warm up: same in every run
        start = time.perf_counter()
        for i in range(n):
            assert three_steps(i) == i + 3
        elapsed = time.perf_counter() - start
    finally:
        DBOS.destroy()
    return {"workflows": n, "seconds": elapsed, "sqlite": _sqlite_settings(db)}


def enqueue(db: str, n: int, concurrency: int, poll: float) -> dict[str, object]:
    _configure(db)
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


def drain(db: str, n: int, timeout: float) -> dict[str, object]:
    watch = _watch(db)
    before = _succeeded(watch)
    _configure(db)
    DBOS.listen_queues([QUEUE])
    start = time.perf_counter()
    DBOS.launch()
    try:
        wait_until(lambda: _succeeded(watch) - before >= n, timeout,
                   lambda: f"DBOS to drain {n} workflows (drained "
                           f"{_succeeded(watch) - before})", 0.01)
        elapsed = time.perf_counter() - start
    finally:
        DBOS.destroy()
        watch.close()
    return {"workflows": n, "seconds": elapsed, "sqlite": _sqlite_settings(db)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbos_bench")
    parser.add_argument("mode", choices=["seq", "enqueue", "drain"])
    parser.add_argument("--db", required=True, help="a SQLite file or a database URL")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--poll", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--wal", action="store_true",
                        help="put a new SQLite file in WAL mode first (as set by hand)")
    args = parser.parse_args(argv)
    if args.wal and "://" not in args.db:
        use_wal(args.db)
    if args.mode == "seq":
        out = seq(args.db, args.n)
    elif args.mode == "enqueue":
        out = enqueue(args.db, args.n, args.concurrency, args.poll)
    else:
        out = drain(args.db, args.n, args.timeout)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
