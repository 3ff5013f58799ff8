"""The Workers screen over Engine.workers(): a real in-process worker holding an attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from onward.console.app import OnwardApp
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.screens.workers import HeldTable, WorkersScreen, WorkersTable

from .conftest import HERE, statuses, wait_for

pytestmark = pytest.mark.anyio
FLOWS = str(HERE / "flows_workers.py")


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
