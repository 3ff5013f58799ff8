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
                    ) -> tuple[float, float]:
    """Milliseconds from posting ``key`` until ``done()`` holds and the screen's next
    refresh has been rendered, wall-clock and the process's CPU time (every thread: the
    UI's and the store read's); the pause after it is not timed. On a loaded machine the
    CPU figure is the steadier one."""
    from textual import events
    c0 = time.process_time()
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
    cpu = (time.process_time() - c0) * 1000
    await pilot.pause()
    return took, cpu


class Timings:
    """Milliseconds per labelled key (wall and CPU), summarised as median, p90 and max."""

    def __init__(self) -> None:
        self.times: dict[str, list[tuple[float, float]]] = {}

    def add(self, label: str, took: tuple[float, float]) -> None:
        self.times.setdefault(label, []).append(took)

    def summary(self) -> dict[str, dict[str, Any]]:
        out = {}
        for label, pairs in self.times.items():
            wall = [w for w, _ in pairs]
            cpu = sorted(c for _, c in pairs)
            out[label] = {"median_ms": round(statistics.median(wall), 1),
                          "p90_ms": round(p90(wall), 1), "max_ms": round(max(wall), 1),
                          "cpu_median_ms": round(statistics.median(cpu), 1),
                          "cpu_p90_ms": round(p90(cpu), 1), "reps": len(pairs)}
        return out


def p90(values: list[float]) -> float:
    """The 90th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def console_app(engine: Any) -> Any:
    """The app as ``onward console`` builds it (no worker): full garbage-collection passes
    paced between key presses (``console.gc_pacing``)."""
    from onward.console.app import OnwardApp
    return OnwardApp(engine, worker=False, pace_gc=True)


async def gc_paced(app: Any) -> None:
    """Wait until the console has frozen what it built at startup (its first second), as
    an operator's first keys find it. From then on the presses below come faster than the
    pacer's quiet second, so full passes land in none of them unless one is overdue (five
    minutes without a quiet second): the bench leaves those passes out, as they run
    between key presses."""
    deadline = time.perf_counter() + 30
    while not app.gc_pacer.started:
        if time.perf_counter() > deadline:
            raise BenchError("the console did not start pacing garbage collection in 30 s")
        await asyncio.sleep(0.02)
