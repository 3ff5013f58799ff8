"""The runs screen's filter bar takes the list-filter language: a query narrows the list to
the runs it matches (search attributes included), a query that does not parse marks the bar
and changes nothing, and plain text still searches ids and workflow names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.widgets import Input

from onward.console.app import OnwardApp
from onward.console.screens.runs import RunsScreen
from tests.console.conftest import run_ids, wait_for

pytestmark = pytest.mark.anyio

FLOWS = str(Path(__file__).resolve().parent / "flows_for_console.py")


def test_bar_text_is_a_query_only_when_it_reads_as_one() -> None:
    assert RunsScreen.bar_params("payout") == {"search": "payout", "query": None}
    assert RunsScreen.bar_params("amount > 100") == {"search": None, "query": "amount > 100"}
    assert RunsScreen.bar_params("") == {"search": None, "query": None}
    assert RunsScreen.bar_problem("payout") is None
    assert RunsScreen.bar_problem("amount >") is not None


async def test_a_query_in_the_bar_lists_the_runs_it_matches(make_engine: Any,
                                                            workdir: Path) -> None:
    engine = make_engine(flows=[FLOWS])
    for i, amount in enumerate([50, 150, 250]):
        engine.start("waiter", f"w{i}", id=f"claim-{i}", search_attributes={"amount": amount})
    app = OnwardApp(engine, worker=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: len(run_ids(app)) == 3, "three runs")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        bar = screen.query_one("#search", Input)
        # Each query goes in as one edit (a paste), not key by key: typed slower than the
        # bar's 0.2 s debounce (a loaded machine), "amount" alone would be applied as a
        # plain search on the way to "amount >" (it failed so once).
        await pilot.press("slash")
        bar.post_message(events.Paste("amount >"))
        await pilot.press("enter")  # does not parse: nothing applied
        await wait_for(pilot, lambda: bar.has_class("-bad-query"), "the bar marked")
        assert "query: at" in str(bar.tooltip) and screen.search == ""
        assert len(run_ids(app)) == 3
        await pilot.press("slash")  # (focus selects the bar's text: a paste replaces it)
        bar.post_message(events.Paste("amount > 100"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: sorted(run_ids(app)) == ["claim-1", "claim-2"],
                       "the query to keep the runs over 100")
        assert not bar.has_class("-bad-query") and screen.search == "amount > 100"
