"""The run detail screen and its actions; exported histories opened offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select, Static

from onward.console.app import OnwardApp
from onward.console.screens.modals import HandlerModal, HandlerNames, RepairModal, SignalModal
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.widgets.json_editor import JsonEditor
from onward.console.widgets.pulse import PulseHeader
from onward.console.widgets.runs_table import RunsTable
from onward.console.widgets.timeline import Timeline

from .conftest import FLOWS, statuses, top, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def _open(pilot: Any, app: OnwardApp, ident: str) -> RunDetailScreen:
    await wait_for(pilot, lambda: ident in app.screen.query_one(RunsTable)._ids,
                   f"{ident} in the runs table")
    table = app.screen.query_one(RunsTable)
    table.move_cursor(row=table._ids.index(ident))
    await pilot.press("enter")
    detail: RunDetailScreen = await wait_for(
        pilot, lambda: isinstance(app.screen, RunDetailScreen) and top(app).loads >= 1
        and app.screen, f"the detail of {ident}")
    timeline = detail.query_one(Timeline)
    await wait_for(pilot, lambda: timeline.cursor_row == timeline.row_count - 1,
                   "the timeline cursor on the newest event")
    return detail


async def test_retry_a_failed_run_after_the_fix(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("fragile", "card-ok", 700, id="charge-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: statuses(engine)["charge-1"]["status"] == "failed",
                       "the charge to fail")
        detail = await _open(pilot, app, "charge-1")
        await wait_for(pilot, lambda: detail.run.get("status") == "failed", "failed shown")
        assert "card declined" in str(detail.run["error"])
        (workdir / "card-ok").touch()  # the operator fixes the cause
        await pilot.press("r")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, RepairModal)
                               and app.screen, "the confirmation")
        await pilot.pause()
        assert not modal.completed  # nothing completed is cut: no consent asked
        assert not modal.query_one("#consent").display
        await pilot.press("shift+tab", "enter")  # from "Keep" to "Retry charge-1"
        await wait_for(pilot, lambda: detail.run.get("status") == "completed",
                       "the detail screen to follow the retried run to completion")
        assert detail.run["result"] == {"charged": 700}
        assert len(detail.run["runs"]) == 2  # the failed run and its retry stay linked
        types = [e["type"] for e in detail.query_one(Timeline).events]
        assert types[-1] == "WorkflowCompleted"


async def test_signal_form_validates_json(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "launch", id="launch-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, "launch-1")
        await pilot.press("g")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, SignalModal)
                               and app.screen, "the signal form")
        await pilot.press(*"go", "enter")  # name, then on to the payload editor
        await pilot.press(*'{"ready": tru')
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SignalModal), "invalid JSON must not be sent"
        assert "not valid JSON" in str(modal.query_one(".dialog-error").render())
        modal.query_one(JsonEditor).text = '{"ready": true}'
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: statuses(engine)["launch-1"]["status"] == "completed",
                       "the signaled run to complete")
        assert engine.show("launch-1")["result"] == {"name": "launch", "go": {"ready": True}}


async def test_export_then_open_offline(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("fragile", "card-ok", 5, id="charge-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: statuses(engine)["charge-1"]["status"] == "failed",
                       "the charge to fail")
        await _open(pilot, app, "charge-1")
        await pilot.press("e")
        path = workdir / "charge-1.history.json"
        await wait_for(pilot, path.exists, "the exported file")
        await wait_for(pilot, lambda: any(str(path) in text for _, text in app.notices),
                       "a toast naming the file")
    exported = json.loads(path.read_text())
    assert exported["id"] == "charge-1" and exported["history"]

    offline = OnwardApp(engine, history_file=path)
    async with offline.run_test(size=SIZE) as pilot:
        detail: RunDetailScreen = await wait_for(
            pilot, lambda: isinstance(offline.screen, RunDetailScreen) and offline.screen,
            "the offline detail")
        assert detail.query_one(Timeline).row_count == len(exported["history"])
        assert offline.engine_worker is None
        await pilot.press("r", "t", "n")  # actions are disabled offline: no dialog opens
        await pilot.pause()
        assert offline.screen is detail
        assert not [b for b in offline.screen.active_bindings.values()
                    if b.binding.action.startswith("operate")]
        header = detail.query_one(PulseHeader)  # the title only: no store, no live rates
        assert header.has_class("-offline") and not header.query_one("#pulse-steps").display
        assert str(header.query_one("#pulse-title", Static).render()) == \
            "Onward · charge-1 · fragile"
        assert offline.pulse.reads == 0 and not [w for w in offline.workers
                                                 if w.group == "pulse"]


async def test_replay_check_says_the_history_matches(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("approval", {"what": "desk", "manager": "kim"}, id="desk-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: statuses(engine)["desk-1"]["step"].startswith("task"),
                       "the approval to wait")
        await _open(pilot, app, "desk-1")
        await pilot.press("v")
        await wait_for(pilot, lambda: any("matches flows_for_console.py on disk" in text
                                          for _, text in app.notices), "the replay verdict")


async def test_reset_to_a_selected_event(make_engine: Any, workdir: Path) -> None:
    """Reset the failed charge to just after its first step: the new run keeps that step
    and runs the rest with today's code (and today's card)."""
    engine = make_engine(flows=[FLOWS])
    engine.start("fragile", "card-ok", 42, id="charge-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: statuses(engine)["charge-1"]["status"] == "failed",
                       "the charge to fail")
        detail = await _open(pilot, app, "charge-1")
        first = detail.run["run_id"]
        await pilot.press("home", "down", "down")  # event 3: console.record completed
        assert (detail.query_one(Timeline).current_event() or {})["type"] == "ActivityCompleted"
        (workdir / "card-ok").touch()
        await pilot.press("b")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, RepairModal)
                               and app.screen, "the reset confirmation")
        assert modal.plan["cut"] == 3 and not modal.completed
        await pilot.press("shift+tab", "enter")  # from "Keep" to "Reset charge-1"
        await wait_for(pilot, lambda: detail.run.get("reset_from") == first
                       and detail.run.get("status") == "completed",
                       "the detail screen to follow the new run to completion")
        types = [e["type"] for e in detail.query_one(Timeline).events]
        assert types.count("ActivityCompleted") == 2 and "ActivityFailed" not in types


async def _handler_dialog(pilot: Any, app: OnwardApp, key: str, chosen: str) -> HandlerModal:
    """Press ``key`` (y: query, u: update) and wait for the dialog to offer ``chosen``."""
    await pilot.press(key)
    modal: HandlerModal = await wait_for(pilot, lambda: isinstance(app.screen, HandlerModal)
                                         and app.screen, f"the dialog of key {key}")
    await wait_for(pilot, lambda: modal.query_one("#name", Select).value == chosen,
                   f"{chosen}, the only handler, chosen")
    return modal


async def test_signal_dialog_lists_the_runs_signal_names(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("console_approval", "claim-1", id="ap-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, "ap-1")
        await pilot.press("g")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, SignalModal)
                               and app.screen, "the signal form")
        names = modal.query_one(HandlerNames)
        await wait_for(pilot, lambda: names.names == ["decide"], "the signal names")
        assert "signal handlers: decide" in str(names.render())
        await pilot.press(*"dec", "right")  # the suggestion completes the name
        assert modal.query_one("#name", Input).value == "decide"
        await pilot.press("enter", *'"no"', "ctrl+s")
        await wait_for(pilot, lambda: statuses(engine)["ap-1"]["status"] == "completed",
                       "the signaled run to complete")
    assert engine.show("ap-1")["result"] == "claim-1: no"


async def test_query_and_update_from_the_detail_screen(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("console_approval", "claim-2", id="ap-2")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, "ap-2")
        await _handler_dialog(pilot, app, "y", "status")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("query status of ap-2 → \"waiting\"" in text
                                          for _, text in app.notices), "the query's answer")
        modal = await _handler_dialog(pilot, app, "u", "approve")
        modal.query_one(JsonEditor).text = '[""]'
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("who approves?" in text for _, text in app.notices),
                       "the validator's rejection reported")
        assert "UpdateAccepted" not in [e["type"] for e in engine.show("ap-2")["history"]]
        modal = await _handler_dialog(pilot, app, "u", "approve")
        modal.query_one(JsonEditor).text = '["dana"]'
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("update approve of ap-2 → \"approved by dana\""
                                          in text for _, text in app.notices),
                       "the update's result")
        await wait_for(pilot, lambda: statuses(engine)["ap-2"]["status"] == "completed",
                       "the approved run to complete")
