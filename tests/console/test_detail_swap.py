"""One run detail screen is kept and swapped to the run opened next: nothing of the run
shown before (filter, search, fold, tab, selected event, data) survives the swap."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import DataTable, Input, Select, Static, TabbedContent

from onward.console.app import OnwardApp
from onward.console.messages import OpenRun
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.widgets.json_view import JsonView
from onward.console.widgets.run_summary import RunSummary
from onward.console.widgets.timeline import Timeline

from .conftest import wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def _open(pilot: Any, app: OnwardApp, ident: str) -> RunDetailScreen:
    app.post_message(OpenRun(ident))
    return await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)  # type: ignore[no-any-return]
                          and app.screen.ident == ident and app.screen.loads >= 1
                          and app.screen, f"the detail of {ident}")


async def test_second_run_reuses_the_screen_and_drops_the_first(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        runs_screen = app.screen
        first = await _open(pilot, app, "charge-3")
        timeline = first.query_one(Timeline)
        first.query_one("#history-type", Select).value = "ActivityScheduled"
        await wait_for(pilot, lambda: timeline.kind == "ActivityScheduled", "the type filter")
        first.query_one("#history-search", Input).value = "charge"
        await wait_for(pilot, lambda: timeline.needle == "charge", "the search")
        timeline.focus()
        await pilot.press("z")
        await wait_for(pilot, lambda: timeline.compact, "the fold")
        await pilot.press("i")
        await wait_for(pilot, lambda: first.query_one(TabbedContent).active == "io", "io tab")
        first.query_one("#outcome", JsonView).show(list(range(200)))  # long: scrolls
        await pilot.pause()
        first.query_one("#outcome", JsonView).scroll_end(animate=False, immediate=True)
        await wait_for(pilot, lambda: first.query_one("#outcome", JsonView).scroll_y > 0,
                       "the result scrolled down")
        charge_run = first.run["run_id"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is runs_screen, "back to the runs")

        second = await _open(pilot, app, "laptop-2")
        assert second is first  # kept, not composed again
        timeline = second.query_one(Timeline)
        assert (timeline.kind, timeline.needle, timeline.compact) == (None, "", False)
        assert second.query_one("#history-search", Input).value == ""
        assert second.query_one("#history-type", Select).is_blank()
        assert second.query_one(TabbedContent).active == "timeline"
        assert app.focused is timeline
        laptop = engine.show("laptop-2")
        assert second.run["run_id"] == laptop["run_id"] != charge_run
        assert [e["seq"] for e in timeline.events] == [e["seq"] for e in laptop["history"]]
        assert timeline.row_count == len(laptop["history"])  # nothing filtered or folded
        assert "laptop-2" in str(second.query_one(RunSummary).render())
        assert "charge" not in str(second.query_one(RunSummary).render())
        count = str(second.query_one("#history-count", Static).render())
        assert count == f"{len(laptop['history'])} events"
        related = second.query_one("#related-table", DataTable)
        assert all(str(related.get_row_at(i)[1]) == "laptop-2"
                   for i in range(related.row_count))
        assert "laptop" in str(second.query_one("#input", JsonView).value)
        assert second.query_one("#outcome", JsonView).scroll_y == 0
        assert second.query_one("#outcome", JsonView).value == laptop["result"]
        options = [str(o[0]) for o in second.query_one("#history-type", Select)._options]
        assert "ActivityFailed" not in options  # charge-3's failure type is gone


async def test_related_run_from_a_detail_gets_its_own_screen(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        first = await _open(pilot, app, "charge-3")
        second = await _open(pilot, app, "laptop-2")  # as the related table would post
        assert second is not first and first in app.screen_stack
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is first, "back to the first run")
        assert first.ident == "charge-3" and first.run["id"] == "charge-3"


async def test_kept_screen_comes_up_with_the_new_run_in_place(story: Any) -> None:
    """The kept screen is read first and pushed after: the moment it is on screen again it
    shows the new run (never the run before, never an empty "loading" screen)."""
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    seen: list[tuple[str, Any, int]] = []

    def changed(screen: Any) -> None:
        if isinstance(screen, RunDetailScreen):
            seen.append((screen.ident, screen.run.get("id"),
                         screen.query_one(Timeline).row_count))

    async with app.run_test(size=SIZE) as pilot:
        app.screen_change_signal.subscribe(app, changed)
        runs_screen = app.screen
        await _open(pilot, app, "charge-3")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is runs_screen, "back to the runs")
        seen.clear()
        await _open(pilot, app, "laptop-2")
        laptop = engine.show("laptop-2")
        assert seen == [("laptop-2", "laptop-2", len(laptop["history"]))]


async def test_open_is_dropped_when_another_screen_comes_on_top_first(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        runs_screen = app.screen
        first = await _open(pilot, app, "charge-3")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is runs_screen, "back to the runs")
        first.open_run("laptop-2")  # as the app does for OpenRun ...
        app.action_help()  # ... and help comes up before the run is read
        await wait_for(pilot, lambda: first.run.get("id") == "laptop-2", "the run read")
        await pilot.pause()
        assert app.screen is not first and first not in app.screen_stack
