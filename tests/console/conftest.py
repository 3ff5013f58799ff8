"""Console test helpers: a real engine on a tmp database, fixed clock and ids, bounded waits."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from onward import Engine

HERE = Path(__file__).resolve().parent
FLOWS = str(HERE / "flows_for_console.py")
PROVIDERS = HERE / "providers"
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC).timestamp()  # a Monday morning


class FixedClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def sequential_ids() -> Callable[[str], str]:
    """Ids like ``run-0001``, ``task-0001``: the same on every test run."""
    counters: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def make(kind: str) -> str:
        with lock:
            counters[kind] += 1
            return f"{kind}-{counters[kind]:04d}"
    return make


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times are shown in local time; make local time UTC so screenshots are stable."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a private folder (the fragile workflow's fix is a file there; exports land
    there too)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (marked ``anyio``; anyio comes with watchfiles) run on asyncio."""
    return "asyncio"


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], Any], what: str,
                   within: float = 10.0) -> Any:
    """Let the app run until ``predicate()`` is truthy; fail naming ``what`` after ``within``
    seconds. Returns the predicate's value."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await pilot.pause(0.05)


async def pulse_read(pilot: Pilot[Any]) -> None:
    """Wait for the live header's first read (so screenshots do not depend on its timing)."""
    await wait_for(pilot, lambda: pilot.app.pulse.reads >= 1,  # type: ignore[attr-defined]
                   "the live header's first read")


def settle(engine: Engine, predicate: Callable[[], bool], what: str,
           timeout: float = 10.0) -> None:
    """Run an in-process worker until ``predicate()`` holds, then stop it."""
    with engine.worker():
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            engine.wait_for_change(0.05)


def no_blink(pilot: Pilot[Any]) -> None:
    """Cursor blink off in every input, so screenshots do not depend on timing."""
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False


def top(app: Any) -> Any:
    """The app's current screen, untyped (tests poke at screen-specific attributes)."""
    return app.screen


async def open_detail(pilot: Pilot[Any], app: Any, ident: str) -> Any:
    """Push the run detail of ``ident`` and wait until it has loaded once."""
    from onward.console.screens.run_detail import RunDetailScreen
    await app.push_screen(RunDetailScreen(ident))
    return await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                          and top(app).loads >= 1 and app.screen, f"the detail of {ident}")


def runs_table(app: Any) -> Any:
    """The runs screen's table (a ``RunsTable``)."""
    from onward.console.widgets.runs_table import RunsTable
    return app.screen.query_one(RunsTable)


def run_ids(app: Any) -> list[str]:
    """The workflow ids the runs table shows, top to bottom."""
    return list(runs_table(app)._ids)


def statuses(engine: Engine) -> dict[str, dict[str, Any]]:
    return {str(r["id"]): r for r in engine.list()}


def seed_story(engine: Engine, clock: FixedClock) -> None:
    """Runs in instructive states at fixed times: waiting on a person (one of them overdue
    when the clock is left at T0 + 9 min), failed, waiting on a signal, backing off,
    completed. Relative paths only (the caller chdirs to tmp)."""
    clock.t = T0
    engine.start("approval", {"what": "a trip to Lisbon", "manager": "alice"}, id="trip-7")
    clock.t = T0 + 60
    engine.start("fragile", "card-ok", 500, id="charge-3")
    clock.t = T0 + 120
    engine.start("waiter", "go-live", id="launch-1")
    clock.t = T0 + 180
    engine.start("backoff", "bank", id="payout-9")
    clock.t = T0 + 240
    engine.start("approval", {"what": "new laptop", "manager": "bob"}, id="laptop-2")
    clock.t = T0 + 270
    engine.start("approval", {"what": "a visa", "manager": "sam", "hours": 0.05}, id="visa-4")
    clock.t = T0 + 300

    def settled() -> bool:
        for task in engine.tasks():
            if task["id"] == "laptop-2":
                engine.complete_task(task["task_id"], {"approved": True}, by="bob")
        runs = statuses(engine)
        return bool(runs["charge-3"]["status"] == "failed" and runs["payout-9"]["retrying"]
                and runs["trip-7"]["step"].startswith("task")
                and runs["visa-4"]["step"].startswith("task")
                and runs["laptop-2"]["status"] == "completed")

    settle(engine, settled, "the seeded runs to settle")
    clock.t = T0 + 540


@pytest.fixture
def story(make_engine: Callable[..., Engine], workdir: Path) -> tuple[Engine, FixedClock]:
    """An engine (no worker running) on a database seeded by ``seed_story``."""
    clock = FixedClock(T0)
    engine = make_engine(flows=[FLOWS], plugins=[PROVIDERS], clock=clock,
                         ids=sequential_ids())
    seed_story(engine, clock)
    return engine, clock
