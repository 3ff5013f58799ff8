"""The live header on every screen: one feed reads the engine for all of them."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from textual.widgets import Sparkline, Static

from onward.console.app import OnwardApp
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.widgets.pulse import PulseHeader, rates

from .conftest import T0, wait_for

pytestmark = pytest.mark.anyio


async def test_every_screen_shows_the_one_live_feed_at_80x24(story: Any) -> None:
    engine, clock = story
    clock.t = T0 + 301  # just after the seeded runs settled: the window has steps
    reads: list[int] = []
    read = engine.recent_steps

    def counted(seconds: int = 60) -> dict[str, Any]:  # the real read, counted
        reads.append(seconds)
        return read(seconds)

    engine.recent_steps = counted  # type: ignore[method-assign]
    recent = read(119)
    expected = rates(recent["events"], recent["failures"])
    assert sum(expected[0]) > 0 and expected[1][-1] >= 1
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        titles = {}
        for key in ("1", "2", "3", "4", "5", "detail"):
            if key == "detail":
                await app.push_screen(RunDetailScreen("payout-9"))
                await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                               and app.screen.loads >= 1, "the run")
            else:
                await pilot.press(key)
                await wait_for(pilot, lambda: app.screen.query(PulseHeader)
                               and getattr(app.screen, "loads", 0) >= 1, f"screen {key}")
            header = app.screen.query_one(PulseHeader)
            await wait_for(pilot, lambda h=header: h.reads >= 1, "the header drawn")
            assert (header.steps, header.failures) == expected
            assert header.query_one("#pulse-failures", Sparkline).data == expected[1]
            assert str(header.query_one("#pulse-failures-now", Static).render()) == \
                str(int(expected[1][-1]))
            # The whole header fits 80 columns: both values on screen, the title in view.
            assert header.query_one("#pulse-failures-now").region.right <= 80
            title = header.query_one("#pulse-title", Static)
            assert title.region.width >= len(str(title.render()))  # not cut
            titles[key] = str(title.render())
        assert titles["1"] == "Onward · Runs" and titles["4"] == "Onward · Workers"
        assert titles["5"] == "Onward · Schedules" and titles["3"] == "Onward · Code"
        assert titles["detail"] == "Onward · payout-9 · backoff"
        shown = app.pulse.reads
        await wait_for(pilot, lambda: app.pulse.reads >= shown + 2, "two more reads")
        # One feed: each read is the app's, however many screens show a header; the first,
        # short one is not counted in ``reads`` (+1: one under way).
        assert len(reads) in (app.pulse.reads + 1, app.pulse.reads + 2)
        assert reads[:2] == [3, 119] and set(reads[2:]) == {3}
        assert all(w.node is app for w in app.workers if w.group == "pulse")
        assert all(h.reads == app.pulse.reads for s in app.screen_stack
                   for h in s.query(PulseHeader))


async def test_the_short_first_read_is_drawn_before_the_whole_window(story: Any) -> None:
    engine, clock = story
    clock.t = T0 + 301
    full, recent = engine.recent_steps(119), engine.recent_steps(3)
    # The short read alone: its seconds at the end of the window, nothing before them.
    partial = rates([0] * 116 + recent["events"], [0] * 116 + recent["failures"])
    whole = rates(full["events"], full["failures"])
    assert sum(partial[0]) > 0 and sum(whole[0]) > sum(partial[0])
    read = engine.recent_steps
    release = threading.Event()
    reads: list[int] = []

    def gated(seconds: int = 60) -> dict[str, Any]:  # the whole window waits for the test
        reads.append(seconds)
        if seconds == 119:
            release.wait(30)
        return read(seconds)

    engine.recent_steps = gated  # type: ignore[method-assign]
    app = OnwardApp(engine, worker=False, clock=clock)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.pulse.partial, "the short read drawn")
            header = app.screen.query_one(PulseHeader)
            await wait_for(pilot, lambda: header.shown is app.pulse, "the header drawn")
            assert (header.steps, header.failures) == partial and header.reads == 0
            # the whole window is read at once, not a tick later (ticks skip meanwhile)
            await wait_for(pilot, lambda: 119 in reads, "the whole window's read")
            assert reads == [3, 119]
            release.set()
            await wait_for(pilot, lambda: header.reads >= 1, "the whole window drawn")
            assert (header.steps, header.failures) == whole and not header.shown.partial
    finally:
        release.set()
