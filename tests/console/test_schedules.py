"""The Schedules screen (key 5): the table with live countdowns, the detail pane, and each
action (pause with a note, unpause, trigger, open a run) through a real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from onward.console.app import OnwardApp
from onward.console.commands import ConsoleCommands
from onward.console.demo import DEMO_SCHEDULE, seed_demo
from onward.console.screens.help import HelpScreen
from onward.console.screens.modals import BackfillModal, ConfirmModal
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.screens.schedules import (
    NextFires,
    RecentTable,
    SchedulesScreen,
    SchedulesTable,
    next_text,
    spec_text,
)

from .conftest import FLOWS, T0, wait_for
from .schedules_story import schedules_engine

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
REPO = Path(__file__).resolve().parents[2]


def cells(table: Any, row: int) -> dict[str, str]:
    """The row's cells by column key."""
    keys = [str(key.value) for key in table.columns]
    return dict(zip(keys, (str(c) for c in table.get_row_at(row)), strict=True))


async def open_schedules(pilot: Any) -> SchedulesScreen:
    await pilot.press("5")
    screen: SchedulesScreen = await wait_for(
        pilot, lambda: isinstance(pilot.app.screen, SchedulesScreen) and pilot.app.screen,
        "the schedules screen")
    await wait_for(pilot, lambda: screen.query_one(SchedulesTable).row_count == 3,
                   "three schedules listed")
    return screen


async def select(pilot: Any, screen: SchedulesScreen, sid: str) -> None:
    table = screen.query_one(SchedulesTable)
    table.move_cursor(row=[s["id"] for s in screen.members].index(sid))
    await wait_for(pilot, lambda: screen.current() and screen.current()["id"] == sid
                   and screen.query_one(NextFires).border_title == sid, f"{sid} selected")


def test_spec_and_countdown_texts() -> None:
    assert spec_text({"spec": {"cron": "30 2 * * *"}, "tz": "Europe/Berlin"}) == \
        "cron 30 2 * * * Europe/Berlin"
    assert spec_text({"spec": {"cron": "@daily"}, "tz": "UTC"}) == "cron @daily"
    assert spec_text({"spec": {"every": "1h/15m"}, "tz": "UTC"}) == "every 1h/15m"
    assert next_text({"next_due": T0 + 42.5}, T0) == "in 42s"
    assert next_text({"next_due": T0 + 3 * 3600 + 300}, T0) == "in 3h05m"
    assert next_text({"next_due": T0 - 3}, T0) == "due now"
    assert next_text({"next_due": None, "paused": True}, T0) == "paused"
    assert next_text({"next_due": None}, T0) == "never"


async def test_table_detail_and_live_countdown(make_engine: Any, workdir: Path) -> None:
    engine, clock = schedules_engine(make_engine, workdir)
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot)
        table = screen.query_one(SchedulesTable)
        rows = {cells(table, i)["id"]: cells(table, i) for i in range(table.row_count)}
        ping = rows["ping"]
        assert ping["spec"] == "every 30s" and ping["overlap"] == "skip"
        assert ping["state"] == "active" and ping["next"] == "in 18s"
        assert ping["last"] == "● ping-2026-03-02T09:30:05Z"
        assert ping["counts"] == "2/1/0"  # two started, one skipped
        assert rows["cleanup"]["state"] == "⏸ paused: warehouse migration"
        assert rows["cleanup"]["next"] == "paused"
        assert rows["nightly-report"]["spec"] == "cron 30 2 * * * Europe/Berlin"
        assert rows["nightly-report"]["next"] == "in 15h59m"  # 02:30 Berlin is 01:30 UTC
        assert rows["nightly-report"]["last"] == "none yet"

        clock.t = T0 + 20  # the countdown moves with the clock, without a store change
        await wait_for(pilot, lambda: cells(table, 2)["next"] == "in 10s",
                       "the countdown to tick")

        await select(pilot, screen, "ping")
        recent = screen.query_one(RecentTable)
        await wait_for(pilot, lambda: recent.row_count == 2, "ping's two recent actions")
        assert [str(c) for c in recent.get_row_at(0)] == [
            "09:30:05", "ping-2026-03-02T09:30:05Z", "● running"]
        assert [str(c) for c in recent.get_row_at(1)][1:] == [
            "ping-2026-03-02T09:30:02Z", "■ terminated"]
        fires = str(screen.query_one(NextFires).render())
        assert "every 30s" in fires and "fired 2, skipped 1, missed 0" in fires
        assert "09:30:30" in fires and "09:32:30" in fires  # the next five, local time

        await select(pilot, screen, "nightly-report")
        fires = str(screen.query_one(NextFires).render())
        assert "Mar 03 01:30:00" in fires and "EU revenue report" in fires


async def test_enter_opens_a_recent_run(make_engine: Any, workdir: Path) -> None:
    engine, clock = schedules_engine(make_engine, workdir)
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot)
        await select(pilot, screen, "ping")
        await pilot.press("enter")  # from the schedule to its recent actions
        recent = screen.query_one(RecentTable)
        await wait_for(pilot, lambda: recent.has_focus and recent.row_count == 2,
                       "the recent actions focused")
        await pilot.press("down", "enter")
        detail = await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                                and app.screen, "the terminated run opened")
        assert detail.ident == screen.members[2]["recent"][1]["run_id"]
        assert engine.show(detail.ident, history=False)["status"] == "terminated"


async def test_pause_with_a_note_then_unpause(make_engine: Any, workdir: Path) -> None:
    engine, clock = schedules_engine(make_engine, workdir)
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot)
        await select(pilot, screen, "ping")
        await pilot.press("p")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the pause dialog")
        await pilot.press("escape")  # keep: nothing changes
        await wait_for(pilot, lambda: app.screen is screen, "the dialog closed")
        assert engine.describe_schedule("ping")["paused"] is False
        await pilot.pause()
        assert isinstance(app.focused, SchedulesTable), f"focus on {app.focused!r}"
        await pilot.press("p")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the pause dialog again")
        modal.query_one("#reason", Input).value = "bank maintenance"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: engine.describe_schedule("ping")["paused"],
                       "ping paused")
        assert engine.describe_schedule("ping")["note"] == "bank maintenance"
        table = screen.query_one(SchedulesTable)
        await wait_for(pilot, lambda: cells(table, 2)["state"] ==
                       "⏸ paused: bank maintenance", "the table showing the pause")
        assert ("information", "paused schedule ping (bank maintenance)") in app.notices

        await pilot.press("u")
        await wait_for(pilot, lambda: not engine.describe_schedule("ping")["paused"],
                       "ping unpaused")
        await wait_for(pilot, lambda: cells(table, 2)["next"] == "in 18s",
                       "the countdown back")
        assert ("information", "unpaused schedule ping") in app.notices


async def test_trigger_now_and_its_overlap_answer(make_engine: Any, workdir: Path) -> None:
    engine, clock = schedules_engine(make_engine, workdir)
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot)
        await select(pilot, screen, "nightly-report")
        await pilot.press("t")
        await wait_for(pilot, lambda: engine.describe_schedule("nightly-report")["recent"],
                       "nightly-report fired")
        [run] = engine.describe_schedule("nightly-report")["recent"]
        assert run["id"] == "nightly-report-2026-03-02T09:30:12Z"
        await wait_for(pilot, lambda: ("information", "triggered schedule nightly-report: "
                                       "started a run") in app.notices, "the toast")
        table = screen.query_one(SchedulesTable)
        await wait_for(pilot, lambda: cells(table, 1)["last"] ==
                       "● nightly-report-2026-03-02T09:30:12Z", "the last result")
        await select(pilot, screen, "ping")  # its last run is open and it skips overlaps
        await pilot.press("t")
        await wait_for(pilot, lambda: ("error", "triggered schedule ping: skipped (its last "
                                       "run is open)") in app.notices, "the skip reported")
        assert engine.describe_schedule("ping")["counts"]["skipped"] == 2


async def test_palette_and_help_list_the_screens_and_actions(make_engine: Any,
                                                             workdir: Path) -> None:
    engine, clock = schedules_engine(make_engine, workdir)
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: top_loads(app) >= 1, "the runs screen")
        titles = [c.title for c in ConsoleCommands(app.screen).commands()]
        for expected in ("Runs", "Tasks", "Code", "Workers", "Schedules"):
            assert expected in titles, f"{expected!r} missing from the command palette"
        assert "Providers" not in titles
        await open_schedules(pilot)
        titles = [c.title for c in ConsoleCommands(app.screen).commands()]
        for expected in ("Pause", "Unpause", "Trigger now", "Open run"):
            assert expected in titles, f"{expected!r} missing from the command palette"
        await pilot.press("question_mark")
        help_screen = await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen)
                                     and app.screen, "the help screen")
        text = str(help_screen.query_one("#help-text").render())
        for expected in ("Code — loaded flows", "Workers — live workers",
                         "Schedules — schedules", "Trigger now", "Unpause",
                         "Pause (with an optional note)"):
            assert expected in text, f"{expected!r} missing from help"


async def test_an_empty_database_says_how_to_make_one(make_engine: Any, workdir: Path
                                                     ) -> None:
    engine = make_engine(flows=[FLOWS])
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, SchedulesScreen)
                                and app.screen.loads >= 1 and app.screen, "the first load")
        summary = str(screen.query_one("#schedules-summary").render())
        assert "0 schedule(s)" in summary and "onward schedule create" in summary
        await pilot.pause()
        assert isinstance(app.focused, SchedulesTable), f"focus on {app.focused!r}"
        for key in ("p", "u", "t"):
            await pilot.press(key)
        assert app.notices.count(("warning", "No schedule selected.")) == 3
        assert app.screen is screen  # no dialog for nothing
        engine.create_schedule("ping", "waiter", "ping", every="30s")
        await wait_for(pilot, lambda: screen.query_one(SchedulesTable).row_count == 1,
                       "the new schedule listed without a key press")


def top_loads(app: Any) -> int:
    return int(getattr(app.screen, "loads", 0))


def test_demo_creates_its_schedule_once(make_engine: Any, workdir: Path,
                                        data_dir: Path) -> None:
    engine = make_engine(flows=[str(REPO / "sample_flows")], plugins=[REPO / "plugins"])
    seed_demo(engine, live=False)
    [schedule] = engine.schedules()
    assert schedule["id"] == DEMO_SCHEDULE and schedule["workflow"] == "greet"
    assert schedule["spec"] == {"every": "30s"} and not schedule["paused"]
    seed_demo(engine, live=False)
    assert len(engine.schedules()) == 1


def test_demo_without_greet_makes_no_schedule(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    seed_demo(engine, live=False)
    assert engine.schedules() == []


async def test_backfill_asks_a_range_and_fires_each_time_in_it(make_engine: Any,
                                                               workdir: Path) -> None:
    engine, clock = schedules_engine(make_engine, workdir)
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_schedules(pilot)
        await select(pilot, screen, "nightly-report")
        await pilot.press("b")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, BackfillModal)
                               and app.screen, "the backfill dialog")
        start, end = modal.query_one("#start", Input), modal.query_one("#end", Input)
        assert (start.value, end.value) == ("2026-03-02 08:30", "2026-03-02 09:30")
        assert app.focused is start
        start.value = "last tuesday"
        await pilot.press("enter", "enter")  # to the end field, then submit
        error = str(modal.query_one(".dialog-error").render())
        assert "The start is not a time" in error and app.focused is start
        start.value = "2026-02-27 00:00"  # local time (UTC in the tests)
        end.value = "2026-03-01T23:00+00:00"
        await wait_for(pilot, lambda: fire_times_line(modal) == "3 fire times from "
                       "2026-02-27 01:30 to 2026-03-01 01:30.", "the preview")
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SchedulesScreen), "dialog closed")
        await wait_for(pilot, lambda: any("backfilled schedule nightly-report: 3 fire "
                                          "time(s)" in text for _, text in app.notices),
                       "the backfill reported")
        fired = {r["id"] for r in engine.describe_schedule("nightly-report")["recent"]}
        assert "nightly-report-2026-02-27T01:30:00Z" in fired  # 02:30 in Berlin
        assert ("information", "backfilled schedule nightly-report: 3 fire time(s) in the "
                "range (1 started, 1 skipped, 1 buffered)") in app.notices  # (buffer_one)


def fire_times_line(modal: BackfillModal) -> str:
    return str(modal.query_one("#fire-times").render())


def error_line(modal: BackfillModal) -> str:
    return str(modal.query_one(".dialog-error").render())


async def test_backfill_previews_the_fire_times_of_the_typed_range(make_engine: Any,
                                                                   workdir: Path) -> None:
    """The dialog says how many fire times the range covers as it is typed (read from the
    schedule's spec, firing nothing), a one-line error for a bad range, and 'more than
    10,000' for a range one backfill refuses."""
    engine, clock = schedules_engine(make_engine, workdir)
    recent = engine.describe_schedule("ping")["recent"]
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_schedules(pilot)
        await select(pilot, screen, "ping")  # every 30s
        await pilot.press("b")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, BackfillModal)
                               and app.screen, "the backfill dialog")
        start, end = modal.query_one("#start", Input), modal.query_one("#end", Input)
        # the last hour, as the dialog opens: 08:30:00 up to, not including, 09:30:00
        await wait_for(pilot, lambda: fire_times_line(modal) == "120 fire times from "
                       "2026-03-02 08:30 to 2026-03-02 09:29:30.", "the hour's fire times")
        end.value = "2026-03-02T08:30:30Z"
        await wait_for(pilot, lambda: fire_times_line(modal) ==
                       "1 fire time: 2026-03-02 08:30.", "one fire time")
        start.value = "2026-03-02 08:30:01"
        await wait_for(pilot, lambda: fire_times_line(modal).startswith("No fire times"),
                       "none in ten seconds")
        start.value = "last tuesday"
        await wait_for(pilot, lambda: "The start is not a time" in error_line(modal),
                       "the start refused")
        assert fire_times_line(modal) == ""
        start.value = "2026-03-02 09:00"
        await wait_for(pilot, lambda: error_line(modal) == "The end must be later than the "
                       "start.", "the range refused")
        assert fire_times_line(modal) == ""
        start.value, end.value = "2026-02-20 00:00", "2026-03-02 09:30"
        await wait_for(pilot, lambda: fire_times_line(modal) == "More than 10,000 fire "
                       "times from 2026-02-20 00:00: too many for one backfill; shorten "
                       "the range.", "too many")
        assert error_line(modal) == ""
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SchedulesScreen), "closed")
    assert engine.describe_schedule("ping")["recent"] == recent  # nothing fired


def test_backfill_preview_counts_what_a_backfill_fires(make_engine: Any,
                                                       workdir: Path) -> None:
    engine, _ = schedules_engine(make_engine, workdir)
    found = engine.backfill_preview("nightly-report", "2026-02-27T00:00:00Z",
                                    "2026-03-01T23:00:00Z")
    assert found == {"count": 3, "more": False, "first": "2026-02-27T01:30:00Z",
                     "last": "2026-03-01T01:30:00Z"}
    fired = engine.backfill_schedule("nightly-report", "2026-02-27T00:00:00Z",
                                     "2026-03-01T23:00:00Z")
    assert sum(fired.values()) == found["count"]


async def test_delete_keeps_on_enter_then_deletes_once_confirmed(make_engine: Any,
                                                                 workdir: Path) -> None:
    engine, clock = schedules_engine(make_engine, workdir)
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_schedules(pilot)
        await select(pilot, screen, "cleanup")
        await pilot.press("d")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the confirmation")
        assert modal._title == "Delete schedule cleanup?" and modal._confirm == "Delete cleanup"
        assert app.focused is modal.query_one("#cancel")
        await pilot.press("enter")  # "Keep"
        await wait_for(pilot, lambda: app.screen is screen, "kept")
        assert "cleanup" in {s["id"] for s in engine.schedules()}
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "asked again")
        await pilot.press("shift+tab", "enter")
        await wait_for(pilot, lambda: screen.query_one(SchedulesTable).row_count == 2,
                       "the schedule gone from the table")
        assert {s["id"] for s in engine.schedules()} == {"nightly-report", "ping"}
        assert ("information", "deleted schedule cleanup; the runs it started go on") \
            in app.notices
