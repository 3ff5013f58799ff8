"""The tasks inbox's search and filters, Approve / Reject on approval tasks, and the JSON
editor's select-all and inline error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual.widgets import Input, Select

from onward.console.app import OnwardApp
from onward.console.screens.modals import CompleteTaskModal, ConfirmModal
from onward.console.screens.tasks import TasksScreen, task_matches
from onward.console.widgets.json_editor import JsonEditor, error_excerpt

from .conftest import top, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def _inbox(pilot: Any, app: OnwardApp) -> TasksScreen:
    await pilot.press("2")
    return await wait_for(pilot, lambda: isinstance(app.screen, TasksScreen)  # type: ignore[no-any-return]
                          and top(app).loads >= 1 and app.screen, "the inbox")


def _shown(inbox: TasksScreen) -> list[str]:
    return [str(t["id"]) for t in inbox.tasks]


async def test_search_and_filters(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        inbox = await _inbox(pilot, app)
        assert sorted(_shown(inbox)) == ["trip-7", "visa-4"]
        await pilot.press("slash")
        assert inbox.focused is inbox.query_one("#tasks-search", Input)
        await pilot.press(*"lisbon")
        await wait_for(pilot, lambda: _shown(inbox) == ["trip-7"], "the search")
        await pilot.press("enter")
        assert inbox.focused is inbox.query_one("#tasks-table")
        inbox.query_one("#tasks-search", Input).value = ""
        inbox.query_one("#tasks-assignee", Select).value = "sam"
        await wait_for(pilot, lambda: _shown(inbox) == ["visa-4"], "sam's task")
        inbox.query_one("#tasks-assignee", Select).clear()
        inbox.query_one("#tasks-due", Select).value = "overdue"
        await wait_for(pilot, lambda: _shown(inbox) == ["visa-4"], "the overdue one")
        inbox.query_one("#tasks-kind", Select).value = "approve"
        await wait_for(pilot, lambda: _shown(inbox) == ["visa-4"], "kind and overdue")
        inbox.query_one("#tasks-due", Select).clear()
        await wait_for(pilot, lambda: len(_shown(inbox)) == 2, "both approvals")


async def test_approve_and_reject(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        inbox = await _inbox(pilot, app)
        inbox.query_one("#tasks-search", Input).value = "lisbon"
        await wait_for(pilot, lambda: _shown(inbox) == ["trip-7"], "trip-7 only")
        await pilot.press("a")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the approve dialog")
        modal.query_one("#reason", Input).value = "enjoy"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not any(t["id"] == "trip-7" for t in engine.tasks()),
                       "trip-7's task to close")
        [done] = [t for t in engine.tasks("completed") if t["id"] == "trip-7"]
        assert done["result"] == {"approved": True, "comment": "enjoy"}

        inbox.query_one("#tasks-search", Input).value = "visa"
        await wait_for(pilot, lambda: _shown(inbox) == ["visa-4"], "visa-4 only")
        await pilot.press("r")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the reject dialog")
        assert modal.focused is modal.query_one("#cancel")  # the safe choice first
        modal.action_confirm()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal), "a rejection needs a reason"
        modal.query_one("#reason", Input).value = "no budget"
        modal.action_confirm()
        await wait_for(pilot, lambda: not engine.tasks(), "visa-4's task to close")
        [done] = [t for t in engine.tasks("completed") if t["id"] == "visa-4"]
        assert done["result"] == {"approved": False, "reason": "no budget"}


async def test_approve_refuses_a_task_that_is_not_an_approval(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        inbox = await _inbox(pilot, app)
        inbox.all_tasks = [{**t, "kind": "fix printer"} for t in inbox.all_tasks]
        inbox._filter()
        await pilot.press("a")
        assert isinstance(app.screen, TasksScreen)
        assert "not an approval" in app.notices[-1][1]


async def test_json_editor_select_all_and_inline_error(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await _inbox(pilot, app)
        await pilot.press("c")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, CompleteTaskModal)
                               and app.screen, "the complete dialog")
        editor = modal.query_one(JsonEditor)
        await pilot.press("ctrl+a", *'{"ok": tru')  # select all, then type over it
        assert editor.text == '{"ok": tru'
        status = str(editor.query_one(".json-status").render())
        assert status.startswith('✗ {"ok": ▸tru') and "(line 1, column 8)" in status
        await pilot.press("e", "}")
        assert editor.parsed() == (True, {"ok": True})


@given(st.text(max_size=30), st.integers(1, 3), st.integers(1, 40))
def test_error_excerpt_marks_the_spot(text: str, line: int, column: int) -> None:
    excerpt = error_excerpt(text, line, column)
    assert excerpt.count("▸") >= 1 and "\n" not in excerpt.replace(text, "")


@given(st.sampled_from(["alice", None]), st.booleans(), st.text(max_size=5))
def test_no_filter_keeps_every_task(assignee: str | None, overdue: bool, kind: str) -> None:
    task = {"assignee": assignee, "overdue": overdue, "kind": kind, "data": None}
    assert task_matches(task)
    assert task_matches(task, assignee=assignee or "anyone", kind=kind, overdue=overdue)
