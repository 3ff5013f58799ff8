"""Opening a run from the runs screen (``enter``, until the detail is loaded and drawn) and
going back (``escape``), key posted -> screen refreshed (see console_keys), on a database
built by ``console_bench.build``. Each press opens the next row's run.

Run: ``python -m bench.console_open DB [PRESSES]`` (DB: e.g. 10,000 runs, 1,000,000 events
from ``console_bench.build``; 10 presses by default). For an A/B, run it alternately with
the console files of each side in place.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any


async def _open_runs(db: Path, presses: int) -> dict[str, Any]:
    from onward import Engine
    from onward.console.screens.run_detail import RunDetailScreen

    from .console_bench import runs_table_shown
    from .console_keys import Timings, after_key, console_app, gc_paced

    with Engine(db) as eng:
        app = console_app(eng)
        async with app.run_test(size=(120, 40)) as pilot:
            table = await runs_table_shown(app)
            await gc_paced(app)
            runs = app.screen
            table.focus()
            await pilot.pause()
            t = Timings()
            for press in range(presses + 1):
                row = table.cursor_row
                timed = t if press else Timings()  # the first opening (a first visit) is left out
                timed.add("runs enter: open the run (loaded, drawn)", await after_key(
                    app, pilot, "enter", lambda: isinstance(app.screen, RunDetailScreen)
                    and app.screen.loads >= 1))
                timed.add("detail escape: back to the runs", await after_key(
                    app, pilot, "escape", lambda: app.screen is runs))
                await after_key(app, pilot, "j", lambda r=row: table.cursor_row != r,
                                char="j")
            return t.summary()


def open_runs(db: Path, presses: int = 10) -> dict[str, Any]:
    """Time ``presses`` openings of a run and the way back."""
    return asyncio.run(_open_runs(db, presses))


if __name__ == "__main__":
    found = open_runs(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10)
    for label, r in found.items():
        print(f"{label:42s} wall median {r['median_ms']:6.1f} p90 {r['p90_ms']:6.1f}  "
              f"cpu median {r['cpu_median_ms']:6.1f} p90 {r['cpu_p90_ms']:6.1f} ms  "
              f"n={r['reps']}")
