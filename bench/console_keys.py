"""Key press → screen updated, as an operator sees it: the key event is posted the way the
terminal driver posts it, and the time runs until the screen shows the result *and* the
app's own refresh after it is done (the compositor has rendered the changed lines).

Left out: the terminal's part (Pilot's screen is headless, so the rendered update is not
written out or drawn by an emulator) and the driver's parsing of the key's bytes; Pilot's
fixed idle pauses are not timed (the untimed ``pilot.pause()`` between presses).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from .common import BenchError

Done = Callable[[], bool]


def settled(app: Any) -> Done:
    """A ``done`` for keys with nothing to wait on (a cursor move on an empty table): the
    app, the screen and the focused widget have no messages left to handle."""
    def check() -> bool:
        pumps = [app, app.screen, app.screen.focused]
        return all(p is None or p._message_queue.empty() for p in pumps)
    return check


async def after_key(app: Any, pilot: Any, key: str, done: Done, *, char: str | None = None
                    ) -> float:
    """Milliseconds from posting ``key`` until ``done()`` holds and the screen's next
    refresh has been rendered; the pause after it is not timed."""
    from textual import events
    k0 = time.perf_counter()
    app._driver.send_message(events.Key(key, char))
    await asyncio.sleep(0)
    while not done():
        if time.perf_counter() - k0 > 10:
            raise BenchError(f"no update within 10 s of the key {key!r}")
        await asyncio.sleep(0)
    refreshed = asyncio.Event()
    app.screen.call_after_refresh(refreshed.set)
    await asyncio.wait_for(refreshed.wait(), 10)
    took = (time.perf_counter() - k0) * 1000
    await pilot.pause()
    return took


class Timings:
    """Milliseconds per labelled key, summarised as median, p90 and max."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    def add(self, label: str, ms: float) -> None:
        self.times.setdefault(label, []).append(ms)

    def summary(self) -> dict[str, dict[str, Any]]:
        out = {}
        for label, v in self.times.items():
            ordered = sorted(v)
            p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
            out[label] = {"median_ms": round(statistics.median(v), 1),
                          "p90_ms": round(p90, 1), "max_ms": round(max(v), 1),
                          "reps": len(v)}
        return out
