"""The same three-step workflow on dura (an embedded SQLite durable-execution engine that
needs Python >= 3.13), one workflow after another. Run by the ``dura`` section in a venv
of its own (``bench.py313``); it imports nothing from Onward:

    python -m bench.dura_bench --db PATH --n N      prints one JSON line

dura owns no threads and has no call that waits for a task's result: its caller drives a
worker's loop itself (``claim_task``, then ``process_task``, which runs the handler and
completes the run). Here the one caller thread spawns a task, claims it, runs it and reads
its result back: no thread hand-off and no polling, the most favourable set-up for dura.
Each step is a ``checkpoint`` (its result stored before the next step runs), so a
workflow is 6 commits: spawn, claim, 3 checkpoints, complete.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import time
from importlib.metadata import version
from typing import Any

from dura import DurableEngine
from dura.workers import process_task

TASK = "three_steps"


def step(label: str, value: int) -> int:
    """The durable step: the same work as Onward's ``plain_step`` and DBOS's ``step``."""
    return value + 1


def three_steps(engine: DurableEngine, task: Any) -> int:
    """Three checkpointed steps in a row."""
    value = task.params["start"]
    for label in ("a", "b", "c"):
        value = engine.checkpoint(task_id=task.task_id, step_name=label,
                                  fn=lambda label=label, value=value: step(label, value),
                                  owner_run_id=task.run_id)
    return int(value)


def one(engine: DurableEngine, start: int) -> Any:
    """Spawn, claim, run and complete one workflow; its stored result."""
    ref = engine.spawn_task(name=TASK, params={"start": start})
    claimed = engine.claim_task(worker_id="bench")
    if claimed is None or claimed.task_id != ref.task_id:
        raise SystemExit(f"dura: claimed {claimed!r}, expected task {ref.task_id}")
    process_task(engine, handlers={TASK: three_steps}, task=claimed, worker_id="bench")
    info = engine.get_task(ref.task_id)
    if info.state != "completed":
        raise SystemExit(f"dura: task {ref.task_id} is {info.state}: {info.failure_reason}")
    return info.result


def seq(db: str, n: int) -> dict[str, Any]:
    engine = DurableEngine(db)
    for i in range(5):  # warm-up, as on the Onward side
        assert one(engine, -i - 10) == -i - 7
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        began = time.perf_counter()
        result = one(engine, i)
        latencies.append(time.perf_counter() - began)
        if result != i + 3:
            raise SystemExit(f"dura: three_steps({i}) returned {result!r}")
    elapsed = time.perf_counter() - start
    engine.close()
    conn = sqlite3.connect(db)
    try:
        sqlite = {"journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                  # per connection: what a new connection (dura's are new) gets
                  "synchronous": conn.execute("PRAGMA synchronous").fetchone()[0]}
    finally:
        conn.close()
    ordered = sorted(latencies)
    return {"workflows": n, "seconds": elapsed, "workflows_per_s": n / elapsed,
            "steps_per_s": 3 * n / elapsed, "p50_ms": ordered[len(ordered) // 2] * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
            "sqlite": sqlite, "dura": version("dura"), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dura_bench")
    parser.add_argument("--db", required=True)
    parser.add_argument("--n", type=int, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(seq(args.db, args.n)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
