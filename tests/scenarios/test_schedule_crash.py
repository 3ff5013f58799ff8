"""Schedules fire exactly once per fire time while workers are killed with kill -9.

Two real worker processes share a schedule firing every 100 ms; a killer SIGKILLs one of
them after a random number of further fires (so at random points of its turns, commits
included) and starts a replacement. Afterwards no fire time has more than one run, and
every fire time between the first and the last fire has its run: downtime stays within the
catch-up window, so none is lost. ``ONWARD_SOAK_SCHEDULES=1`` runs hundreds of fires.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from onward import Engine
from onward.schedule_spec import fire_iso
from tests.helpers import WorkerProcess, wait_until

pytestmark = pytest.mark.slow

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "scheduled.py")
SOAK = bool(os.environ.get("ONWARD_SOAK_SCHEDULES"))
KILLS = 40 if SOAK else 5
INTERVAL_MS = 100


def _fired(eng: Engine) -> int:
    return int(eng.describe_schedule("fast")["counts"]["fired"])


def test_kill_9_during_fast_fires_starts_each_fire_time_exactly_once(
        any_db: str | Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(20261207)
    eng = Engine(any_db, flows=[FLOWS])
    workers: list[WorkerProcess] = []
    try:
        eng.create_schedule("fast", "tick", every=f"{INTERVAL_MS}ms", overlap="allow_all",
                            catchup="1m")
        workers = [WorkerProcess(any_db, flows=[FLOWS], concurrency=2).wait_ready()
                   for _ in range(2)]
        for _ in range(KILLS):
            target = _fired(eng) + rng.randint(1, 12)
            wait_until(lambda t=target: _fired(eng) >= t, timeout=30,
                       message=lambda t=target: f"fires to reach {t}; "
                                                f"worker: {workers[0].tail()}")
            victim = rng.randrange(len(workers))
            workers[victim].kill()
            workers[victim] = WorkerProcess(any_db, flows=[FLOWS], concurrency=2).wait_ready()
        target = _fired(eng) + 5
        wait_until(lambda: _fired(eng) >= target, timeout=30, message="fires after the kills")
        eng.pause_schedule("fast")
        for w in workers:
            w.stop()
        with eng.store.read() as tx:
            rows = tx.execute("SELECT workflow_id, count(*) FROM runs WHERE workflow_id "
                              "LIKE 'fast-%' GROUP BY workflow_id")
            recorded = tx.execute("SELECT fire_time, workflow_id FROM schedule_runs "
                                  "WHERE schedule_id = 'fast'")
        twice = [wid for wid, n in rows if n > 1]
        assert twice == [], f"fire times started twice: {twice[:10]}"
        fire_ms = sorted(round(f * 1000) for f, _ in recorded)
        assert len(fire_ms) == len(set(fire_ms)) == len(rows)
        expected = list(range(fire_ms[0], fire_ms[-1] + 1, INTERVAL_MS))
        lost = sorted(set(expected) - set(fire_ms))
        assert lost == [], f"fire times lost: {[fire_iso(m / 1000) for m in lost[:10]]}"
        assert {wid for _, wid in recorded} == {f"fast-{fire_iso(m / 1000)}" for m in fire_ms}
        counts = eng.describe_schedule("fast")["counts"]
        assert counts == {"fired": len(fire_ms), "skipped": 0, "missed": 0}
        assert len(fire_ms) >= KILLS * 2
        with capsys.disabled():
            print(f"\n  schedule crash | {KILLS} kills, {len(fire_ms)} fire times, each "
                  "started once, none lost")
    finally:
        for w in workers:
            w.kill()
        eng.close()
