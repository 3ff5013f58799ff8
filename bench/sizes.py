"""How much work each section does: the full run and ``--quick``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    seq: int
    concurrent: int
    activities: int
    histories: int
    waiting: int
    limit_seconds: float
    probe: tuple[int, int]
    pg: int
    console_runs: int
    console_reps: int
    stream: int
    thread_seconds: float
    process_seconds: float
    dbos_full: bool
    """DBOS's queue drain and fsync count too (slow: each is a DBOS child or two)."""


FULL = Sizes(seq=500, concurrent=2000, activities=5000, histories=10_000, waiting=10_000,
             limit_seconds=2.0, probe=(20, 120), pg=2000, console_runs=10_000,
             console_reps=20, stream=2000, thread_seconds=5.0, process_seconds=5.0, dbos_full=True)
QUICK = Sizes(seq=50, concurrent=200, activities=1000, histories=1000, waiting=1000,
              limit_seconds=1.0, probe=(5, 25), pg=200, console_runs=1000, console_reps=10,
              stream=200, thread_seconds=1.0, process_seconds=1.0, dbos_full=False)
