"""Where a sequential workflow's time goes: ``python tools/seq_profile.py [--n N] [--sync S]``.

One caller starts the benchmarks' 3-step workflow and waits for its result, N times, on an
in-process worker (the shape of ``python -m bench --only onward-seq``). Printed per workflow:
wall time, CPU time of the whole process, commits, SQL statements by text, the time SQLite
spent in each statement, and the WAL page images each table or index cost.

``--sync OFF`` takes the fsyncs out (the engine's own CPU cost shows); the default FULL is
what the benchmark measures. Figures only: nothing here is a test.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FLOWS = REPO / "bench" / "flows.py"
WORKFLOW = "plain_three_steps"


def _connections() -> list[Any]:
    import apsw
    return [o for o in gc.get_objects() if isinstance(o, apsw.Connection)]


def _wal_pages(db: Path) -> collections.Counter[str]:
    """Page images in the WAL file by table or index ("name leaf" / "name internal")."""
    import apsw
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        owner = {page: f"{name} {kind}" for name, page, kind in
                 conn.execute("SELECT name, pageno, pagetype FROM dbstat")}
        size = int(conn.execute("PRAGMA page_size").fetchall()[0][0])
    finally:
        conn.close()
    data = Path(f"{db}-wal").read_bytes()
    pages: collections.Counter[str] = collections.Counter()
    for offset in range(32, len(data) - 24, 24 + size):
        pages[owner.get(int.from_bytes(data[offset:offset + 4], "big"), "?")] += 1
    return pages


def profile(n: int, sync: str) -> None:
    """Run ``n`` workflows one after another and print where their time went."""
    import apsw

    from onward import Engine
    os.environ["ONWARD_SYNCHRONOUS"] = sync
    db = Path(tempfile.mkdtemp(prefix="onward-seq-")) / "seq.db"
    counts: collections.Counter[str] = collections.Counter()
    nanos: collections.Counter[str] = collections.Counter()

    def traced(event: dict[str, Any]) -> None:
        text = " ".join(str(event["sql"]).split())[:90]
        counts[text] += 1
        nanos[text] += int(event["nanoseconds"])

    with Engine(db, flows=[str(FLOWS)]) as eng, eng.worker(concurrency=8):
        for i in range(20):  # warm-up: imports, caches, the WAL file
            eng.start(WORKFLOW, -i).result(timeout=60)
        for conn in _connections():
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.set_wal_hook(lambda *_args: apsw.SQLITE_OK)  # keep every page in the WAL
            conn.trace_v2(apsw.SQLITE_TRACE_PROFILE, traced)
        commits = eng.store.commits
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            if eng.start(WORKFLOW, i).result(timeout=60) != i + 3:
                raise SystemExit(f"{WORKFLOW}({i}) returned a wrong result")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        commits = eng.store.commits - commits
        pages = _wal_pages(db)
    print(f"{n} workflows, synchronous={sync}: {n / wall:.0f} wf/s; per workflow "
          f"{wall / n * 1e3:.3f} ms wall, {cpu / n * 1e3:.3f} ms CPU (all threads), "
          f"{commits / n:.2f} commits")
    print(f"SQL: {sum(counts.values()) / n:.1f} statements, "
          f"{sum(nanos.values()) / n / 1e3:.0f} us in SQLite per workflow")
    for text, ns in nanos.most_common(14):
        print(f"  {counts[text] / n:5.2f} x {ns / n / 1e3:7.1f} us  {text}")
    print(f"WAL: {sum(pages.values()) / n:.1f} page images per workflow "
          f"({sum(pages.values()) / max(commits, 1):.2f} per commit)")
    for name, count in pages.most_common():
        print(f"  {count / n:5.2f}  {name}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="workflows (default 500)")
    parser.add_argument("--sync", default="FULL", choices=["OFF", "NORMAL", "FULL"],
                        help="SQLite synchronous setting (default FULL)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    profile(args.n, args.sync)


if __name__ == "__main__":
    main()
