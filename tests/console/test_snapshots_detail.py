"""Screenshots at 80x24 and 160x45 of the run detail's history tools and chart, the repair
dialog, the Workers, Code and Tasks screens (fixed clock and ids, no worker).

Regenerate after an intended change with ``pytest tests/console/test_snapshots_detail.py
--snapshot-update`` and look at the SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from onward.console.app import OnwardApp
from onward.console.screens.modals import (
    AnswerModal,
    CompleteTaskModal,
    HandlerNames,
    RepairModal,
    SignalModal,
    StartModal,
)
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.widgets.timeline import Timeline

from .conftest import T0, no_blink, pulse_read, top, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 45), id="160x45")]
Steps = Callable[[Pilot[Any]], Awaitable[None]]


def _app(story: Any) -> OnwardApp:
    engine, clock = story
    return OnwardApp(engine, worker=False, clock=clock)


async def _detail(pilot: Pilot[Any], ident: str) -> RunDetailScreen:
    app = pilot.app
    await wait_for(pilot, lambda: getattr(app.screen, "loads", 0) >= 1, "the first screen")
    await pulse_read(pilot)
    await app.push_screen(RunDetailScreen(ident))
    screen: RunDetailScreen = await wait_for(
        pilot, lambda: isinstance(app.screen, RunDetailScreen) and top(app).loads >= 1
        and app.screen.query_one(Timeline).row_count > 0 and app.screen, f"{ident}'s history")
    await pilot.pause()
    no_blink(pilot)
    return screen


@pytest.mark.parametrize("size", SIZES)
def test_history_searched(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """The failed charge, searched for "charge": the count and the traceback as text."""
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _detail(pilot, "charge-3")
        await pilot.press("slash", *"charge", "enter", "end")
        await wait_for(pilot, lambda: screen.query_one(Timeline).row_count == 5, "matches")
        no_blink(pilot)

    assert snap_compare(_app(story), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_history_folded(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """The backing-off payout with its activity folded into one row and a countdown."""
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _detail(pilot, "payout-9")
        await pilot.press("z")
        await wait_for(pilot, lambda: screen.query_one(Timeline).compact, "folded")

    assert snap_compare(_app(story), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_chart(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """The backing-off payout: the run, its failed attempt and the backoff up to now."""
    async def run_before(pilot: Pilot[Any]) -> None:
        await _detail(pilot, "payout-9")
        await pilot.press("m")
        await pilot.pause()

    assert snap_compare(_app(story), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_reset_dialog(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """Reset the approved laptop to its first event: the completed record is flagged and the
    buttons stay on screen."""
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _detail(pilot, "laptop-2")
        await pilot.press("home", "b")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, RepairModal)
                               and app.screen, "the reset dialog")
        await wait_for(pilot, lambda: modal.query_one("#consent").display, "the consent box")
        modal.query_one("#cut-seq", Input).cursor_blink = False

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_workers_screen(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """One registered worker (recorded with fixed values, as a worker process would)."""
    engine, _clock = story
    from onward.store import membership
    with engine.store.write() as tx:
        membership.register_worker(tx, "worker-a1", host="build-7", pid=4242,
                                   pid_start="1", now=T0 + 500, lease_ttl=30.0,
                                   concurrency=8, activities=["console.record"])
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("4")
        await wait_for(pilot, lambda: app.screen.id == "workers"
                       and getattr(app.screen, "loads", 0) >= 1, "the workers")
        await pulse_read(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_code_screen(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """The flows file and the provider with their versions; the flows file selected."""
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("3")
        await wait_for(pilot, lambda: app.screen.id == "providers"
                       and getattr(app.screen, "loads", 0) >= 1, "the code")
        await pulse_read(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_tasks_filtered(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """The inbox with only overdue tasks shown."""
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.id == "tasks"
                       and getattr(app.screen, "loads", 0) >= 1, "the inbox")
        await pulse_read(pilot)
        top(app).query_one("#tasks-due").value = "overdue"
        await wait_for(pilot, lambda: len(top(app).tasks) == 1, "the overdue task")
        no_blink(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_json_error_inline(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """Completing a task with broken JSON: the spot is shown under the editor."""
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.id == "tasks"
                       and getattr(app.screen, "loads", 0) >= 1, "the inbox")
        await pulse_read(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompleteTaskModal), "dialog")
        await pilot.press("ctrl+a", *'{"approved": tru, "note": "ok"}')
        no_blink(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def _dialog_on(pilot: Pilot[Any], ident: str, key: str, kind: type) -> Any:
    await _detail(pilot, ident)
    await pilot.press(key)
    return await wait_for(pilot, lambda: isinstance(pilot.app.screen, kind)
                          and pilot.app.screen, f"the dialog of {key}")


@pytest.mark.parametrize("size", SIZES)
def test_signal_dialog(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """The signal dialog on the waiting launch (it waits with wait_signal, so no handler
    is declared): the note says so, the buttons are on screen."""
    async def run_before(pilot: Pilot[Any]) -> None:
        modal = await _dialog_on(pilot, "launch-1", "g", SignalModal)
        names = modal.query_one(HandlerNames)
        await wait_for(pilot, lambda: "loading" not in str(names.render()),
                       "the signal names")
        no_blink(pilot)

    assert snap_compare(_app(story), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_answer_dialog(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """A long query answer shown whole."""
    app = _app(story)

    async def run_before(pilot: Pilot[Any]) -> None:
        await _detail(pilot, "trip-7")
        await app.push_screen(AnswerModal("Query status of trip-7", {
            "state": "waiting for the manager", "request": {
                "what": "a trip to Lisbon", "manager": "alice"},
            "history": [f"reminder {i} sent" for i in range(1, 13)]}))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_start_dialog(snap_compare: Any, story: Any, size: tuple[int, int]) -> None:
    """Run the approved laptop again: the start dialog prefilled, buttons on screen."""
    async def run_before(pilot: Pilot[Any]) -> None:
        await _dialog_on(pilot, "laptop-2", "a", StartModal)
        await pilot.pause()
        no_blink(pilot)

    assert snap_compare(_app(story), terminal_size=size, run_before=run_before)
