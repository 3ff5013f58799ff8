"""Screenshots of each screen on a deterministic database (fixed clock and ids, no worker).

Regenerate after an intended change with ``pytest tests/console --snapshot-update`` and
look at the SVGs before committing them.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from onward.console.app import OnwardApp
from onward.console.screens.modals import ConfirmModal, StartModal
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.widgets.pulse import PulseHeader
from onward.console.widgets.runs_table import RunsTable
from onward.console.widgets.timeline import Timeline

from .conftest import FLOWS, FixedClock, no_blink, pulse_read, sequential_ids, top, wait_for

SIZE = (120, 40)


def _app(story: Any) -> OnwardApp:
    engine, clock = story
    return OnwardApp(engine, worker=False, clock=clock)


async def _runs_loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.query(RunsTable)
                   and app.screen.query_one(RunsTable).row_count == 6, "six runs listed")
    await wait_for(pilot, lambda: app.screen.query_one(PulseHeader).reads >= 1,
                   "the live header's first read")


def test_runs_screen(snap_compare: Any, story: Any) -> None:
    assert snap_compare(_app(story), terminal_size=SIZE, run_before=_runs_loaded)


def test_runs_screen_filtered_light(snap_compare: Any, story: Any) -> None:
    """The failed filter in the light theme."""
    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await pilot.press("ctrl+t")
        top(pilot.app).action_set_filter("failed")
        await wait_for(pilot, lambda: pilot.app.screen.query_one(RunsTable).row_count == 1,
                       "only the failed run listed")

    assert snap_compare(_app(story), terminal_size=SIZE, run_before=run_before)


def test_runs_screen_empty_database(snap_compare: Any, make_engine: Any, workdir: Any
                                    ) -> None:
    clock = FixedClock(0)
    engine = make_engine(flows=[FLOWS], clock=clock, ids=sequential_ids())
    app = OnwardApp(engine, worker=False, clock=clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: top(app).loads >= 1, "the first load")
        await pulse_read(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_run_detail_screen(snap_compare: Any, story: Any) -> None:
    """The failed run: error in the summary, timeline, an ActivityScheduled event selected."""
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await app.push_screen(RunDetailScreen("charge-3"))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                       and app.screen.query_one(Timeline).row_count == 7
                       and app.screen.query_one(Timeline).cursor_row == 6, "the history")
        await pilot.press("up", "up", "up")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_run_detail_pending_tab(snap_compare: Any, story: Any) -> None:
    """The backing-off run's pending activity: attempt, next retry countdown, last failure."""
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await app.push_screen(RunDetailScreen("payout-9"))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                       and top(app).loads >= 1, "the run")
        await pilot.press("w")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_tasks_screen(snap_compare: Any, story: Any) -> None:
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: getattr(app.screen, "loads", 0) >= 1
                       and app.screen.id == "tasks", "the tasks inbox")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_providers_screen(snap_compare: Any, story: Any) -> None:
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await pilot.press("3")
        await wait_for(pilot, lambda: getattr(app.screen, "loads", 0) >= 1
                       and app.screen.id == "providers", "the providers")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare: Any, story: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(_app(story), terminal_size=SIZE, run_before=run_before)


def test_start_modal(snap_compare: Any, story: Any) -> None:
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, StartModal), "the start dialog")
        await pilot.pause()
        no_blink(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_bulk_terminate_confirmation(snap_compare: Any, story: Any) -> None:
    """Every open run shown: the button says what it does, "Keep" has focus, a reason is
    required (asked for after a bare ctrl+s)."""
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        top(app).action_set_filter("open")
        await wait_for(pilot, lambda: app.screen.query_one(RunsTable).row_count == 4,
                       "the open runs")
        await pilot.press("T")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the dialog")
        await pilot.press("ctrl+s")
        await pilot.press("tab", "tab")  # from the reason, past the button, to "Keep"
        no_blink(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_refused_reload_banner(snap_compare: Any, story: Any) -> None:
    """A refused reload stays under the header (set here as the watcher would)."""
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _runs_loaded(pilot)
        app.refused_reloads = {"/srv/app/flows/orders.py": (
            "kept the previous code: the new code would break o-1 (workflow task failed: "
            "history has ActivityScheduled charge at event 2, the code asked for charge_v2)")}
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
