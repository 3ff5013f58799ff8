"""The tasks inbox: complete with a JSON result (validated) or fail with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from onward.console.app import OnwardApp
from onward.console.screens.modals import CompleteTaskModal, ConfirmModal
from onward.console.screens.tasks import TasksScreen
from onward.console.widgets.json_editor import JsonEditor
from onward.console.widgets.runs_table import RunsTable

from .conftest import FLOWS, statuses, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def _inbox(pilot: Any, app: OnwardApp, rows: int) -> TasksScreen:
    await pilot.press("2")
    inbox: TasksScreen = await wait_for(
        pilot, lambda: isinstance(app.screen, TasksScreen)
        and app.screen.query_one("#tasks-table", DataTable).row_count == rows
        and app.screen, f"{rows} task(s) in the inbox")
    return inbox


async def test_complete_a_task_and_the_run_moves_on(make_engine: Any, workdir: Path,
                                                    any_db: Path | str) -> None:
    """Also on PostgreSQL: the console works the same on either store."""
    engine = make_engine(db=any_db, flows=[FLOWS])
    engine.start("approval", {"what": "desk", "manager": "kim"}, id="desk-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: engine.tasks(), "the approval task")
        inbox = await _inbox(pilot, app, 1)
        await pilot.press("c")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, CompleteTaskModal)
                               and app.screen, "the complete dialog")
        editor = modal.query_one(JsonEditor)
        assert editor.parsed() == (True, {"approved": True})  # the default for approvals
        editor.text = "{not json"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, CompleteTaskModal), "invalid JSON must not submit"
        assert "not valid JSON" in str(modal.query_one(".dialog-error").render())
        editor.text = '"yes, go ahead"'
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: statuses(engine)["desk-1"]["status"] == "completed",
                       "the run to complete after the task")
        assert engine.show("desk-1")["result"] == {"decision": "yes, go ahead"}
        await wait_for(pilot, lambda: inbox.query_one("#tasks-table", DataTable).row_count == 0,
                       "the inbox to empty")
        assert any("Completed task approve of desk-1" in text for _, text in app.notices)
        await pilot.press("1")  # back to the runs, where the run shows completed
        await wait_for(pilot, lambda: app.screen.id == "runs" and "completed" in str(
            app.screen.query_one(RunsTable).current_run()), "the runs screen")


async def test_fail_a_task_with_a_reason(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("approval", {"what": "yacht", "manager": "kim"}, id="yacht-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: engine.tasks(), "the approval task")
        await _inbox(pilot, app, 1)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the fail dialog")
        await pilot.press("tab", *"not in budget", "enter")  # from "Keep" to the reason
        await wait_for(pilot, lambda: statuses(engine)["yacht-1"]["status"] == "failed",
                       "the run to fail with the task")
        assert "not in budget" in engine.show("yacht-1")["error"]["message"]
