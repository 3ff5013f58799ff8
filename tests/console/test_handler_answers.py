"""Query and Update answers show: a one-line toast, and a dialog with the whole JSON when
the answer is too long for one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from onward.console.app import OnwardApp
from onward.console.screens.modals import AnswerModal
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.widgets.json_editor import JsonEditor

from .conftest import FLOWS, statuses, wait_for
from .test_run_detail import SIZE, _handler_dialog, _open

pytestmark = pytest.mark.anyio


async def test_a_short_answer_is_a_toast_and_a_long_one_opens_a_dialog(
        make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    engine.start("console_approval", "claim-3", id="ap-3")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, "ap-3")
        await _handler_dialog(pilot, app, "y", "status")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any('query status of ap-3 → "waiting"' in text
                                          for _, text in app.notices), "the short answer")
        assert isinstance(app.screen, RunDetailScreen)  # no dialog for a short answer
        who = "the regional finance director, on behalf of the whole procurement board"
        modal = await _handler_dialog(pilot, app, "u", "approve")
        modal.query_one(JsonEditor).text = f'["{who}"]'
        await pilot.press("ctrl+s")
        answer = await wait_for(pilot, lambda: isinstance(app.screen, AnswerModal)
                                and app.screen, "the answer dialog")
        assert answer.value == f"approved by {who}"  # whole, where the toast cuts it
        assert any("update approve of ap-3 →" in text for _, text in app.notices)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "closed")
        await wait_for(pilot, lambda: statuses(engine)["ap-3"]["status"] == "completed",
                       "the approved run to complete")
