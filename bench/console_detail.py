"""Key presses on the run detail screen of one long history, under Pilot: the history
tools (fold, search, chart toggle) against Pilot's own floor (a key nothing is bound to).

Run alone: ``python -m bench.console_detail [ACTIVITIES]`` (a history of about
2 x ACTIVITIES events; 50 by default, as in the console section's runs).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import BASIC_FLOWS, BENCH_FLOWS
from .onward_bench import _engine

PRESSES = 10


async def _presses(db: Path, presses: int) -> dict[str, Any]:
    from onward.console.app import OnwardApp
    from onward.console.screens.run_detail import RunDetailScreen

    with _engine(db, BASIC_FLOWS, BENCH_FLOWS) as eng:
        events = len(eng.show("long")["history"])
        app = OnwardApp(eng, worker=False)
        async with app.run_test(size=(160, 45)) as pilot:
            await app.push_screen(RunDetailScreen("long"))
            while not (isinstance(app.screen, RunDetailScreen) and app.screen.loads >= 1):
                await pilot.pause(0.05)
            screen = app.screen
            result: dict[str, Any] = {"events": events}
            for name in ("floor", "fold", "chart", "search"):
                times = []
                for i in range(presses):
                    t0 = time.perf_counter()
                    if name == "search":  # one more character typed into the search
                        screen.query_one("#history-search").value = "bench_step"[:i % 10 + 1]  # type: ignore[attr-defined]
                        await pilot.pause()
                    else:
                        await pilot.press({"floor": "k", "fold": "z", "chart": "m"}[name])
                    times.append((time.perf_counter() - t0) * 1000)
                result[f"{name}_median_ms"] = round(statistics.median(times), 1)
            return result


def detail_keys(activities: int = 50, presses: int = PRESSES) -> dict[str, Any]:
    """Build one run of ``activities`` steps, then time the detail screen's keys."""
    db = Path(tempfile.mkdtemp(prefix="onward-detail-")) / "detail.db"
    with _engine(db, BASIC_FLOWS, BENCH_FLOWS) as eng:
        eng.start("long_history", activities, id="long")
        with eng.worker(concurrency=2):
            eng.handle("long").result(timeout=600)
    return asyncio.run(_presses(db, presses))


if __name__ == "__main__":
    print(detail_keys(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
