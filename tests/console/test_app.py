"""App-wide: starting a workflow, help, themes, the command palette, the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from onward.console.app import OnwardApp
from onward.console.commands import ConsoleCommands
from onward.console.demo import seed_demo
from onward.console.screens.help import HelpScreen
from onward.console.screens.modals import StartModal
from onward.console.widgets.json_editor import JsonEditor
from onward.console.widgets.runs_table import RunsTable

from .conftest import FLOWS, statuses, top, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
REPO = Path(__file__).resolve().parents[2]


async def test_start_a_workflow_from_the_dialog(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: top(app).loads >= 1, "the runs screen")
        await pilot.press("n")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, StartModal)
                               and app.screen, "the start dialog")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, StartModal), "no workflow chosen: nothing starts"
        modal.query_one("#workflow").value = "waiter"
        modal.query_one(JsonEditor).text = "[oops"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, StartModal), "invalid JSON: nothing starts"
        modal.query_one(JsonEditor).text = '"rocket"'
        modal.query_one("#ident").value = "rocket-1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "rocket-1" in statuses(engine), "the new run")
        assert engine.show("rocket-1")["input"] == ["rocket"]
        await wait_for(pilot, lambda: "rocket-1" in app.screen.query_one(RunsTable)._ids,
                       "the new run in the table")


async def test_help_theme_and_palette(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: top(app).loads >= 1, "the runs screen")
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark is not dark
        titles = [c.title for c in ConsoleCommands(app.screen).commands()]
        for expected in ("Retry", "Cancel", "Terminate", "Search", "Tasks", "New run",
                         "Retry selected or all shown", "Filter: Failed"):
            assert expected in titles, f"{expected!r} missing from the command palette"
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")


def test_demo_plays_the_instructive_states_once(make_engine: Any, workdir: Path,
                                                data_dir: Path) -> None:
    engine = make_engine(flows=[str(REPO / "sample_flows")], plugins=[REPO / "plugins"])
    with engine.worker():
        started = seed_demo(engine)
        assert started == ["claim-1001", "order-2001", "order-2002", "claim-1002",
                           "claim-1003", "claim-1004"]
        status = {r["id"]: r for r in engine.list()}
        assert status["claim-1001"]["status"] == "completed"
        assert status["order-2001"]["status"] == "completed"
        assert status["order-2002"]["status"] == "failed"
        assert status["claim-1002"]["retrying"]
        kinds = {(t["id"], t["kind"]) for t in engine.tasks()}
        assert kinds == {("claim-1003", "fix_printer"), ("claim-1004", "approve")}
        assert (data_dir / "bank.outage").exists() and (data_dir / "printer.jammed").exists()
        assert seed_demo(engine) == []  # an id runs once


def test_demo_skips_unknown_workflows(make_engine: Any, workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    assert seed_demo(engine) == []
    assert engine.list() == []
