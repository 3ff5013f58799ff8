"""The runs list for an operator's day: needs attention first, countdowns and relative
times, vim keys, a selection with bulk actions, saved views, the live header, and focus
that stays on the table after dialogs, filter changes and empty results."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from onward.console.app import OnwardApp
from onward.console.commands import ConsoleCommands
from onward.console.saved_views import View, ViewsError, load_views, save_view
from onward.console.screens.modals import ConfirmModal, ResultsModal
from onward.console.screens.runs import SORTS, RunsScreen
from onward.console.widgets.fit_footer import FitFooter
from onward.console.widgets.format import clock_time, local_times, next_due_text, relative_times
from onward.console.widgets.pulse import PulseHeader, rates
from onward.console.widgets.runs_table import RunsTable

from .conftest import T0, run_ids, runs_table, statuses, top, wait_for

pytestmark = pytest.mark.anyio
ATTENTION = ["charge-3", "payout-9", "visa-4", "laptop-2", "trip-7", "launch-1"]


@pytest.fixture(autouse=True)
def views_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Saved views go to the test's own file, never the operator's config folder."""
    path = tmp_path / "config" / "views.json"
    monkeypatch.setenv("ONWARD_CONSOLE_VIEWS", str(path))
    return path


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _read(path: Path) -> str:
    return path.read_text()


def _app(story: Any) -> OnwardApp:
    engine, clock = story
    return OnwardApp(engine, worker=False, clock=clock)


def _cell(app: Any, ident: str, column: str) -> str:
    table = runs_table(app)
    return str(table.get_cell(ident, column))


async def _loaded(pilot: Any, app: Any) -> None:
    await wait_for(pilot, lambda: len(run_ids(app)) == 6, "the six seeded runs")


async def test_attention_first_with_countdowns_and_relative_times(story: Any) -> None:
    engine, clock = story
    app = _app(story)
    async with app.run_test(size=(160, 45)) as pilot:
        await _loaded(pilot, app)
        # failed, retrying, an overdue task; then the rest by last change
        assert run_ids(app) == ATTENTION
        assert [r["id"] for r in engine.list(order="attention")] == ATTENTION
        assert _cell(app, "payout-9", "next") == "retry in 1m00s"
        assert _cell(app, "visa-4", "next") == "overdue 1m30s"
        assert _cell(app, "trip-7", "next") == "due in 1d23h"
        assert _cell(app, "trip-7", "started") == "9m ago"
        assert "2026-" not in _cell(app, "payout-9", "step")  # no raw ISO time
        assert "retry in 1m00s" in _cell(app, "payout-9", "step")
        clock.t += 30  # the countdowns tick without a store read
        await wait_for(pilot, lambda: _cell(app, "payout-9", "next") == "retry in 30s",
                       "the retry countdown to tick")
        assert _cell(app, "visa-4", "next") == "overdue 2m00s"


async def test_vim_keys_move_like_the_arrows(story: Any) -> None:
    app = _app(story)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        table = runs_table(app)
        await pilot.press("j", "j")
        assert table.current_id() == ATTENTION[2]
        await pilot.press("k")
        assert table.current_id() == ATTENTION[1]
        await pilot.press("G")
        assert table.current_id() == ATTENTION[-1]
        await pilot.press("g")
        assert table.current_id() == ATTENTION[0]


async def test_selection_and_bulk_cancel_name_the_count(story: Any) -> None:
    engine, _ = story
    app = _app(story)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        table = runs_table(app)
        # select charge-3 (failed), payout-9 and visa-4 (open); unselect nothing
        await pilot.press("space", "j", "space", "j", "space")
        assert table.selected == {"charge-3", "payout-9", "visa-4"}
        assert _cell(app, "payout-9", "id").startswith("✓ ")
        assert "3 selected" in str(table.border_title)
        await pilot.press("c")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the bulk confirmation")
        assert modal._title == "Cancel 2 selected runs?"  # open only: the failed one is left
        await pilot.press("escape")  # keep: nothing happens, keys back on the table
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), "back on runs")
        assert isinstance(app.focused, RunsTable)
        assert statuses(engine)["payout-9"]["status"] == "running"
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "asked again")
        await pilot.press("shift+tab", "enter")  # "Cancel 2 selected runs"
        results = await wait_for(pilot, lambda: isinstance(app.screen, ResultsModal)
                                 and app.screen, "the results")
        assert sorted(i for i, ok, _ in results._results if ok) == ["payout-9", "visa-4"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.focused, RunsTable), "focus on table")
        await pilot.press("escape")  # clears the selection first, the filter next
        assert table.selected == set() and table.border_title is None


async def test_bulk_pause_then_resume_the_selection(story: Any) -> None:
    engine, _ = story
    app = _app(story)
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        await pilot.press("G", "space", "k", "space")  # launch-1 and trip-7
        for expected in ("Pause 2 selected runs?", "Resume 2 selected runs?"):
            await pilot.press("p")
            modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                                   and app.screen, "the confirmation")
            assert modal._title == expected
            await pilot.press("shift+tab", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ResultsModal), "results")
            await pilot.press("escape")
            paused = expected.startswith("Pause")
            await wait_for(pilot, lambda p=paused: all(  # type: ignore[misc]
                bool(r["paused"]) is p for i, r in statuses(engine).items()
                if i in ("launch-1", "trip-7")), "the runs paused or resumed")
            await wait_for(pilot, lambda p=paused: all(  # type: ignore[misc]
                bool(runs_table(app)._rows[i]["paused"]) is p
                for i in ("launch-1", "trip-7")), "the table to show it")


async def test_saved_views_round_trip_and_bad_files(story: Any, views_file: Path) -> None:
    app = _app(story)
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        screen = top(app)
        screen.action_set_filter("open")
        await wait_for(pilot, lambda: len(run_ids(app)) == 4, "the open runs")
        await pilot.press("w")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)
                               and app.screen, "the name dialog")
        modal.query_one("#reason").value = "my open runs"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: views_file.exists(), "the views file")
        assert load_views() == {"my open runs": View(filter="open", text="",
                                                     sort="attention")}
        assert isinstance(app.focused, RunsTable)
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(run_ids(app)) == 6, "every run again")
        titles = {c.title: partial(app.run_action, c.action, c.node)
                  for c in ConsoleCommands(app.screen).commands()}
        assert "View: my open runs" in titles and "Sort: needs attention" in titles
        await titles["View: my open runs"]()
        await wait_for(pilot, lambda: len(run_ids(app)) == 4, "the saved view applied")
        assert isinstance(app.focused, RunsTable)

        await titles["Sort: id"]()
        assert SORTS[screen.sort_index][0] == "id"
        await wait_for(pilot, lambda: run_ids(app) == sorted(run_ids(app)), "sorted by id")
        await titles["Forget view: my open runs"]()
        assert load_views() == {}
        assert "View: my open runs" not in {
            c.title for c in ConsoleCommands(app.screen).commands()}

        save_view("my open runs", View(filter="open"))
        _write(views_file, "[1, 2]")  # not an object: reported, never rewritten
        screen.action_use_view("my open runs")
        assert any("saved views must be a JSON object" in text for _, text in app.notices)
        assert _read(views_file) == "[1, 2]"


def test_saved_views_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "views.json"
    assert load_views(path) == {}
    save_view("a", View(filter="failed", text="bank", sort="updated"), path)
    assert json.loads(path.read_text())["a"] == {"filter": "failed", "text": "bank",
                                                 "sort": "updated"}
    with pytest.raises(ViewsError, match="needs a name"):
        save_view("  ", View(), path)
    path.write_text('{"a": {"filter": 3}}')
    with pytest.raises(ViewsError, match=r"views.json: view 'a' must be"):
        load_views(path)
    path.write_text("{nope")
    with pytest.raises(ViewsError, match="cannot read saved views"):
        save_view("b", View(), path)
    assert path.read_text() == "{nope"


async def test_focus_stays_on_the_table_after_filters_and_empty_results(story: Any
                                                                        ) -> None:
    app = _app(story)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        await pilot.press("slash", *"nothing-matches", "enter")
        await wait_for(pilot, lambda: run_ids(app) == [], "an empty result")
        assert isinstance(app.focused, RunsTable)
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(run_ids(app)) == 6, "all runs back")
        assert isinstance(app.focused, RunsTable)
        top(app).action_set_filter("failed")
        await wait_for(pilot, lambda: run_ids(app) == ["charge-3"], "the failed run")
        assert isinstance(app.focused, RunsTable)


async def test_footer_shows_whole_labels_at_80_columns(story: Any) -> None:
    app = _app(story)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        footer = app.screen.query_one(FitFooter)
        await wait_for(pilot, lambda: footer.shown_keys, "the footer laid out")
        shown = list(footer.shown_keys)
        assert "Open" in shown and "Help" not in shown  # dropped, not cut
        width = sum(len(k.key_display) + len(k.description) + 2
                    for k in footer.query("FooterKey") if "-command-palette" not in k.classes)
        assert width <= 80 - 14
        await pilot.resize_terminal(220, 60)
        await wait_for(pilot, lambda: "Help" in footer.shown_keys, "every key when wide")


async def test_live_header_counts_steps_and_failures(story: Any) -> None:
    engine, clock = story
    clock.t = T0 + 301  # just after the seeded runs settled
    app = _app(story)
    async with app.run_test(size=(120, 40)) as pilot:
        await _loaded(pilot, app)
        header = app.screen.query_one(PulseHeader)
        await wait_for(pilot, lambda: header.reads >= 1, "the header's first read")
        recent = engine.recent_steps(119)
        steps, failures = rates(recent["events"], recent["failures"])
        assert header.steps == steps and header.failures == failures
        assert sum(steps) > 0 and max(failures) >= 1  # payout-9's failed attempt
        clock.t = T0 + 303  # later reads cover the last seconds only, merged in
        engine.start("waiter", "later", id="later-1")
        await wait_for(pilot, lambda: header.steps and header.steps[-1] >= 1,
                       "the new run's first events in the last second")
        assert max(header.failures) >= 1  # the earlier failure is still within the minute


def test_rates_and_formatting() -> None:
    steps, per_min = rates([1] * 59 + [0] * 58 + [5, 7], [0] * 60 + [1] + [0] * 58, 60)
    assert steps[-2:] == [5.0, 7.0] and len(steps) == 60
    assert len(per_min) == 60 and per_min[0] == 0.0 and per_min[1] == 1.0 \
        and per_min[-1] == 1.0  # the failure 59 seconds before the last one still counts
    assert rates([], []) == ([], [])
    now = T0
    running = {"status": "running", "retrying": True}
    assert next_due_text(running, {"retry": "2026-03-02T09:30:42+00:00"}, now) == \
        "retry in 42s"
    assert next_due_text({"status": "running"}, {"deadline": "2026-03-02T09:29:00+00:00"},
                         now) == "overdue 1m00s"
    assert next_due_text({"status": "completed"}, {"deadline": "x"}, now) == ""
    assert relative_times("retry at 2026-03-02T09:31:00.000+00:00 (2)", now) == \
        "retry in 1m00s (2)"
    assert relative_times("since 2026-03-02T09:25:00Z", now) == "since 5m ago"
    assert relative_times("no times here", now) == "no times here"
    # the run detail's summary: the local clock time and how far off it is
    at = clock_time("2026-03-02T09:31:00Z", now)
    assert at and "2026" not in at
    assert local_times("attempt 4 failed, retry at 2026-03-02T09:31:00.000+00:00", now) == \
        f"attempt 4 failed, retry at {at} (in 1m00s)"
    assert local_times("since 2026-03-02T09:25:00Z", now) == \
        f"since {clock_time('2026-03-02T09:25:00Z', now)} (5m ago)"
    assert local_times("no times here", now) == "no times here"
