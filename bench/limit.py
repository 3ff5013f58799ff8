"""The ceiling: how many durable SQLite commits this disk does (APSW, WAL, synchronous=FULL)."""

from __future__ import annotations

import time
from pathlib import Path

import apsw

BUSY_TIMEOUT_MS = 15_000


def open_conn(path: str | Path) -> apsw.Connection:
    """A connection set up as a durable store would be: WAL, synchronous=FULL, busy timeout."""
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchall()[0][0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"could not switch {path} to WAL (got {mode})")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


WINDOW = 0.25


def commit_rate(path: Path, rows_per_txn: int, seconds: float) -> tuple[float, int, float]:
    """Write transactions of ``rows_per_txn`` small rows for ``seconds``: (txn/s, txns, s)."""
    rate, txns, elapsed, _ = commit_windows(path, rows_per_txn, seconds)
    return rate, txns, elapsed


def commit_windows(path: Path, rows_per_txn: int, seconds: float
                   ) -> tuple[float, int, float, list[float]]:
    """As ``commit_rate``, plus the rate in each 0.25 s window (to show a shared disk's noise)."""
    conn = open_conn(path)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        payload = "x" * 48
        for _ in range(20):  # warm the file and the WAL
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (v) VALUES (?)", (payload,))
            conn.execute("COMMIT")
        txns = 0
        start = time.perf_counter()
        deadline = start + seconds
        rows = [(payload,)] * rows_per_txn
        windows: list[float] = []
        window_start, window_txns = start, 0
        while True:
            conn.execute("BEGIN IMMEDIATE")
            if rows_per_txn == 1:
                conn.execute("INSERT INTO t (v) VALUES (?)", rows[0])
            else:
                conn.executemany("INSERT INTO t (v) VALUES (?)", rows)
            conn.execute("COMMIT")
            txns += 1
            window_txns += 1
            now = time.perf_counter()
            if now - window_start >= WINDOW:
                windows.append(window_txns / (now - window_start))
                window_start, window_txns = now, 0
            if now >= deadline:
                break
        elapsed = now - start
    finally:
        conn.close()
    return txns / elapsed, txns, elapsed, windows


# The writes of one sequential three-step workflow, as Onward's store makes them, without
# the engine: a start (run row, two events, the first queued activity) and three steps (the
# activity's row deleted, its completion and the next command appended, the next row queued,
# the run row updated). Four commits, each durable before the next "activity" could start.
_SHAPED_SCHEMA = (
    "CREATE TABLE runs (run_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
    "last_seq INTEGER NOT NULL, updated REAL NOT NULL)",
    "CREATE INDEX runs_by_status ON runs(status)",
    "CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, "
    "time REAL NOT NULL, attrs TEXT NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID",
    "CREATE TABLE tasks (run_id TEXT NOT NULL, ref INTEGER NOT NULL, args TEXT NOT NULL, "
    "PRIMARY KEY (run_id, ref)) WITHOUT ROWID",
)
_ATTRS = '{"name": "bench_step", "args": [1], "retry": {"maximum_attempts": 3}, "key": "' \
    + "k" * 40 + '"}'


def workflow_sql_rate(path: Path, seconds: float) -> tuple[float, int, float]:
    """Sequential three-step workflows' SQL alone, no engine: (workflows/s, workflows, s).

    Its steps/s over the 1-row rate is what a sequential workflow could reach if the engine
    took no time at all."""
    conn = open_conn(path)
    try:
        for statement in _SHAPED_SCHEMA:
            conn.execute(statement)
        workflows = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            now = time.time()
            run = f"{int(now * 1000):012x}{workflows:020x}"  # time-ordered, as Onward's
            _commit(conn, [
                ("INSERT INTO runs VALUES (?, 'running', 2, ?)", (run, now)),
                ("INSERT INTO events VALUES (?, 1, 'WorkflowStarted', ?, ?)", (run, now, _ATTRS)),
                ("INSERT INTO events VALUES (?, 2, 'ActivityScheduled', ?, ?)",
                 (run, now, _ATTRS)),
                ("INSERT INTO tasks VALUES (?, 2, ?)", (run, _ATTRS))])
            for ref in (2, 4, 6):
                last = ref == 6
                _commit(conn, [
                    ("DELETE FROM tasks WHERE run_id = ? AND ref = ?", (run, ref)),
                    ("INSERT INTO events VALUES (?, ?, 'ActivityCompleted', ?, ?)",
                     (run, ref + 1, now, _ATTRS)),
                    ("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                     (run, ref + 2, "WorkflowCompleted" if last else "ActivityScheduled", now,
                      _ATTRS)),
                    *([] if last else [("INSERT INTO tasks VALUES (?, ?, ?)",
                                         (run, ref + 2, _ATTRS))]),
                    ("UPDATE runs SET status = ?, last_seq = ?, updated = ? WHERE run_id = ?",
                     ("completed" if last else "running", ref + 2, now, run))])
            workflows += 1
            if time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    return workflows / elapsed, workflows, elapsed


def _commit(conn: apsw.Connection, statements: list[tuple[str, tuple[object, ...]]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for sql, params in statements:
        conn.execute(sql, params)
    conn.execute("COMMIT")
