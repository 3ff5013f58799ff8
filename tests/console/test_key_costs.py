"""What a key press costs the UI thread: footers are not rebuilt when the focus moves
between widgets that show the same keys, fixed-width tables skip measuring cells, the chart
is worked out once per history change, and a search folds each event's text once."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from onward.console.app import OnwardApp
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.widgets import gantt as gantt_module
from onward.console.widgets import history_model
from onward.console.widgets.fit_footer import FitFooter, StableFooter
from onward.console.widgets.fitted_table import FittedTable
from onward.console.widgets.gantt import Gantt
from onward.console.widgets.timeline import Timeline

from .conftest import open_detail, runs_table, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def _detail(pilot: Any, app: OnwardApp, ident: str) -> RunDetailScreen:
    screen: RunDetailScreen = await open_detail(pilot, app, ident)
    return screen


async def test_footer_kept_when_focus_moves_between_widgets_showing_the_same_keys(
        story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: runs_table(app).row_count > 0, "the runs")
        detail = await _detail(pilot, app, "charge-3")
        await pilot.pause()
        keys = list(detail.query_one(StableFooter).query(FooterKey))
        assert "Chart" in [k.description for k in keys]
        await pilot.press("m")  # the focus moves to the chart: the same keys
        assert detail.focused is detail.query_one(Gantt)
        await pilot.press("m")
        assert detail.focused is detail.query_one(Timeline)
        await pilot.pause()
        assert list(detail.query_one(StableFooter).query(FooterKey)) == keys  # not rebuilt
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not detail, "back to the runs")
        footer = app.screen.query_one(FitFooter)
        assert "Sort" in footer.shown_keys
        await pilot.press("slash")  # typing in the filter bar hides the letter keys
        assert isinstance(app.focused, Input)
        await wait_for(pilot, lambda: "Sort" not in footer.shown_keys, "the footer rebuilt")
        await pilot.press("escape")
        await wait_for(pilot, lambda: "Sort" in footer.shown_keys, "the letter keys back")


class _Tables(App[None]):
    def compose(self) -> ComposeResult:
        fixed = FittedTable(id="fixed")
        fixed.COLUMNS = (("a", "A", 4), ("b", "B", None))  # type: ignore[misc]
        yield fixed


async def test_fixed_width_table_sizes_without_measuring_cells(
        monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[Any] = []
    import textual.widgets._data_table as data_table
    real = data_table.measure
    monkeypatch.setattr(data_table, "measure",
                        lambda *a, **k: measured.append(a[1]) or real(*a, **k))
    app = _Tables()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(FittedTable)
        table.set_rows([(str(i), (str(i), "x" * i)) for i in range(50)])
        await pilot.pause()
        assert table.virtual_size.height == 50 + 1  # the rows and the header
        assert table.virtual_size.width == sum(
            c.get_render_width(table) for c in table.columns.values())
        assert not [m for m in measured if "x" * 10 in str(m)]  # no cell was measured
        assert table.get_cell_at(table.cursor_coordinate) == "0"


async def test_chart_worked_out_once_per_history_change(story: Any,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    calls: list[int] = []
    real = gantt_module.lanes
    monkeypatch.setattr(gantt_module, "lanes", lambda events: calls.append(len(events))
                        or real(events))
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        detail = await _detail(pilot, app, "charge-3")
        assert calls == []  # the chart tab is not shown: nothing charted yet
        detail.reload()
        await wait_for(pilot, lambda: detail.loads >= 2, "a second load")
        await pilot.press("m")
        chart = detail.query_one(Gantt)
        await wait_for(pilot, lambda: chart.chart_text(), "the chart drawn")
        assert calls == [7]  # once, for the seven events, though loaded twice
        assert "charge" in chart.chart_text()


async def test_search_folds_each_event_text_once(story: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folded: list[Any] = []
    real = history_model.event_text
    monkeypatch.setattr("onward.console.widgets.timeline.event_text",
                        lambda event: folded.append(event.get("seq")) or real(event))
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        detail = await _detail(pilot, app, "charge-3")
        timeline = detail.query_one(Timeline)
        await pilot.press("slash", *"charg")
        await wait_for(pilot, lambda: timeline.needle == "charg", "the search typed")
        assert sorted(folded) == sorted(e["seq"] for e in timeline.events)  # once each
        assert timeline.shown and all("charg" in history_model.event_text(r.event)
                                      for r in timeline.shown)


async def test_reload_of_an_unchanged_run_redraws_no_pane(story: Any,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A load that finds nothing new (the reload when the screen comes back, a commit of
    another run) updates no text and refills no table: nothing is laid out or drawn."""
    from textual.widgets import DataTable, Static
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        detail = await _detail(pilot, app, "charge-3")
        await pilot.pause()
        redrawn: list[str] = []
        update, clear = Static.update, DataTable.clear
        panes = [detail.query_one("#summary"), detail.query_one("#tabs")]

        def note(widget: Any) -> None:  # the run's panes (not the live header's rates)
            if any(pane in widget.ancestors_with_self for pane in panes):
                redrawn.append(f"{widget.id or widget.classes}")

        monkeypatch.setattr(Static, "update", lambda self, *a, **k: note(self)
                            or update(self, *a, **k))
        monkeypatch.setattr(DataTable, "clear", lambda self, *a, **k: note(self)
                            or clear(self, *a, **k))
        loads = detail.loads
        detail.reload()
        await wait_for(pilot, lambda: detail.loads > loads, "a second load")
        await pilot.pause()
        assert redrawn == []
        detail.run = {**detail.run, "status": "running", "error": None}  # as if retried
        detail.tick()
        assert redrawn == ["summary"]  # the summary's text changed: it alone is redrawn
