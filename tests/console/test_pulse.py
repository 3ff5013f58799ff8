"""The live header on every screen: one feed reads the engine for all of them."""

from __future__ import annotations

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
        # One feed: each read is the app's, however many screens show a header.
        assert len(reads) in (app.pulse.reads, app.pulse.reads + 1)  # (+1: one under way)
        assert reads[0] == 119 and set(reads[1:]) == {3}
        assert all(w.node is app for w in app.workers if w.group == "pulse")
        assert all(h.reads == app.pulse.reads for s in app.screen_stack
                   for h in s.query(PulseHeader))
