"""The console section: store reads the runs screen makes, and the real app under Pilot,
on a large database (many runs, about 100 events each).

The database is built from a few real ``long_history`` runs (about 100 events each), copied
under new ids with SQL in one large transaction (as the replay check does).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from .common import BASIC_FLOWS, BENCH_FLOWS, BenchError
from .onward_bench import _clone_runs, _engine, _wait_completed

TEMPLATES = 8
ACTIVITIES = 49  # long_history(49): 2 + 2 * 49 + 2 = about 100 events
RETRYING = 500  # copies marked running + retrying, so the "retrying" filter finds rows


def _time(fn: Any, reps: int) -> dict[str, float]:
    fn()  # warm: first call pays for statement preparation and cold pages
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "max_ms": max(times), "reps": reps}


def build(db: Path, runs: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    with _engine(db, BASIC_FLOWS, BENCH_FLOWS) as eng:
        with eng.worker(concurrency=TEMPLATES):
            for k in range(TEMPLATES):
                eng.start("long_history", ACTIVITIES, id=f"template-{k}")
            _wait_completed(eng, TEMPLATES, timeout=300, interval=0.05)
        templates = [r["run_id"] for r in eng.list(status="completed")]
        real = time.perf_counter() - t0
        t1 = time.perf_counter()
        _clone_runs(db, templates, runs - TEMPLATES)
        import apsw
        conn = apsw.Connection(str(db))
        conn.set_busy_timeout(15_000)
        try:
            with conn:
                conn.execute("UPDATE runs SET status = 'running', retrying = 1 WHERE run_id IN "
                             "(SELECT run_id FROM runs WHERE workflow_id LIKE 'clone-%' "
                             "ORDER BY workflow_id LIMIT ?)", (RETRYING,))
            n_runs = conn.execute("SELECT count(*) FROM runs").fetchall()[0][0]
            n_events = conn.execute("SELECT count(*) FROM events").fetchall()[0][0]
        finally:
            conn.close()
        cloned = time.perf_counter() - t1
    return {"runs": n_runs, "events": n_events, "template_seconds": real,
            "clone_seconds": cloned, "db_bytes": db.stat().st_size
            + (Path(str(db) + "-wal").stat().st_size if Path(str(db) + "-wal").exists() else 0)}


def reads(db: Path, reps: int) -> dict[str, Any]:
    from onward import Engine
    out: dict[str, Any] = {}
    with Engine(db) as eng:
        target = "clone-000777" if eng.list(search="clone-000777", limit=1) else "template-0"
        events = len(eng.show(target)["history"])
        open_ids = [str(r["run_id"]) for r in eng.list("open", limit=200)]
        checks = {
            "list(limit=200, offset=0)": lambda: eng.list(limit=200, offset=0),
            "list(limit=200, order='started')": lambda: eng.list(limit=200, order="started"),
            "list(limit=200, order='attention') [screen]":
                lambda: eng.list(limit=200, order="attention"),
            "next_due(ids of 200 open runs) [screen]": lambda: eng.next_due(open_ids),
            "recent_steps(119) [header, first read]": lambda: eng.recent_steps(119),
            "recent_steps(3) [header, each second]": lambda: eng.recent_steps(3),
            "list(status='retrying', limit=200)": lambda: eng.list(status="retrying",
                                                                     limit=200),
            "list(search='clone-0004', limit=200)": lambda: eng.list(search="clone-0004",
                                                                      limit=200),
            "list(search='nomatch', limit=200)": lambda: eng.list(search="nomatch",
                                                                   limit=200),
            "counts()": eng.counts,
            f"show(id) ({events} events)": lambda: eng.show(target),
            "change_token()": eng.change_token,
        }
        for label, fn in checks.items():
            out[label] = _time(fn, reps)
        sizes = {"list(limit=200, offset=0)": len(eng.list(limit=200)),
                 "list(status='retrying', limit=200)": len(eng.list(status="retrying",
                                                                     limit=200)),
                 "list(search='clone-0004', limit=200)": len(eng.list(search="clone-0004",
                                                                      limit=200))}
        for label, n in sizes.items():
            out[label]["rows"] = n
    return out


async def _pilot(db: Path, keys: int) -> dict[str, Any]:
    from onward import Engine
    from onward.console.app import OnwardApp
    from onward.console.widgets.runs_table import RunsTable
    with Engine(db) as eng:
        t0 = time.perf_counter()
        app = OnwardApp(eng, worker=False)
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 120
            while True:
                try:
                    table = app.screen.query_one(RunsTable)
                    if table.loaded >= 200 and table.row_count >= 200:
                        break
                except Exception:  # noqa: BLE001 - screen not composed yet
                    pass
                if time.monotonic() > deadline:
                    raise BenchError("the runs table did not show 200 rows in 120 s")
                await asyncio.sleep(0.002)
            first = time.perf_counter() - t0
            table.focus()
            await pilot.pause()
            row0 = table.cursor_row
            times = []
            for _ in range(keys):
                k0 = time.perf_counter()
                await pilot.press("down")
                times.append((time.perf_counter() - k0) * 1000)
            moved = table.cursor_row - row0
            # The same number of presses of a key nothing is bound to: Pilot's own floor
            # (press() waits twice for the process to look idle, 20 ms sleeps each).
            idle = []
            for _ in range(keys):
                k0 = time.perf_counter()
                await pilot.press("z")
                idle.append((time.perf_counter() - k0) * 1000)
            # Without Pilot's waits: post the key event, spin the loop until the cursor moved.
            from textual import events
            direct = []
            for _ in range(keys):
                before = table.cursor_row
                k0 = time.perf_counter()
                app._driver.send_message(events.Key("up", None))
                while table.cursor_row == before:
                    if time.perf_counter() - k0 > 5:
                        raise BenchError("the cursor did not move within 5 s of a key")
                    await asyncio.sleep(0)
                direct.append((time.perf_counter() - k0) * 1000)
                await pilot.pause()  # let the repaint happen outside the timed part
            screens = await _screen_keys(app, pilot, table, max(5, keys // 5))
    return {"first_rows_seconds": first, "keys": keys, "cursor_moved": moved,
            "screens": screens,
            "key_median_ms": statistics.median(times), "key_max_ms": max(times),
            "key_mean_ms": sum(times) / len(times),
            "noop_key_median_ms": statistics.median(idle), "noop_key_max_ms": max(idle),
            "direct_median_ms": statistics.median(direct), "direct_max_ms": max(direct)}


async def _after_key(app: Any, pilot: Any, key: str, done: Any) -> float:
    """Milliseconds from posting ``key`` until ``done()`` holds (the screen shows the
    result), spinning the event loop; the repaint after it is not timed."""
    from textual import events
    k0 = time.perf_counter()
    app._driver.send_message(events.Key(key, None))
    while not done():
        if time.perf_counter() - k0 > 10:
            raise BenchError(f"no update within 10 s of the key {key!r}")
        await asyncio.sleep(0)
    took = (time.perf_counter() - k0) * 1000
    await pilot.pause()
    return took


async def _screen_keys(app: Any, pilot: Any, table: Any, reps: int) -> dict[str, Any]:
    """Key press → updated screen, for the runs screen's keys and the other screens."""
    from onward.console.screens.run_detail import RunDetailScreen
    from onward.console.screens.runs import RunsScreen
    from onward.console.screens.tasks import TasksScreen
    times: dict[str, list[float]] = {}

    def add(label: str, ms: float) -> None:
        times.setdefault(label, []).append(ms)

    runs = app.screen
    for _ in range(reps):
        selected = len(table.selected)
        add("space: select the run (row redrawn)",
            await _after_key(app, pilot, "space", lambda n=selected: len(table.selected) != n))
        loads = runs.loads
        add("s: next sort (store read, table refilled)",
            await _after_key(app, pilot, "s", lambda n=loads: runs.loads > n))
        add("G: last loaded row", await _after_key(
            app, pilot, "G", lambda: table.cursor_row == table.row_count - 1))
        add("g: first row", await _after_key(app, pilot, "g", lambda: table.cursor_row == 0))
        add("enter: open the run (detail loaded)", await _after_key(
            app, pilot, "enter", lambda: isinstance(app.screen, RunDetailScreen)
            and app.screen.loads >= 1))
        add("escape: back to the runs", await _after_key(
            app, pilot, "escape", lambda: app.screen is runs))
        add("2: tasks screen (loaded)", await _after_key(
            app, pilot, "2", lambda: isinstance(app.screen, TasksScreen)
            and app.screen.loads >= 1))
        add("1: runs screen again", await _after_key(
            app, pilot, "1", lambda: isinstance(app.screen, RunsScreen)))
    return {label: {"median_ms": statistics.median(v), "max_ms": max(v), "reps": len(v)}
            for label, v in times.items()}


def pilot(db: Path, keys: int = 50) -> dict[str, Any]:
    return asyncio.run(_pilot(db, keys))
