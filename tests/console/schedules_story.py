"""Schedules at fixed times for the Schedules screen's tests and snapshots (no worker runs,
so nothing fires on its own: the countdowns only move when a test moves the clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onward import Engine

from .conftest import FLOWS, PROVIDERS, T0, FixedClock, sequential_ids


def seed_schedules(engine: Engine, clock: FixedClock) -> None:
    """ping (every 30s; a terminated and a running run), nightly-report (cron in Berlin,
    never fired) and cleanup (paused, with a note). Leaves the clock at T0 + 12, when ping
    is due in 18s."""
    clock.t = T0 + 1
    engine.create_schedule("nightly-report", "waiter", "report", cron="30 2 * * *",
                           tz="Europe/Berlin", overlap="buffer_one", note="EU revenue report")
    engine.create_schedule("ping", "waiter", "ping", every="30s")
    engine.create_schedule("cleanup", "waiter", "cleanup", every="1h", paused=True,
                           note="warehouse migration")
    clock.t = T0 + 2
    assert engine.trigger_schedule("ping") == "started"
    engine.terminate(engine.describe_schedule("ping")["recent"][0]["id"], reason="test")
    clock.t = T0 + 5
    assert engine.trigger_schedule("ping") == "started"
    clock.t = T0 + 8
    assert engine.trigger_schedule("ping") == "skipped"  # the T0 + 5 run is open
    clock.t = T0 + 12


def schedules_engine(make_engine: Any, workdir: Path) -> tuple[Engine, FixedClock]:
    """An engine on a fresh database seeded by ``seed_schedules``."""
    clock = FixedClock(T0)
    engine = make_engine(flows=[FLOWS], plugins=[PROVIDERS], clock=clock,
                         ids=sequential_ids())
    seed_schedules(engine, clock)
    return engine, clock
