"""The keyboard is never stranded: after start-up, every dialog, a filter change and an empty
result something sensible has focus, and the screen's keys keep working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select

from onward.console.app import OnwardApp
from onward.console.screens.help import HelpScreen
from onward.console.screens.modals import ConfirmModal, StartModal
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.screens.runs import RunsScreen
from onward.console.widgets.runs_table import RunsTable

from .conftest import FLOWS, run_ids, top, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)



async def test_on_a_fresh_database_the_runs_table_has_focus_and_keeps_it_as_runs_arrive(
        make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: top(app).loads >= 1, "the first (empty) load")
        await pilot.pause()
        assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"
        engine.start("waiter", "a", id="launch-1")
        engine.start("waiter", "b", id="launch-2")
        await wait_for(pilot, lambda: len(run_ids(app)) == 2, "the runs to appear")
        assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"
        await pilot.press("down", "enter")  # arrows and enter work at once
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "the detail")
        assert app.screen.ident == "launch-1"


async def test_after_help_keys_go_to_the_table_not_the_search_box(make_engine: Any,
                                                                   workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: top(app).loads >= 1, "the first (empty) load")
        for _ in range(2):  # on an empty database, then with runs
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "help closed")
            await pilot.press("s")  # sort: a screen key, not a letter for the search box
            await pilot.pause()
            assert app.screen.query_one("#search", Input).value == ""
            assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"
            engine.start("waiter", "a", id="launch-1")
            await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the run listed")


async def test_after_choosing_a_filter_enter_opens_a_run_not_the_dropdown(
        make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "a", id="launch-1")
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the run listed")
        await pilot.press("f", *"open", "enter")
        await wait_for(pilot, lambda: top(app).status_filter == "open", "the filter")
        await pilot.pause()
        assert not app.screen.query_one("#filter", Select).expanded
        assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"
        await pilot.press("f")  # opened and dismissed without a choice: the same
        await wait_for(pilot, lambda: app.screen.query_one("#filter", Select).expanded,
                       "the dropdown")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen),
                       "enter to open the run")


async def test_an_empty_filtered_list_leaves_the_keys_working(make_engine: Any,
                                                             workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "a", id="launch-1")
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the run listed")
        await pilot.press("f", *"fail", "enter")
        await wait_for(pilot, lambda: top(app).status_filter == "failed" and not run_ids(app)
                       and top(app).loads >= 2, "the empty failed list")
        await pilot.pause()
        assert app.focused is not None and not isinstance(app.focused, Input | Select), \
            f"focus on {app.focused!r}"
        await pilot.press("f")  # the filter key still works
        await wait_for(pilot, lambda: app.screen.query_one("#filter", Select).expanded,
                       "the filter dropdown to open again")
        await pilot.press(*"open", "enter")
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the running run again")
        assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"
        await pilot.press("f", *"fail", "enter")
        await wait_for(pilot, lambda: top(app).status_filter == "failed" and not run_ids(app),
                       "empty again")
        await pilot.press("escape")  # clear the filter from the empty list
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "all runs back")
        assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"


@pytest.mark.parametrize("dialog", ["confirm", "start"])
async def test_after_a_dialog_closes_the_table_has_focus(dialog: str, make_engine: Any,
                                                         workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "a", id="launch-1")
    app = OnwardApp(engine, worker=False)
    modal = ConfirmModal if dialog == "confirm" else StartModal
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the run listed")
        await pilot.press("/")  # focus elsewhere first: the dialog must not return there
        await pilot.press("escape")
        for _ in range(2):  # cancelled with escape, then with the keep/cancel button
            await pilot.press("p" if dialog == "confirm" else "n")
            await wait_for(pilot, lambda: isinstance(app.screen, modal), "the dialog")
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "closed")
            await pilot.pause()
            assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"


async def test_the_detail_screen_returns_focus_to_the_table(make_engine: Any,
                                                           workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "a", id="launch-1")
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the run listed")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "the detail")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "back")
        await pilot.pause()
        assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"
        for key in ("2", "3", "1"):  # other modes and back
            await pilot.press(key)
            await pilot.pause()
            assert app.focused is not None and not isinstance(app.focused, Input), \
                f"after {key}: focus on {app.focused!r}"
        assert isinstance(app.focused, RunsTable), f"focus on {app.focused!r}"
