"""The timeline is a virtual list: a long history costs what its visible rows cost (only
those are drawn when opened, folded or searched), and it behaves like the table it
replaced: the cursor follows the tail, stays on its event across filter changes, home/end
and the page keys move it, a click selects a row."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult

from onward.console.app import OnwardApp
from onward.console.widgets import timeline as timeline_module
from onward.console.widgets.json_view import JsonView
from onward.console.widgets.timeline import Timeline

from .conftest import open_detail, wait_for

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


def _history(activities: int) -> list[dict[str, Any]]:
    """A run of ``activities`` steps: each scheduled, then completed (2 events a step)."""
    events = [{"seq": 1, "type": "WorkflowStarted", "time": "2026-03-02T09:30:00+00:00",
               "attrs": {"workflow": "long", "args": []}}]
    for i in range(activities):
        seq = len(events) + 1
        when = f"2026-03-02T09:{30 + i // 60 % 30:02d}:{i % 60:02d}+00:00"
        events.append({"seq": seq, "type": "ActivityScheduled", "time": when,
                       "attrs": {"name": f"step.{i}", "args": [i]}})
        events.append({"seq": seq + 1, "type": "ActivityCompleted", "time": when,
                       "attrs": {"ref": seq, "attempt": 1, "result": i}})
    return events


class _One(App[None]):
    def compose(self) -> ComposeResult:
        yield Timeline()


def _count_drawn(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Seqs of the events whose row was worked out (their details described)."""
    drawn: list[int] = []
    real = timeline_module.describe_event
    monkeypatch.setattr(timeline_module, "describe_event",
                        lambda event, now: drawn.append(event["seq"]) or real(event, now))
    return drawn


async def test_a_long_history_draws_only_the_rows_on_screen(
        monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _count_drawn(monkeypatch)
    app = _One()
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.query_one(Timeline)
        events = _history(1000)  # 2,001 events
        timeline.set_events(events, {}, 0.0)
        await pilot.pause()
        visible = timeline.scrollable_content_region.height - 1  # less the header
        assert timeline.row_count == len(events)
        assert timeline.cursor_row == len(events) - 1  # on the newest event
        assert timeline.scroll_y == timeline.max_scroll_y > 0  # the tail is on screen
        assert 0 < len(drawn) <= visible  # only the rows on screen were drawn
        assert set(drawn) <= {e["seq"] for e in events[-visible:]}

        drawn.clear()
        timeline.set_view(compact=True)  # each activity folded into one row
        await pilot.pause()
        assert timeline.row_count == 1 + 1000
        assert len(drawn) <= visible  # folded rows describe no event; none re-added

        drawn.clear()
        timeline.set_view(needle="step.99")  # step.99 and step.990..999 scheduled
        await pilot.pause()
        assert timeline.row_count == 11
        assert 0 < len(drawn) <= visible


async def test_cursor_follows_the_tail_and_keeps_its_event() -> None:
    app = _One()
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.query_one(Timeline)
        timeline.focus()
        events = _history(100)
        timeline.set_events(events[:101], {}, 0.0)
        await pilot.pause()
        timeline.add_events(events[101:151], {}, 0.0)  # the cursor was on the tail: follows
        assert timeline.cursor_row == 150
        await pilot.press("home")
        assert timeline.cursor_row == 0 and timeline.scroll_y == 0
        await pilot.press("pagedown")
        page = timeline.cursor_row
        assert page > 1
        timeline.add_events(events[151:], {}, 0.0)  # not on the tail: stays
        assert timeline.cursor_row == page
        timeline.move_cursor(row=page | 1)  # an odd row: an ActivityScheduled
        chosen = timeline.current_event()
        assert chosen is not None and chosen["type"] == "ActivityScheduled"
        timeline.set_view(kind="ActivityScheduled")
        assert all(r.event["type"] == "ActivityScheduled" for r in timeline.shown)
        assert timeline.current_event() is chosen
        timeline.set_view()
        assert timeline.current_event() is chosen  # the same event after the filter
        await pilot.press("end")
        assert timeline.cursor_row == len(events) - 1
        await pilot.pause()
        assert timeline.scroll_y == timeline.max_scroll_y
        await pilot.press("k", "k", "up")
        assert timeline.cursor_row == len(events) - 4
        await pilot.press("G")
        assert timeline.cursor_row == len(events) - 1


async def test_clicked_row_is_selected_and_its_event_shown(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        detail = await open_detail(pilot, app, "charge-3")
        timeline = detail.query_one(Timeline)
        await wait_for(pilot, lambda: timeline.row_count == 7, "the history")
        await pilot.click(Timeline, offset=(10, 3))  # border, header, rows 0 and 1
        assert timeline.cursor_row == 1
        event = detail.query_one("#event", JsonView)
        await wait_for(pilot, lambda: event.value is timeline.shown[1].event,
                       "the clicked event shown")
        assert event.border_title == "Event 2 · ActivityScheduled"
