"""Full garbage-collection passes wait for a quiet moment (console.gc_pacing), and only
``onward console``'s own process gets them paced."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from onward.console.app import OnwardApp
from onward.console.gc_pacing import NO_AUTOMATIC_FULL_PASS, GcPacer

from .conftest import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """The collector's thresholds as they were, put back whatever the test did."""
    saved = gc.get_threshold()
    yield saved
    gc.set_threshold(*saved)


def _pacer(clock: Clock, log: list[str]) -> GcPacer:
    return GcPacer(quiet=1.0, spacing=30.0, overdue=300.0, clock=clock,
                   collect=lambda: log.append("collect"), freeze=lambda: log.append("freeze"))


def _started(clock: Clock, log: list[str]) -> GcPacer:
    """A pacer already started, its log emptied."""
    pacer = _pacer(clock, log)
    pacer.start()
    log.clear()
    return pacer


def test_start_collects_freezes_and_holds_back_full_passes(
        thresholds: tuple[int, int, int]) -> None:
    log: list[str] = []
    pacer = _pacer(Clock(), log)
    assert not pacer.started and pacer.tick() is False and log == []
    pacer.start()
    assert log == ["collect", "freeze"]
    assert gc.get_threshold() == (thresholds[0], thresholds[1], NO_AUTOMATIC_FULL_PASS)
    pacer.start()  # a second start changes nothing
    assert log == ["collect", "freeze"]
    pacer.stop()
    assert gc.get_threshold() == thresholds and not pacer.started


def test_a_pass_waits_for_a_quiet_second_and_its_spacing(
        thresholds: tuple[int, int, int]) -> None:
    clock, log = Clock(), []
    pacer = _started(clock, log)
    clock.now += 29.0
    assert pacer.tick() is False  # quiet, but the last pass is only 29 s old
    clock.now += 2.0
    pacer.input_seen()
    clock.now += 0.5
    assert pacer.tick() is False  # due, but a key came half a second ago
    clock.now += 0.5
    assert pacer.tick() is True and log == ["collect"]
    assert pacer.tick() is False  # the next one is 30 s away again
    pacer.stop()


def test_an_overdue_pass_runs_even_while_keys_keep_coming(
        thresholds: tuple[int, int, int]) -> None:
    clock, log = Clock(), []
    pacer = _started(clock, log)
    for _ in range(299):
        clock.now += 1.0
        pacer.input_seen()
        assert pacer.tick() is False
    clock.now += 1.0
    pacer.input_seen()
    assert pacer.tick() is True and log == ["collect"] and pacer.passes == 2
    pacer.stop()


@pytest.mark.anyio
async def test_the_console_paces_only_when_asked(story: Any,
                                                 thresholds: tuple[int, int, int]) -> None:
    engine, clock = story
    plain = OnwardApp(engine, worker=False, clock=clock)
    assert plain.gc_pacer is None
    app = OnwardApp(engine, worker=False, clock=clock, pace_gc=True)
    assert app.gc_pacer is not None
    pacer = app.gc_pacer
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: pacer.started, "the pacer to start", within=10)
            assert gc.get_threshold()[2] == NO_AUTOMATIC_FULL_PASS
            assert gc.get_freeze_count() > 0
            before = pacer.last_input
            await pilot.press("j")
            assert pacer.last_input > before  # a key press postpones the next pass
        assert gc.get_threshold() == thresholds  # put back when the console exits
    finally:
        gc.unfreeze()


def test_onward_console_turns_pacing_on(story: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_console`` (what ``onward console`` calls) builds its app with a pacer."""
    from types import SimpleNamespace

    from onward.console import app as app_module
    engine, _clock = story
    built: list[OnwardApp] = []
    monkeypatch.setattr(app_module.OnwardApp, "run", lambda self: built.append(self))
    assert app_module.run_console(engine, SimpleNamespace(no_worker=True)) == 0
    assert len(built) == 1 and built[0].gc_pacer is not None
