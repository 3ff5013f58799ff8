"""Retry and reset in the console (issue 14 item 9): the dialog shows the cut, what it keeps
and discards, flags completed activities among the discarded, and discards them only with
explicit consent. "Keep" has focus, so a stray enter changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Checkbox, Input, Label, Static

from onward import BadInput, Engine
from onward.console.app import OnwardApp
from onward.console.operations import perform
from onward.console.screens.modals import RepairModal, ResultsModal
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.screens.runs import RunsScreen
from onward.console.widgets.timeline import Timeline

from .conftest import statuses, wait_for
from .test_run_detail import _open

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
SAGA = str(Path(__file__).resolve().parent / "flows_saga.py")


def _failed_order(make_engine: Any) -> Engine:
    """The demo's story: charged, the bake failed, refunded; the run failed."""
    engine: Engine = make_engine(flows=[SAGA])
    engine.start("pizza", "margherita", id="order-1")
    with engine.worker():
        handle = engine.handle("order-1")
        with pytest.raises(Exception, match="oven"):
            handle.result(timeout=20)
    return engine


def _activities(engine: Engine, ident: str) -> list[str]:
    return [e["attrs"]["name"] for e in engine.show(ident)["history"]
            if e["type"] == "ActivityCompleted"]


async def _modal(pilot: Any, app: OnwardApp) -> RepairModal:
    modal: RepairModal = await wait_for(pilot, lambda: isinstance(app.screen, RepairModal)
                                        and app.screen, "the repair dialog")
    await pilot.pause()
    return modal


async def test_retrying_a_failed_saga_lists_the_refund_and_needs_consent(
        make_engine: Any, workdir: Path) -> None:
    engine = _failed_order(make_engine)
    first = engine.show("order-1")["run_id"]
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, "order-1")
        await pilot.press("r")
        modal = await _modal(pilot, app)
        assert [c["name"] for c in modal.completed] == ["saga.refund"]
        text = str(modal.query_one("#completed", Static).render())
        assert "saga.refund" in text and "refunded margherita" in text
        assert app.focused is modal.query_one("#cancel")
        await pilot.press("enter")  # Keep
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "kept")
        assert engine.show("order-1")["run_id"] == first

        await pilot.press("r")
        modal = await _modal(pilot, app)
        await pilot.press("ctrl+s")  # no consent: nothing happens
        assert isinstance(app.screen, RepairModal)
        assert "Tick the box" in str(modal.query_one(".dialog-error", Static).render())
        assert app.focused is modal.query_one("#consent", Checkbox)
        (workdir / "oven-fixed").touch()
        await pilot.press("space", "ctrl+s")  # tick, confirm
        await wait_for(pilot, lambda: statuses(engine)["order-1"]["status"] == "completed",
                       "the retried order to complete")
    assert engine.show("order-1")["result"] == "delivered margherita"
    assert _activities(engine, "order-1") == ["saga.charge", "saga.bake"]  # charge kept


async def test_reset_shows_the_cut_and_flags_completed_activities(make_engine: Any,
                                                                  workdir: Path) -> None:
    engine = _failed_order(make_engine)
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        detail = await _open(pilot, app, "order-1")
        timeline = detail.query_one(Timeline)
        await pilot.press("home", "down", "down")  # event 3: saga.charge completed
        assert (timeline.current_event() or {})["type"] == "ActivityCompleted"
        await pilot.press("b")
        modal = await _modal(pilot, app)
        assert modal.plan["cut"] == 3 and modal.plan["action"] == "reset"
        cut = str(modal.query_one("#cut", Static).render())
        assert "Keeps events 1–3" in cut and "completed: it really happened" in cut
        assert [c["name"] for c in modal.completed] == ["saga.refund"]
        await pilot.press("shift+tab", "enter")  # straight to the button: refused
        assert isinstance(app.screen, RepairModal)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen), "kept")
    assert statuses(engine)["order-1"]["status"] == "failed"
    assert len(engine.show("order-1")["runs"]) == 1


async def test_bulk_retry_leaves_a_run_that_would_discard_completed_work(
        make_engine: Any, workdir: Path) -> None:
    engine = _failed_order(make_engine)
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and app.screen.loads >= 1, "the runs")
        await pilot.press("R")
        await wait_for(pilot, lambda: app.screen.query("#confirm"), "the bulk confirmation")
        await pilot.press("shift+tab", "enter")
        results = await wait_for(pilot, lambda: isinstance(app.screen, ResultsModal)
                                 and app.screen, "the results")
        [(ident, ok, message)] = results._results
        assert (ident, ok) == ("order-1", False) and "saga.refund" in message
    assert len(engine.show("order-1")["runs"]) == 1


def test_consent_covers_only_the_completed_activities_the_dialog_showed(
        make_engine: Any, workdir: Path) -> None:
    """Between the dialog and the action more may complete: then nothing is done."""
    engine = _failed_order(make_engine)
    refund = engine.repair_plan("order-1")["discarded_completed"][0]["seq"]
    with pytest.raises(BadInput, match="changed since you confirmed"):
        perform(engine, "retry", "order-1", {"discard_completed": True, "consented": []})
    assert len(engine.show("order-1")["runs"]) == 1
    ok, message = perform(engine, "retry", "order-1",
                          {"discard_completed": True, "consented": [refund]})
    assert ok and "retrying order-1" in message


async def test_the_reset_dialog_lets_the_operator_move_the_cut(make_engine: Any,
                                                               workdir: Path) -> None:
    engine = _failed_order(make_engine)
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, "order-1")
        await pilot.press("home", "down", "down", "b")  # from event 3 (charge completed)
        modal = await _modal(pilot, app)
        assert modal.plan["cut"] == 3 and modal.query_one("#consent", Checkbox).display
        field = modal.query_one("#cut-seq", Input)
        field.value = "999"
        await wait_for(pilot, lambda: "999" in str(
            modal.query_one(".dialog-error", Static).render()), "the refused cut explained")
        modal.action_confirm()
        assert isinstance(app.screen, RepairModal), "no plan: nothing to confirm"
        last = max(e["seq"] for e in engine.show("order-1")["history"] if
                   e["type"] == "ActivityCompleted")  # just after the refund completed
        field.value = str(last)
        await wait_for(pilot, lambda: modal.plan["cut"] == last, "the new plan")
        assert not modal.completed and not modal.query_one("#consent", Checkbox).display
        cut = str(modal.query_one("#cut", Static).render())
        assert f"Keeps events 1–{last}" in cut
        assert f"Reset order-1 to event {last}?" in str(modal.query_one("#repair-title",
                                                                         Label).render())
        modal.action_confirm()
        await wait_for(pilot, lambda: len(engine.show("order-1")["runs"]) == 2,
                       "the reset to the chosen event")
        started = engine.show("order-1")["history"][0]["attrs"]
        assert started["reset_event"] == last
