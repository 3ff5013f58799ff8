"""Screenshots of the runs screen and help at 80x24 and 160x45 (fixed clock and ids, no
worker): the needs-attention order, relative times, countdowns, the selection, the live
header, and a dialog that keeps its buttons on a small terminal.

Regenerate after an intended change with ``pytest tests/console --snapshot-update`` and
look at the SVGs before committing them."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from onward.console.app import OnwardApp
from onward.console.screens.modals import ConfirmModal

from .conftest import no_blink, wait_for
from .test_snapshots import _runs_loaded

SMALL, LARGE = (80, 24), (160, 45)


def _app(story: Any) -> OnwardApp:
    engine, clock = story
    return OnwardApp(engine, worker=False, clock=clock)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x45"])
def test_runs_needing_attention_first(snap_compare: Any, story: Any,
                                      size: tuple[int, int]) -> None:
    assert snap_compare(_app(story), terminal_size=size, run_before=_runs_loaded)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x45"])
def test_runs_with_a_selection(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await pilot.press("space", "j", "j", "space", "j")

    assert snap_compare(_app(story), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x45"])
def test_help(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(_app(story), terminal_size=size, run_before=run_before)


def test_bulk_confirmation_keeps_its_buttons_at_80x24(snap_compare: Any, story: Any) -> None:
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await pilot.press("space", "j", "space", "t")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the dialog")
        no_blink(pilot)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)
