"""Schedules: how late fires start, how fast a catch-up starts its runs, and what an idle
worker pays to look for due schedules.

    python -m bench.schedule_bench            (about 15 s)
    python -m bench.schedule_bench --seconds 3

lateness   a 100 ms allow_all schedule fired by an in-process worker: each run's start
           (its ``started``) minus its nominal fire time; median, p95, max
catch-up   one worker turn after 60 s of downtime with a 60 s window: 600 runs started
           in one transaction (runs/s)
idle look  the read a worker makes before each turn (``schedules.has_due``) and the
           wake-up computation (``schedules.next_due``) with 100 schedules: µs each
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from onward import Engine
from onward import schedules as firing

FLOWS = str(Path(__file__).resolve().parent.parent / "tests" / "flows" / "scheduled.py")


def lateness(folder: Path, seconds: float) -> dict[str, float]:
    """Start minus nominal fire time of each run a 100 ms schedule started."""
    eng = Engine(folder / "late.db", flows=[FLOWS])
    try:
        eng.create_schedule("late", "tick", every="100ms", overlap="allow_all")
        with eng.worker():
            time.sleep(seconds)  # a benchmark's measuring window, not synchronisation
        eng.pause_schedule("late")
        with eng.store.read() as tx:
            rows = tx.execute("SELECT s.fire_time, r.started FROM schedule_runs AS s JOIN "
                              "runs AS r ON r.run_id = s.run_id")
    finally:
        eng.close()
    late = sorted((started - fire) * 1000 for fire, started in rows)
    return {"fires": len(late), "median_ms": statistics.median(late),
            "p95_ms": late[int(len(late) * 0.95) - 1], "max_ms": late[-1]}


def catch_up(folder: Path) -> dict[str, float]:
    """One turn starting 600 missed fires (within the window)."""
    now = [1_796_083_200.0]
    eng = Engine(folder / "catch.db", flows=[FLOWS], clock=lambda: now[0])
    try:
        eng.create_schedule("c", "tick", every="100ms", overlap="allow_all", catchup="60s")
        began = time.perf_counter()
        with eng.advance_lock, eng.store.write() as tx:
            firing.fire_due(tx, eng.advancer, eng.new_id, now[0] + 60)
        took = time.perf_counter() - began
        fired = eng.describe_schedule("c")["counts"]["fired"]
    finally:
        eng.close()
    return {"runs": fired, "seconds": took, "runs_per_s": fired / took}


def idle_look(folder: Path, rounds: int = 2000) -> dict[str, float]:
    """µs per ``has_due`` and ``next_due`` with 100 schedules, none due."""
    eng = Engine(folder / "idle.db", flows=[FLOWS])
    try:
        for i in range(100):
            eng.create_schedule(f"s{i}", "tick", every="1h")
        now = time.time()
        with eng.store.read() as tx:
            began = time.perf_counter()
            for _ in range(rounds):
                firing.has_due(tx, now)
            has_due = (time.perf_counter() - began) / rounds * 1e6
            began = time.perf_counter()
            for _ in range(rounds):
                firing.next_due(tx, now)
            next_due = (time.perf_counter() - began) / rounds * 1e6
    finally:
        eng.close()
    return {"has_due_us": has_due, "next_due_us": next_due}


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="lateness window")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        late = lateness(folder, args.seconds)
        print(f"lateness: {late['fires']} fires, median {late['median_ms']:.1f} ms, "
              f"p95 {late['p95_ms']:.1f} ms, max {late['max_ms']:.1f} ms")
        catch = catch_up(folder)
        print(f"catch-up: {catch['runs']} runs in {catch['seconds']:.3f} s "
              f"({catch['runs_per_s']:.0f} runs/s, one transaction)")
        idle = idle_look(folder)
        print(f"idle look (100 schedules): has_due {idle['has_due_us']:.1f} µs, "
              f"next_due {idle['next_due_us']:.1f} µs")


if __name__ == "__main__":
    main()
