"""The Workers screen over Engine.workers(): a real in-process worker holding an attempt;
ages measured on the store's clock when the console's clock is off."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from onward import Engine
from onward.console.app import OnwardApp
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.screens.workers import HeldTable, WorkersScreen, WorkersTable
from onward.console.widgets.format import parse_time
from onward.store import membership
from tests.pg import pg_url  # noqa: F401 - a fixture

from .conftest import HERE, T0, FixedClock, statuses, wait_for

pytestmark = pytest.mark.anyio
FLOWS = str(HERE / "flows_workers.py")
HOUR = 3600.0
SECONDS_AGO = re.compile(r"(just now|\d+s ago)")


def test_engine_workers_lists_the_held_attempt(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("held", str(workdir / "gate"), id="hold-1")
    with engine.worker(concurrency=3):
        deadline_ok = False
        for _ in range(400):
            rows = engine.workers()
            if rows and rows[0]["running"]:
                deadline_ok = True
                break
            engine.wait_for_change(0.05)
        assert deadline_ok, "the worker never showed the held attempt"
        worker = rows[0]
        assert worker["concurrency"] == 3 and worker["pid"] > 0 and worker["host"]
        assert worker["heartbeat_age"] >= 0 and worker["lease_ttl"] > 0
        read_at = parse_time(worker["read_at"])  # the engine's time the age is measured at
        assert read_at is not None and read_at == pytest.approx(
            parse_time(worker["heartbeat"]) + worker["heartbeat_age"], abs=0.002)
        assert "workers.hold" in worker["activities"]
        [attempt] = worker["running"]
        assert attempt["id"] == "hold-1" and attempt["name"] == "workers.hold"
        assert attempt["attempt"] == 1
        (workdir / "gate").touch()
        for _ in range(400):
            if statuses(engine)["hold-1"]["status"] == "completed":
                break
            engine.wait_for_change(0.05)
    assert engine.workers() == []  # a stopped worker deregisters


async def test_workers_screen_shows_the_worker_and_opens_its_run(make_engine: Any,
                                                                 workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("held", str(workdir / "gate"), id="hold-1")
    app = OnwardApp(engine, concurrency=2)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("4")
            screen = await wait_for(pilot, lambda: isinstance(app.screen, WorkersScreen)
                                    and app.screen, "the workers screen")
            await wait_for(pilot, lambda: screen.members and screen.members[0]["running"],
                           "the worker holding hold-1's attempt")
            table = screen.query_one(WorkersTable)
            assert table.row_count == 1
            assert str(table.get_row_at(0)[3]) == "1 / 2"  # running / concurrency
            held = screen.query_one(HeldTable)
            await wait_for(pilot, lambda: held.row_count == 1, "the held attempt listed")
            assert [str(c) for c in held.get_row_at(0)[:3]] == ["hold-1", "workers.hold", "1"]
            await pilot.press("o")
            detail = await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                                    and app.screen, "the held run opened")
            assert detail.ident == screen.members[0]["running"][0]["run_id"]
            (workdir / "gate").touch()
    finally:
        (workdir / "gate").touch()


async def _held_shown(pilot: Any, app: OnwardApp) -> WorkersScreen:
    await pilot.press("4")
    screen: WorkersScreen = await wait_for(
        pilot, lambda: isinstance(app.screen, WorkersScreen) and app.screen, "the screen")
    await wait_for(pilot, lambda: screen.members and screen.members[0]["running"]
                   and screen.query_one(HeldTable).row_count == 1, "the held attempt")
    return screen


def _assert_ages_in_seconds(screen: WorkersScreen) -> None:
    beat = str(screen.query_one(WorkersTable).get_row_at(0)[4])
    assert re.fullmatch(r"\d+\.\d+s ago", beat), beat  # seconds, not an hour; not late
    started = str(screen.query_one(HeldTable).get_row_at(0)[3])
    assert SECONDS_AGO.fullmatch(started), started
    title = str(screen.query_one(HeldTable).border_title)
    assert SECONDS_AGO.search(title.split("started ")[-1]), title


async def test_ages_are_measured_on_the_stores_clock(make_engine: Any, workdir: Path
                                                     ) -> None:
    """The engine (leases, heartbeats) keeps time an hour behind the console's wall clock:
    the worker and its attempt are seconds old, not an hour."""
    engine = make_engine(flows=[FLOWS], clock=lambda: time.time() - HOUR)
    engine.start("held", str(workdir / "gate"), id="hold-1")
    app = OnwardApp(engine, concurrency=2, clock=time.time)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            _assert_ages_in_seconds(await _held_shown(pilot, app))
            (workdir / "gate").touch()
    finally:
        (workdir / "gate").touch()


async def test_heartbeat_ages_between_reads_on_the_stores_clock(make_engine: Any,
                                                                workdir: Path) -> None:
    """A worker that stops beating commits nothing, so nothing reloads the screen: its age
    grows with the time passed (read off the console's clock as a difference), from the
    store's time at the last read, and turns late after the lease."""
    store_clock = FixedClock(T0 + HOUR)
    engine = make_engine(flows=[FLOWS], clock=store_clock)
    with engine.store.write() as tx:
        membership.register_worker(tx, "worker-a1", host="far", pid=7, pid_start="1",
                                   now=T0 + HOUR - 2, lease_ttl=5.0, concurrency=4,
                                   activities=[])
    console = FixedClock(T0)  # this console's clock: an hour behind the store's
    app = OnwardApp(engine, worker=False, clock=console)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, WorkersScreen)
                                and app.screen.loads >= 1 and app.screen, "the workers")
        table = screen.query_one(WorkersTable)
        assert str(table.get_row_at(0)[4]) == "2.0s ago"
        assert str(screen.query_one(HeldTable).border_title).endswith("started 2s ago")
        loads = screen.loads
        console.t += 10
        await wait_for(pilot, lambda: str(table.get_row_at(0)[4]) == "⚠ 12.0s ago",
                       "the heartbeat to age past its 5 s lease")
        assert screen.loads == loads  # aged without reading the store again


@pytest.mark.postgres
async def test_on_postgresql_ages_follow_the_servers_clock(
        pg_url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A console on a host whose clock is an hour fast, a worker on a host whose clock is
    right: the console's engine keeps PostgreSQL's time, so the ages are seconds."""
    workers = Engine(pg_url, flows=[FLOWS])
    monkeypatch.setenv("ONWARD_TIME_SHIFT", str(HOUR))
    console_engine = Engine(pg_url, flows=[FLOWS])
    monkeypatch.delenv("ONWARD_TIME_SHIFT")
    gate = workdir / "gate"
    try:
        workers.start("held", str(gate), id="hold-1")
        with workers.worker(concurrency=2):
            app = OnwardApp(console_engine, worker=False,
                            clock=lambda: time.time() + HOUR)  # the console host's clock
            async with app.run_test(size=(120, 40)) as pilot:
                _assert_ages_in_seconds(await _held_shown(pilot, app))
                gate.touch()
    finally:
        gate.touch()
        console_engine.close()
        workers.close()
