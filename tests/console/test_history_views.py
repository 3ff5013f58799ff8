"""The run detail's history tools: type filter, search, folded activities, tracebacks as
text, copy as JSON, and the chart; plus the pure functions under them."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from textual.widgets import Input, Select, Static

from onward.console.app import OnwardApp
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.widgets.gantt import Gantt
from onward.console.widgets.history_model import (
    fold_text,
    lanes,
    rows,
    split_tracebacks,
)
from onward.console.widgets.json_view import JsonView
from onward.console.widgets.timeline import Timeline

from .conftest import open_detail, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def _detail(pilot: Any, app: OnwardApp, ident: str) -> RunDetailScreen:
    screen: RunDetailScreen = await open_detail(pilot, app, ident)
    return screen


async def test_filter_by_type_and_search(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        detail = await _detail(pilot, app, "charge-3")
        timeline = detail.query_one(Timeline)
        assert timeline.row_count == 7
        detail.query_one("#history-type", Select).value = "ActivityScheduled"
        await wait_for(pilot, lambda: timeline.row_count == 2, "two scheduled activities")
        assert {r.event["type"] for r in timeline.shown} == {"ActivityScheduled"}
        assert "2 of 7" in str(detail.query_one("#history-count", Static).render())
        await pilot.press("slash")
        assert detail.focused is detail.query_one("#history-search", Input)
        await pilot.press(*"charge")
        await wait_for(pilot, lambda: timeline.row_count == 1, "the search to narrow")
        assert timeline.current_event()["attrs"]["name"] == "console.charge"  # type: ignore[index]
        await pilot.press("enter")
        assert detail.focused is timeline  # back to the rows after the search
        detail.query_one("#history-type", Select).clear()
        await wait_for(pilot, lambda: timeline.row_count > 1, "all types again")
        # every event mentioning "charge" (schedule, attempt, failure, workflow failure)
        assert all("charge" in json.dumps(r.event) for r in timeline.shown)
        detail.query_one("#history-search", Input).value = "no such text"
        await wait_for(pilot, lambda: timeline.row_count == 0, "nothing to show")
        assert "no event matches" in _plain(detail.query_one("#event", JsonView).shown)


async def test_fold_copy_and_traceback_text(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        detail = await _detail(pilot, app, "charge-3")
        timeline = detail.query_one(Timeline)
        await pilot.press("z")
        await wait_for(pilot, lambda: timeline.row_count == 4, "two activities folded")
        folded = [r for r in timeline.shown if r.folded]
        assert [len(r.folded) for r in folded] == [2, 3]  # record; charge, its attempt, its failure
        assert "console.charge × 1, failed: CardDeclined" in fold_text(folded[1].folded,
                                                                        clock())
        timeline.move_cursor(row=2)
        await pilot.press("x")
        copied = json.loads(app.clipboard)
        assert [e["type"] for e in copied] == ["ActivityScheduled", "ActivityAttemptFailed",
                                               "ActivityFailed"]
        assert copied == folded[1].folded
        await pilot.press("z")  # unfolded: the cursor stays on the same event
        await wait_for(pilot, lambda: timeline.row_count == 7, "every event again")
        assert timeline.current_event() == folded[1].event
        await pilot.press("end", "x")
        last = json.loads(app.clipboard)
        assert last["type"] == "WorkflowFailed" and last["seq"] == 7
        text = _plain(detail.query_one("#event", JsonView).shown)
        assert "(shown below)" in text
        assert "Traceback (most recent call last)" in text  # as lines, not one string
        assert "\\n" not in text.split("(shown below)")[-1]


async def test_chart_draws_a_lane_per_step(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        detail = await _detail(pilot, app, "trip-7")
        await pilot.press("m")
        gantt = detail.query_one(Gantt)
        assert detail.focused is gantt
        assert [(lane.kind, lane.label) for lane in gantt.steps][-1][0] == "task"
        assert gantt.steps[-1].spans[-1].end is None  # the open task runs up to now
        await pilot.press("m")
        assert detail.focused is detail.query_one(Timeline)


def _plain(renderable: Any) -> str:
    console = Console(width=200, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def _event(seq: int, kind: str, t: int, **attrs: Any) -> dict[str, Any]:
    return {"seq": seq, "type": kind, "time": f"2026-03-02T09:{30 + t // 60:02d}:"
            f"{t % 60:02d}+00:00", "attrs": attrs}


def test_lanes_of_a_retried_activity() -> None:
    events = [_event(1, "WorkflowStarted", 0), _event(2, "ActivityScheduled", 0, name="pay"),
              _event(3, "ActivityAttemptFailed", 10, ref=2, attempt=1,
                     next_retry="2026-03-02T09:30:40+00:00"),
              _event(4, "ActivityCompleted", 50, ref=2, attempt=2),
              _event(5, "TimerStarted", 50, seconds=5), _event(6, "TimerFired", 55, ref=5)]
    run, pay, timer = lanes(events)
    assert run.kind == "run" and run.spans[0].end is None  # still open
    assert [(s.outcome, s.end is not None) for s in pay.spans] == [
        ("failed", True), ("waiting", True), ("ok", True)]
    assert timer.kind == "timer" and timer.spans[0].outcome == "ok"


kinds = st.sampled_from(["ActivityScheduled", "ActivityAttemptFailed", "ActivityCompleted",
                         "TimerStarted", "TimerFired", "SignalReceived"])


@given(st.lists(st.tuples(kinds, st.integers(1, 30)), max_size=30), st.booleans())
def test_folding_shows_every_event_once(spec: list[tuple[str, int]], compact: bool) -> None:
    events = [_event(i + 1, kind, i, ref=ref, name="a") for i, (kind, ref) in enumerate(spec)]
    shown = rows(events, compact=compact)
    seen = [e["seq"] for r in shown for e in (r.folded or [r.event])]
    assert sorted(seen) == [e["seq"] for e in events]
    if not compact:
        assert all(not r.folded for r in shown)


def test_tracebacks_are_taken_out_of_nested_errors() -> None:
    event = {"attrs": {"error": {"traceback": "A\nB", "cause": {"traceback": "C"}}}}
    value, found = split_tracebacks(event)
    assert found == [("attrs.error.traceback", "A\nB"), ("attrs.error.cause.traceback", "C")]
    assert value["attrs"]["error"]["cause"]["traceback"] == "(shown below)"
    assert event["attrs"]["error"]["traceback"] == "A\nB"  # the event itself is untouched


async def test_f_opens_the_type_filter_and_enter_applies_it(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        detail = await _detail(pilot, app, "charge-3")
        timeline = detail.query_one(Timeline)
        select = detail.query_one("#history-type", Select)
        await pilot.press("f")
        await wait_for(pilot, lambda: select.expanded, "the type list open")
        await pilot.press("down", "enter")  # the first type in the list
        await wait_for(pilot, lambda: select.value is not Select.NULL, "a type chosen")
        chosen = select.value
        await wait_for(pilot, lambda: {r.event["type"] for r in timeline.shown} == {chosen},
                       "only that type shown")
        assert detail.focused is timeline  # keys go back to the rows
