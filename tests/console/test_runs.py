"""The runs screen: live table, filters, search, sorting, paging, row and bulk actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Static

from onward.console.app import OnwardApp
from onward.console.screens.modals import ConfirmModal, ResultsModal
from onward.console.screens.runs import PAGE, RunsScreen
from onward.console.widgets.counts_bar import CountsBar
from onward.console.widgets.runs_table import RunsTable

from .conftest import FLOWS, run_ids, runs_table, statuses, top, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)



async def test_new_runs_appear_live_and_filters_narrow_the_table(make_engine: Any,
                                                                 workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: top(app).loads >= 1, "the first load")
        assert run_ids(app) == []
        engine.start("fragile", "no-such-fix", 100, id="charge-1")
        engine.start("waiter", "launch", id="launch-1")
        engine.start("approval", {"what": "desk", "manager": "kim"}, id="desk-1")
        await wait_for(pilot, lambda: sorted(run_ids(app)) == ["charge-1", "desk-1", "launch-1"],
                       "the three new runs to appear without any key press")
        await wait_for(pilot, lambda: statuses(engine)["charge-1"]["status"] == "failed",
                       "the charge to fail")

        app.screen.query_one("#counts").focus()  # any focus; the filter keys are global
        await pilot.press("f")
        await pilot.press(*"fail", "enter")
        await wait_for(pilot, lambda: run_ids(app) == ["charge-1"], "only the failed run listed")
        assert top(app).status_filter == "failed"

        await pilot.press("escape")
        await wait_for(pilot, lambda: len(run_ids(app)) == 3, "all runs back after escape")

        bar = app.screen.query_one(CountsBar)
        start = next(start for start, _, name in bar._spans if name == "waiting")
        await pilot.click(CountsBar, offset=(1 + start + 2, 0))  # 1: the bar's left padding
        await wait_for(pilot, lambda: run_ids(app) == ["desk-1"], "only the run waiting on kim")


async def test_search_and_sort(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    for ident in ("b-launch", "a-launch", "c-desk"):
        engine.start("waiter", ident, id=ident)
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(run_ids(app)) == 3, "three runs")
        assert run_ids(app) == ["c-desk", "a-launch", "b-launch"]  # none needs attention
        await pilot.press("slash", *"launch")
        await wait_for(pilot, lambda: sorted(run_ids(app)) == ["a-launch", "b-launch"],
                       "the search to keep the launches")
        await pilot.press("enter")  # back to the table
        assert isinstance(app.focused, RunsTable)
        await pilot.press("s", "s", "s")  # attention -> newest first -> last change -> id
        await wait_for(pilot, lambda: run_ids(app) == ["a-launch", "b-launch"], "sorted by id")
        await pilot.press("escape")
        await wait_for(pilot, lambda: run_ids(app) == ["a-launch", "b-launch", "c-desk"],
                       "search cleared, still sorted by id")


async def test_cancel_a_run_from_the_table(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "launch", id="launch-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the run listed")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        assert app.focused is not None and app.focused.id == "cancel"  # the safe "Keep"
        await pilot.press("shift+tab", "enter")  # to "Cancel launch-1", and press it
        await wait_for(pilot, lambda: statuses(engine)["launch-1"]["status"] == "canceled",
                       "the run to be canceled by the worker")
        await wait_for(pilot, lambda: "canceled" in str(runs_table(app).current_run()),
                       "the table to show it canceled")
        assert any("cancel requested for launch-1" in text for _, text in app.notices)


async def test_escape_in_the_confirmation_does_nothing(make_engine: Any, workdir: Path
                                                        ) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "launch", id="launch-1")
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the run listed")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "back on the runs")
        assert statuses(engine)["launch-1"]["status"] == "running"


async def test_bulk_retry_of_every_failed_run(make_engine: Any, workdir: Path) -> None:
    """The operator fixes the cause, filters to failed runs and retries them all at once."""
    engine = make_engine(flows=[FLOWS])
    for n in range(3):
        engine.start("fragile", "card-ok", 100 + n, id=f"charge-{n}")
    engine.start("waiter", "launch", id="launch-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: sum(r["status"] == "failed"
                                          for r in statuses(engine).values()) == 3,
                       "three failed charges")
        top(app).action_set_filter("failed")
        await wait_for(pilot, lambda: len(run_ids(app)) == 3, "the failed runs listed")
        (workdir / "card-ok").touch()  # the fix
        await pilot.press("R")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the bulk confirmation")
        assert modal._title == "Retry 3 shown runs?" and modal._confirm == "Retry 3 shown runs"
        await pilot.press("shift+tab", "enter")  # from "Keep" to "Retry 3 runs"
        results = await wait_for(pilot, lambda: isinstance(app.screen, ResultsModal)
                                 and app.screen, "the results dialog")
        assert sorted(ident for ident, ok, _ in results._results if ok) == [
            "charge-0", "charge-1", "charge-2"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: all(statuses(engine)[f"charge-{n}"]["status"] ==
                                          "completed" for n in range(3)),
                       "every retried charge to complete")
        assert statuses(engine)["launch-1"]["status"] == "running"  # outside the filter


async def test_rows_load_in_pages(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS], synchronous="NORMAL")
    for n in range(PAGE + 50):
        engine.start("waiter", f"w{n}", id=f"w-{n:04d}")
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(run_ids(app)) == PAGE, "the first page")
        await pilot.press("end")
        await wait_for(pilot, lambda: len(run_ids(app)) == PAGE + 50,
                       "the next page once the cursor nears the end")


async def test_pause_then_resume_from_the_table(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "launch", id="launch-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the run listed")
        for paused in (True, False):
            await pilot.press("p")
            modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                                   and app.screen, "the confirmation")
            assert modal._confirm == ("Pause launch-1" if paused else "Resume launch-1")
            await pilot.press("enter")
            await wait_for(pilot, lambda p=paused: statuses(engine)["launch-1"]["paused"] is p
                           and bool((runs_table(app).current_run() or {}).get("paused")) is p,
                           f"paused={paused} in the store and the table")


async def test_bulk_terminate_keeps_on_enter_and_needs_a_reason_and_the_typed_count(
        make_engine: Any, workdir: Path) -> None:
    """Item 19: T then enter used to terminate every run shown with an empty reason."""
    engine = make_engine(flows=[FLOWS], synchronous="NORMAL")
    for n in range(12):
        engine.start("waiter", f"w{n}", id=f"w-{n:02d}")
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(run_ids(app)) == 12, "twelve runs")
        await pilot.press("T")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the bulk confirmation")
        buttons = {b.id: str(b.label) for b in modal.query(Button)}
        assert buttons == {"confirm": "Terminate 12 shown runs", "cancel": "Keep"}
        assert app.focused is modal.query_one("#cancel")
        await pilot.press("enter")  # the safe choice
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "kept")
        assert all(r["status"] == "running" for r in statuses(engine).values())

        await pilot.press("T")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the bulk confirmation again")
        error = modal.query_one(".dialog-error", Static)
        await pilot.press("ctrl+s")  # no reason
        assert isinstance(app.screen, ConfirmModal) and "reason" in str(error.render())
        assert app.focused is modal.query_one("#reason")
        await pilot.press(*"bank outage", "enter")  # a reason, but no count
        assert isinstance(app.screen, ConfirmModal) and "Type 12" in str(error.render())
        assert app.focused is modal.query_one("#typed")
        await pilot.press("1", "1", "enter")  # the wrong count
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("backspace", "2", "enter")
        results = await wait_for(pilot, lambda: isinstance(app.screen, ResultsModal)
                                 and app.screen, "the results")
        assert len([r for r in results._results if r[1]]) == 12
    for run in statuses(engine).values():
        assert run["status"] == "terminated"
    assert "bank outage" in str(engine.show("w-05")["error"])


@pytest.mark.parametrize("key", ["C", "R"])
async def test_other_bulk_actions_keep_on_enter(key: str, make_engine: Any, workdir: Path
                                                ) -> None:
    engine = make_engine(flows=[FLOWS])
    for n in range(6):
        engine.start("waiter", f"w{n}", id=f"w-{n}")
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(run_ids(app)) == 6, "six runs")
        await pilot.press(key)
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the bulk confirmation")
        assert str(modal.query_one("#confirm", Button).label).endswith(" 6 shown runs")
        assert modal.query("#typed"), "more than 5 runs: the count must be typed"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "kept")
        assert all(r["status"] == "running" and not r["stuck"]
                   for r in statuses(engine).values())
        assert engine.show("w-0")["history"][-1]["type"] != "CancelRequested"


async def test_terminating_one_run_needs_a_reason(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "launch", id="launch-1")
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: run_ids(app) == ["launch-1"], "the run listed")
        await pilot.press("t")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the confirmation")
        assert str(modal.query_one("#confirm", Button).label) == "Terminate launch-1"
        assert not modal.query("#typed")  # one run: no count to type
        await pilot.press("enter")  # "Keep" has focus
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "kept")
        await pilot.press("t")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the confirmation again")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmModal), "no reason: nothing happens"
        await pilot.press(*"   ", "ctrl+s")
        assert isinstance(app.screen, ConfirmModal), "blank reason: nothing happens"
        await pilot.press(*"duplicate", "enter")
        await wait_for(pilot, lambda: statuses(engine)["launch-1"]["status"] == "terminated",
                       "terminated")
        assert "duplicate" in str(engine.show("launch-1")["error"])


@pytest.mark.parametrize("key", ["C", "T"])
async def test_capital_keys_act_on_the_selection(key: str, make_engine: Any, workdir: Path
                                                 ) -> None:
    """R, C and T act on the runs selected with space, and say so; the others stay."""
    engine = make_engine(flows=[FLOWS])
    for n in range(4):
        engine.start("waiter", f"w{n}", id=f"w-{n}")
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(run_ids(app)) == 4, "four runs")
        await pilot.press("space", "j", "j", "space")
        chosen = set(runs_table(app).selected)
        assert len(chosen) == 2
        await pilot.press(key)
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the confirmation")
        verb = "Cancel" if key == "C" else "Terminate"
        assert modal._title == f"{verb} 2 selected runs?"
        assert str(modal.query_one("#confirm", Button).label) == f"{verb} 2 selected runs"
        assert "the runs selected with space" in str(modal._body)
        if key == "T":
            await pilot.press("ctrl+s")  # no reason yet: it takes the focus
            await pilot.press(*"wrong batch", "enter")
        else:
            await pilot.press("shift+tab", "enter")  # from "Keep" to the confirm button
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsModal), "the results")
    for ident in (f"w-{n}" for n in range(4)):
        run = engine.show(ident)
        if key == "T":
            assert (run["status"] == "terminated") is (ident in chosen), ident
        else:
            asked = any(e["type"] == "CancelRequested" for e in run["history"])
            assert asked is (ident in chosen) and run["status"] == "running", ident


async def test_capital_keys_without_a_selection_act_on_every_run_shown(
        make_engine: Any, workdir: Path) -> None:
    """Nothing selected: T terminates every run the filter bar shows, and says so."""
    engine = make_engine(flows=[FLOWS])
    for ident in ("keep-1", "keep-2", "drop-1", "drop-2", "drop-3"):
        engine.start("waiter", ident, id=ident)
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(run_ids(app)) == 5, "five runs")
        await pilot.press("slash", *"drop", "enter")
        await wait_for(pilot, lambda: len(run_ids(app)) == 3, "the three drops shown")
        await pilot.press("T")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the confirmation")
        assert modal._title == "Terminate 3 shown runs?"
        assert "nothing is selected, so every run shown" in str(modal._body)
        assert "matching 'drop'" in str(modal._body)
        await pilot.press("ctrl+s", *"cleanup", "enter")  # (a reason is required)
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsModal), "the results")
    assert {ident: r["status"] for ident, r in statuses(engine).items()} == {
        "keep-1": "running", "keep-2": "running", "drop-1": "terminated",
        "drop-2": "terminated", "drop-3": "terminated"}
