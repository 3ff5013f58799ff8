"""Screenshots of the Schedules screen at 80x24 and 160x45 (fixed clock and ids, no worker).

Regenerate after an intended change with ``pytest tests/console --snapshot-update`` and
look at the SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from onward.console.app import OnwardApp
from onward.console.screens.modals import BackfillModal, ConfirmModal
from onward.console.screens.schedules import NextFires, SchedulesScreen, SchedulesTable

from .conftest import no_blink, pulse_read, wait_for
from .schedules_story import schedules_engine


def _app(make_engine: Any, workdir: Path) -> OnwardApp:
    engine, clock = schedules_engine(make_engine, workdir)
    return OnwardApp(engine, worker=False, clock=clock)


async def _on_ping(pilot: Pilot[Any]) -> None:
    """The schedules screen with ping (two recent actions) selected."""
    app = pilot.app
    await pilot.press("5")
    await wait_for(pilot, lambda: isinstance(app.screen, SchedulesScreen)
                   and app.screen.query_one(SchedulesTable).row_count == 3,
                   "three schedules listed")
    await pilot.press("down", "down")
    await wait_for(pilot, lambda: app.screen.query_one(NextFires).border_title == "ping",
                   "ping selected")
    await pulse_read(pilot)


def test_schedules_80x24(snap_compare: Any, make_engine: Any, workdir: Path) -> None:
    assert snap_compare(_app(make_engine, workdir), terminal_size=(80, 24),
                        run_before=_on_ping)


def test_schedules_160x45(snap_compare: Any, make_engine: Any, workdir: Path) -> None:
    assert snap_compare(_app(make_engine, workdir), terminal_size=(160, 45),
                        run_before=_on_ping)


def test_schedules_pause_dialog_80x24(snap_compare: Any, make_engine: Any, workdir: Path
                                      ) -> None:
    """The pause dialog keeps its note field and buttons on screen at 80x24."""
    async def run_before(pilot: Pilot[Any]) -> None:
        await _on_ping(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal),
                       "the pause dialog")
        no_blink(pilot)

    assert snap_compare(_app(make_engine, workdir), terminal_size=(80, 24),
                        run_before=run_before)


async def _backfill_dialog(pilot: Pilot[Any]) -> None:
    """The backfill dialog on ping, its preview of the last hour's fire times shown."""
    await _on_ping(pilot)
    await pilot.press("b")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, BackfillModal)
                   and pilot.app.screen.previewed is not None, "the fire times previewed")
    no_blink(pilot)


def test_schedules_backfill_dialog_80x24(snap_compare: Any, make_engine: Any,
                                         workdir: Path) -> None:
    assert snap_compare(_app(make_engine, workdir), terminal_size=(80, 24),
                        run_before=_backfill_dialog)


def test_schedules_backfill_dialog_160x45(snap_compare: Any, make_engine: Any,
                                          workdir: Path) -> None:
    assert snap_compare(_app(make_engine, workdir), terminal_size=(160, 45),
                        run_before=_backfill_dialog)
