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
            # the header's first read is the short one; the whole window follows it
            "recent_steps(3) [header, first read, then each second]":
                lambda: eng.recent_steps(3),
            "recent_steps(119) [header, second read: the whole window]":
                lambda: eng.recent_steps(119),
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


async def runs_table_shown(app: Any, rows: int = 200) -> Any:
    """The runs screen's table once it shows ``rows`` rows (BenchError after 120 s)."""
    from onward.console.widgets.runs_table import RunsTable
    deadline = time.monotonic() + 120
    while True:
        try:
            table = app.screen.query_one(RunsTable)
            if table.loaded >= rows and table.row_count >= rows:
                return table
        except Exception:  # noqa: BLE001 - screen not composed yet
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"the runs table did not show {rows} rows in 120 s")
        await asyncio.sleep(0.002)


async def _pilot(db: Path, keys: int) -> dict[str, Any]:
    from onward import Engine

    from .console_keys import console_app, gc_paced
    with Engine(db) as eng:
        t0 = time.perf_counter()
        app = console_app(eng)
        async with app.run_test(size=(120, 40)) as pilot:
            table = await runs_table_shown(app)
            first = time.perf_counter() - t0
            await gc_paced(app)
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


async def _screen_keys(app: Any, pilot: Any, table: Any, reps: int) -> dict[str, Any]:
    """Key press → updated screen (see console_keys) for every screen's main keys."""
    from textual.widgets import Input, Select, TabbedContent

    from onward.console.screens.run_detail import RunDetailScreen
    from onward.console.widgets.fitted_table import FittedTable
    from onward.console.widgets.timeline import Timeline

    from .console_keys import Timings, after_key, settled
    t = Timings()
    runs = app.screen

    async def key(label: str, name: str, done: Any, char: str | None = None) -> None:
        t.add(label, await after_key(app, pilot, name, done, char=char))

    def moved(widget: Any) -> Any:
        row = widget.cursor_row
        return lambda: widget.cursor_row != row

    async def detail_round() -> None:
        """The run detail's keys, ending with escape back to the runs."""
        detail = app.screen
        timeline = detail.query_one(Timeline)
        tabs = detail.query_one(TabbedContent)
        await key("detail k: previous event", "k", moved(timeline), "k")
        for name, tab in (("i", "io"), ("w", "pending"), ("l", "related"),
                          ("h", "timeline")):
            await key(f"detail {name}: {tab} tab", name,
                      lambda tab=tab: tabs.active == tab, name)
        await key("detail m: chart tab", "m", lambda: tabs.active == "chart", "m")
        await key("detail m: back to the timeline", "m", lambda: tabs.active == "timeline",
                  "m")
        folded = timeline.compact
        await key("detail z: fold activities", "z", lambda f=folded: timeline.compact != f,
                  "z")
        await key("detail z: unfold", "z", lambda f=folded: timeline.compact == f, "z")
        notes = len(app._notifications)
        await key("detail x: copy the event", "x",
                  lambda n=notes: len(app._notifications) > n, "x")
        select = detail.query_one("#history-type", Select)
        await key("detail f: event type list", "f", lambda: select.expanded, "f")
        await key("detail escape: close the list", "escape", lambda: not select.expanded)
        await key("detail /: focus the search", "slash",
                  lambda: isinstance(app.focused, Input), "/")
        await key("detail typed letter: history searched", "A",
                  lambda: timeline.needle == "A", "A")
        await key("detail backspace: search cleared", "backspace",
                  lambda: timeline.needle == "")
        await key("detail enter: back to the timeline", "enter",
                  lambda: app.focused is timeline)
        await key("detail escape: back to the runs", "escape", lambda: app.screen is runs)

    for _ in range(reps):
        # -- runs screen
        await key("runs j: cursor down", "j", moved(table), "j")
        await key("runs k: cursor up", "k", moved(table), "k")
        selected = len(table.selected)
        await key("runs space: select the run", "space",
                  lambda n=selected: len(table.selected) != n, " ")
        loads = runs.loads
        await key("runs s: next sort (store read, rows refilled)", "s",
                  lambda n=loads: runs.loads > n, "s")
        await key("runs /: focus the filter bar", "slash",
                  lambda: isinstance(app.focused, Input), "/")
        await key("runs escape: back to the table", "escape", lambda: app.focused is table)
        await key("runs enter: open the run (detail loaded)", "enter",
                  lambda: isinstance(app.screen, RunDetailScreen) and app.screen.loads >= 1)
        await detail_round()
        # -- the other screens: the switch key, then a cursor move
        for name, mode in (("2", "tasks"), ("3", "providers"), ("4", "workers"),
                           ("5", "schedules")):
            stack = app._screen_stacks.get(mode) or []
            before = getattr(stack[-1], "loads", 0) if stack else 0
            await key(f"{name}: {mode} screen (loaded)", name,
                      lambda mode=mode, b=before: app.current_mode == mode
                      and getattr(app.screen, "loads", 1) > b, name)
            focused = app.focused
            if isinstance(focused, FittedTable) and focused.row_count > 1:
                done = moved(focused)
            else:  # an empty table: wait for the key to be handled
                done = settled(app)
            await key(f"{mode} j: cursor down", "j", done, "j")
        await key("1: runs screen again", "1", lambda: app.screen is runs, "1")
    return t.summary()


def pilot(db: Path, keys: int = 50) -> dict[str, Any]:
    return asyncio.run(_pilot(db, keys))
