"""Where a PostgreSQL drain's time goes: per workflow, round trips, client CPU, server CPU.

Starts ``n`` three-step runs with no worker, then drains them with one in-process worker
(concurrency 32, as the drain section's worker processes) and reports, per workflow: the
round trips and commits the store counted, this process's CPU time (``time.process_time``:
every thread, the dispatcher's and the executor's) and the CPU time of the server backends
serving this schema (read from ``/proc/<pid>/stat``; the server must run on this machine),
beside the wall clock. CPU times are what to compare on a loaded machine: the wall clock
says which of them (or the waits between them) bounds the rate.

    python -m bench.pg_costs [--n 2000] [--rounds 1] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import time
from pathlib import Path
from typing import Any

from bench.common import THROUGHPUT_WORKFLOW
from bench.pg_bench import _engine, fresh_schema, unavailable

TICKS = os.sysconf("SC_CLK_TCK")


def _backend_cpu(pids: list[int]) -> float:
    """Seconds of CPU the server processes ``pids`` used so far (those still alive)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def _backends(eng: Any, schema: str) -> list[int]:
    with eng.store.read() as tx:
        return [int(r[0]) for r in tx.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = ?", (schema,))]


def drain_costs(n: int, profile: str | None = None) -> dict[str, float]:
    """One drain of ``n`` runs by an in-process worker: its costs per workflow."""
    from tests.helpers import wait_until
    with fresh_schema() as url, _engine(url) as eng:
        schema = url.rsplit("application_name=", 1)[1]
        for i in range(n):
            eng.start(THROUGHPUT_WORKFLOW, i)
        prof = cProfile.Profile() if profile else None
        if prof is not None:
            _profile_dispatcher(prof)
        worker = eng.worker(concurrency=32)
        with worker:
            wait_until(lambda: len(_backends(eng, schema)) >= 2, timeout=30,
                       message="the worker's connection opens")
            pids = _backends(eng, schema)
            trips0, commits0 = eng.store.round_trips, eng.store.commits
            server0, client0, wall0 = _backend_cpu(pids), time.process_time(), \
                time.perf_counter()
            wait_until(lambda: _completed(url) >= n, timeout=max(120.0, n / 5),
                       interval=0.05, message=f"{n} runs complete")
            wall = time.perf_counter() - wall0
            client = time.process_time() - client0
            server = _backend_cpu(pids) - server0
            trips = eng.store.round_trips - trips0
            commits = eng.store.commits - commits0
        if prof is not None:
            prof.dump_stats(profile)
    return {"wf_per_s": n / wall, "round_trips": trips / n, "commits": commits / n,
            "client_us": 1e6 * client / n, "server_us": 1e6 * server / n,
            "wall_us": 1e6 * wall / n}


def _profile_dispatcher(prof: cProfile.Profile) -> None:
    """Profile each dispatcher turn (the dispatcher thread only) into ``prof``."""
    from onward.worker import Worker
    tick = Worker._tick

    def profiled(self: Worker) -> bool:
        prof.enable()
        try:
            return tick(self)
        finally:
            prof.disable()

    Worker._tick = profiled  # type: ignore[method-assign]


def _completed(url: str) -> int:
    """Completed runs, read on a connection of its own (not counted by the store)."""
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM runs WHERE status = 'completed'").fetchone()
    return int(row[0]) if row else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_costs", description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", help="write a cProfile of the dispatcher's turns here")
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    for _ in range(args.rounds):
        c = drain_costs(args.n, args.profile)
        print(f"drain {args.n}: {c['wf_per_s']:.0f} wf/s; per workflow: "
              f"{c['round_trips']:.2f} round trips, {c['commits']:.3f} commits, "
              f"client CPU {c['client_us']:.0f} us, server CPU {c['server_us']:.0f} us, "
              f"wall {c['wall_us']:.0f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
