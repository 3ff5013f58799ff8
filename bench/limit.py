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
