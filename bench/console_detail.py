"""Key presses on the run detail screen of one long history: key posted -> screen refreshed
(see console_keys) for the history tools (fold, search, chart toggle), median and p90.

Run alone: ``python -m bench.console_detail [ACTIVITIES]`` (a history of about
2 x ACTIVITIES events; 50 by default, as in the console section's runs).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import BASIC_FLOWS, BENCH_FLOWS
from .onward_bench import _engine

PRESSES = 10


async def _presses(db: Path, presses: int) -> dict[str, Any]:
    from textual.widgets import Input, TabbedContent

    from onward.console.screens.run_detail import RunDetailScreen
    from onward.console.widgets.timeline import Timeline

    from .console_keys import Timings, after_key, console_app, gc_paced

    with _engine(db, BASIC_FLOWS, BENCH_FLOWS) as eng:
        events = len(eng.show("long")["history"])
        app = console_app(eng)
        async with app.run_test(size=(160, 45)) as pilot:
            await app.push_screen(RunDetailScreen("long"))
            while not (isinstance(app.screen, RunDetailScreen) and app.screen.loads >= 1):
                await pilot.pause(0.05)
            await gc_paced(app)
            screen = app.screen
            timeline = screen.query_one(Timeline)
            tabs = screen.query_one(TabbedContent)
            t = Timings()

            async def key(label: str, name: str, done: Any, char: str | None = None) -> None:
                t.add(label, await after_key(app, pilot, name, done, char=char))

            for _ in range(presses):
                row = timeline.cursor_row
                await key("k: previous event", "k", lambda r=row: timeline.cursor_row != r, "k")
                await key("z: fold", "z", lambda: timeline.compact, "z")
                await key("z: unfold", "z", lambda: not timeline.compact, "z")
                await key("m: chart", "m", lambda: tabs.active == "chart", "m")
                await key("m: timeline", "m", lambda: tabs.active == "timeline", "m")
                await key("/: focus the search", "slash",
                          lambda: isinstance(app.focused, Input), "/")
                await key("typed letter: history searched", "b",
                          lambda: timeline.needle == "b", "b")
                await key("backspace: search cleared", "backspace",
                          lambda: timeline.needle == "")
                await key("enter: back to the timeline", "enter",
                          lambda: app.focused is timeline)
            return {"events": events, "keys": t.summary()}


def detail_keys(activities: int = 50, presses: int = PRESSES) -> dict[str, Any]:
    """Build one run of ``activities`` steps, then time the detail screen's keys."""
    db = Path(tempfile.mkdtemp(prefix="onward-detail-")) / "detail.db"
    with _engine(db, BASIC_FLOWS, BENCH_FLOWS) as eng:
        eng.start("long_history", activities, id="long")
        with eng.worker(concurrency=2):
            eng.handle("long").result(timeout=600)
    return asyncio.run(_presses(db, presses))


if __name__ == "__main__":
    found = detail_keys(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
    print(f"{found['events']} events")
    for label, r in found["keys"].items():
        print(f"{label:34s} wall median {r['median_ms']:6.1f} p90 {r['p90_ms']:6.1f}  "
              f"cpu median {r['cpu_median_ms']:6.1f} p90 {r['cpu_p90_ms']:6.1f} ms  "
              f"n={r['reps']}")
