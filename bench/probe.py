"""Small child programs that ``python -m bench`` runs under ``strace -c`` to count fsyncs.

Each does a fixed setup and then ``--n`` units of work; the caller runs it twice with two
values of ``--n`` and divides the difference in fsyncs by the difference in units, so the
setup (schema, worker registration, interpreter start) cancels out.

    python -m bench.probe limit --db PATH --n N        N one-row write transactions
    python -m bench.probe onward-seq --db PATH --n N   N three-step workflows, one by one
"""

from __future__ import annotations

import argparse
import sys


def probe_limit(db: str, n: int) -> None:
    from .limit import open_conn
    conn = open_conn(db)
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (f"row {i:08d} payload",))
        conn.execute("COMMIT")
    conn.close()


def probe_onward_seq(db: str, n: int) -> None:
    from onward import Engine

    from .common import BENCH_FLOWS, THROUGHPUT_WORKFLOW
    with Engine(db, flows=[str(BENCH_FLOWS)]) as eng, eng.worker(concurrency=8):
        eng.start(THROUGHPUT_WORKFLOW, -1).result(timeout=60)  # warm: same in every probe
        for i in range(n):
            assert eng.start(THROUGHPUT_WORKFLOW, i).result(timeout=60) == i + 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe")
    parser.add_argument("what", choices=["limit", "onward-seq"])
    parser.add_argument("--db", required=True)
    parser.add_argument("--n", type=int, required=True)
    args = parser.parse_args(argv)
    {"limit": probe_limit, "onward-seq": probe_onward_seq}[args.what](args.db, args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
