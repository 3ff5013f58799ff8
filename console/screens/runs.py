"""The home screen: every run, live, needing attention first, with counts, filters, the
filter bar, saved views, sorting, a selection and bulk actions."""

from __future__ import annotations

import re
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Input, Select, Static

from onward import QueryError, parse_query

from ..messages import OpenRun
from ..saved_views import View, ViewsError, delete_view, load_views, save_view
from ..widgets.code_banner import CodeBanner
from ..widgets.counts_bar import CountsBar
from ..widgets.fit_footer import FitFooter
from ..widgets.format import FILTER_LABELS
from ..widgets.pulse import PulseHeader
from ..widgets.runs_table import RunsTable
from .live import LiveScreen

PAGE = 200
NARROW_BELOW = 100  # cells: a narrower filter dropdown, so the filter bar keeps its room
SORTS: tuple[tuple[str, str], ...] = (
    ("attention", "needs attention"),
    ("started", "newest first"),
    ("updated", "last change"),
    ("id", "id"),
    ("workflow", "workflow"),
    ("status", "status"),
)
EMPTY_DB = ("No runs yet. Press [b]n[/] to start a workflow, or run "
            "[b]onward console --demo[/] to start the sample flows.")


QUERY_SHAPE = re.compile(r"[=<>]|\b(?:AND|OR|NOT|IN|BETWEEN|STARTS_WITH|IS|ORDER BY)\b")
"""Text in the filter bar that reads as the list-filter language rather than a search."""

class RunsScreen(LiveScreen):
    """Runs as a live table; operations on the highlighted run, on the selected runs (space)
    or on every run shown."""

    BINDINGS = [
        Binding("o", "open_run", "Open", tooltip="or enter", id="runs.open"),
        Binding("slash", "focus_search", "Search", key_display="/", id="runs.search"),
        Binding("f", "focus_filter", "Filter", id="runs.filter"),
        Binding("s", "cycle_sort", "Sort", id="runs.sort"),
        Binding("space", "toggle_select", "Select", key_display="space",
                tooltip="select or unselect the run: r c t p then act on the selection",
                id="runs.select"),
        Binding("r", "operate('retry')", "Retry", id="runs.retry"),
        Binding("p", "toggle_pause", "Pause/resume", id="runs.pause"),
        Binding("c", "operate('cancel')", "Cancel", id="runs.cancel"),
        Binding("t", "operate('terminate')", "Terminate", id="runs.terminate"),
        Binding("S", "signal", "Signal", show=False, id="runs.signal"),
        Binding("w", "save_view", "Save view", show=False, id="runs.save_view"),
        Binding("R", "bulk('retry')", "Retry selected or all shown", show=False,
                tooltip="the selected runs; all runs shown when none is selected",
                id="runs.bulk_retry"),
        Binding("C", "bulk('cancel')", "Cancel selected or all shown", show=False,
                tooltip="the selected runs; all runs shown when none is selected",
                id="runs.bulk_cancel"),
        Binding("T", "bulk('terminate')", "Terminate selected or all shown", show=False,
                tooltip="the selected runs; all runs shown when none is selected",
                id="runs.bulk_terminate"),
        Binding("escape", "clear", "Clear selection, then filter", show=False,
                id="runs.clear"),
    ]
    AUTO_FOCUS = "RunsTable"  # when a screen or dialog on top closes, keys go to the table

    def __init__(self) -> None:
        super().__init__(id="runs")
        self.status_filter = "all"
        self.search = ""
        self.sort_index = 0
        self.limit = PAGE
        self._more = False
        self._search_timer: Timer | None = None
        self._total_runs = 0

    def compose(self) -> ComposeResult:
        yield PulseHeader(id="pulse")
        yield CodeBanner(id="code-banner")
        yield CountsBar("", id="counts")
        with Horizontal(id="toolbar"):
            yield Input(placeholder="filter: id or workflow  ( / )", id="search")
            yield Select([(label, key) for key, label in FILTER_LABELS.items()],
                         value="all", allow_blank=False, id="filter")
            yield Static("", id="sort-label")
        yield RunsTable(id="runs-table")
        yield Static("", id="empty")
        yield FitFooter()

    def on_mount(self) -> None:
        self.sub_title = "Runs"
        self._show_sort()
        self.query_one(RunsTable).focus()
        self.watch(self.query_one("#filter", Select), "expanded", self._filter_closed,
                   init=False)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW_BELOW, "-narrow")

    def _filter_closed(self, expanded: bool) -> None:
        """A filter chosen (or the list dismissed): the keys go back to the table, so
        enter opens a run instead of the dropdown again."""
        if not expanded:  # after the Select has refocused itself
            self.call_after_refresh(self.query_one(RunsTable).focus)

    # -- loading -----------------------------------------------------------------------------
    @staticmethod
    def bar_params(text: str) -> dict[str, Any]:
        """What the filter bar's text asks ``Engine.list`` for (the one place that reads
        it): a query in the list-filter language (``amount > 100 AND WorkflowType =
        "payout"``) when the text has a comparison or a keyword of it, else a plain search
        of ids and workflow names."""
        if text and QUERY_SHAPE.search(text):
            return {"search": None, "query": text}
        return {"search": text or None, "query": None}

    @classmethod
    def bar_problem(cls, text: str) -> str | None:
        """Why the bar's text is not a query that parses (None when it is, or when it is
        a plain search); read without touching the store."""
        query = cls.bar_params(text)["query"]
        if query is None:
            return None
        try:
            parse_query(query)
        except QueryError as err:
            return str(err)
        return None

    def load_params(self) -> dict[str, Any]:
        return {"status": None if self.status_filter == "all" else self.status_filter,
                **self.bar_params(self.search), "limit": self.limit,
                "order": SORTS[self.sort_index][0]}

    def fetch(self, params: dict[str, Any]) -> Any:
        counts = self.engine.counts()
        rows = self.engine.list(params["status"], search=params["search"],
                                limit=params["limit"], order=params["order"],
                                query=params["query"])
        due = self.engine.next_due([str(r["run_id"]) for r in rows
                                    if r["status"] == "running"])
        return counts, rows, params["limit"], due

    def show(self, data: Any) -> None:
        counts, rows, limit, due = data
        self._more = len(rows) >= limit
        self._total_runs = sum(counts.get(s, 0) for s in (
            "running", "completed", "failed", "canceled", "terminated", "continued_as_new"))
        self.query_one(CountsBar).show_counts(counts, self.status_filter)
        table = self.query_one(RunsTable)
        table.due = due
        table.show_runs(rows, self.colours(), self.now())
        empty = self.query_one("#empty", Static)
        # The table stays on screen (only shorter) when nothing matches: hiding it would
        # take the keyboard focus with it and strand the keys.
        table.set_class(not rows, "-empty")
        empty.display = not rows
        if not rows:
            if self._total_runs == 0 and self.status_filter == "all" and not self.search:
                empty.update(Content.from_markup(EMPTY_DB))
            else:
                empty.update(Content.assemble(
                    "No runs match ", (self._described(), "bold"),
                    ". Press escape to clear the filter and search."))

    def tick(self) -> None:
        self.query_one(RunsTable).refresh_times(self.now())

    def _described(self) -> str:
        parts = [FILTER_LABELS[self.status_filter].lower()]
        if self.search:
            parts.append(f"matching {self.search!r}")
        return " ".join(parts)

    # -- filter, search, sort, paging ----------------------------------------------------
    def action_set_filter(self, name: str) -> None:
        """Show only runs in this status or filter (the counts bar and palette call this)."""
        if name not in FILTER_LABELS:
            return
        self.query_one("#filter", Select).value = name  # Select.Changed does the rest

    @on(CountsBar.Selected)
    def _count_clicked(self, event: CountsBar.Selected) -> None:
        self.action_set_filter(event.name)

    @on(Select.Changed, "#filter")
    def _filter_changed(self, event: Select.Changed) -> None:
        value = str(event.value) if event.value is not Select.NULL else "all"
        if value != self.status_filter:
            self.status_filter = value
            self.limit = PAGE
            self.reload()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(0.2, self._apply_search)

    def _apply_search(self, submitted: bool = False) -> None:
        bar = self.query_one("#search", Input)
        text = bar.value.strip()
        problem = self.bar_problem(text)
        bar.set_class(problem is not None, "-bad-query")
        bar.tooltip = problem
        if problem is not None:  # (while typing, the bar's colour says so; on enter, words)
            if submitted:
                self.notify(problem, severity="error", markup=False)
            return
        if text != self.search:
            self.search = text
            self.limit = PAGE
            self.reload()

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self._apply_search(submitted=True)
        self.query_one(RunsTable).focus()

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_focus_filter(self) -> None:
        select = self.query_one("#filter", Select)
        select.focus()
        select.expanded = True

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self._show_sort()
        self.reload()

    def _show_sort(self) -> None:
        self.query_one("#sort-label", Static).update(
            Content.assemble(("sort ", "$text-muted"), (SORTS[self.sort_index][1], "bold"),
                             (" (s)", "$text-muted")))

    def action_clear(self) -> None:
        """Escape: unselect the selected runs if any, else clear the filter and search."""
        table = self.query_one(RunsTable)
        if table.selected:
            table.clear_selection()
            table.focus()
            return
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
        self.search = ""
        self.query_one("#filter", Select).value = "all"
        self.limit = PAGE
        self.reload()
        self.query_one(RunsTable).focus()

    @on(RunsTable.NearEnd)
    def _load_more(self) -> None:
        loaded = self.query_one(RunsTable).loaded
        if self._more and self.limit <= loaded:  # not already asked for the next page
            self.limit = loaded + PAGE
            self.reload()

    # -- opening and operating -------------------------------------------------------------
    @on(RunsTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        ident = self.query_one(RunsTable).current_id()
        if ident:
            self.post_message(OpenRun(ident))

    def _current(self) -> dict[str, Any] | None:
        run = self.query_one(RunsTable).current_run()
        if run is None:
            self.notify("No run selected.", severity="warning")
        return run

    def action_toggle_select(self) -> None:
        self.query_one(RunsTable).toggle_selected()

    @on(RunsTable.SelectionChanged)
    def _selection_changed(self) -> None:
        table = self.query_one(RunsTable)
        count = len(table.selected)
        table.border_title = (f"{count} selected: r p c t act on them, esc clears" if count
                              else None)

    def _on_selection(self, name: str) -> bool:
        """Ask for ``name`` on the selected runs, if any are selected (True then)."""
        chosen = self.query_one(RunsTable).selected_runs()
        if not chosen:
            return False
        if name == "toggle_pause":
            name = "resume" if all(r.get("paused") for r in chosen) else "pause"
        open_only = name in ("cancel", "terminate", "pause", "resume")
        idents = [str(r["id"]) for r in chosen if not open_only or r["status"] == "running"]
        described = "the runs selected with space" + (
            "; only the open ones" if len(idents) < len(chosen) else "")
        self.ask_bulk(name, idents, described, scope="selected")
        return True

    def action_operate(self, name: str) -> None:
        if self._on_selection(name):
            return
        run = self._current()
        if run is not None:
            self.ask_operation(name, str(run["id"]))

    def action_toggle_pause(self) -> None:
        if self._on_selection("toggle_pause"):
            return
        run = self._current()
        if run is not None:
            self.ask_operation("resume" if run.get("paused") else "pause", str(run["id"]))

    def action_signal(self) -> None:
        run = self._current()
        if run is not None:
            self.ask_signal(str(run["id"]))

    def action_bulk(self, name: str) -> None:
        """Act on the selected runs; with none selected, on every run matching the current
        filter and search (not just those loaded)."""
        if self._on_selection(name):
            return
        params = self.load_params()
        params["limit"] = None
        described = self._described()
        only_open = name in ("cancel", "terminate")
        engine = self.engine

        def collect() -> None:
            rows = engine.list(params["status"], search=params["search"], order=params["order"],
                               query=params["query"])
            idents = [str(r["id"]) for r in rows if not only_open or r["status"] == "running"]
            self.app.call_from_thread(
                self.ask_bulk, name, idents,
                f"nothing is selected, so every run shown ({described})"
                + ("; only the open ones" if only_open else ""), scope="shown")

        self.run_worker(collect, thread=True, exclusive=True, exit_on_error=False,
                        group="bulk-collect")

    # -- saved views -----------------------------------------------------------------------
    def current_view(self) -> View:
        """The filter, filter-bar text and sort shown now."""
        return View(filter=self.status_filter, text=self.search,
                    sort=SORTS[self.sort_index][0])

    def apply_view(self, view: View) -> None:
        """Show the runs a saved view names (unknown filters or sorts fall back)."""
        self.sort_index = next((i for i, (k, _) in enumerate(SORTS) if k == view.sort), 0)
        self._show_sort()
        self.search = view.text
        self.query_one("#search", Input).value = view.text
        self.status_filter = view.filter if view.filter in FILTER_LABELS else "all"
        self.query_one("#filter", Select).value = self.status_filter
        self.limit = PAGE
        self.reload()
        self.query_one(RunsTable).focus()

    def action_use_view(self, name: str) -> None:
        """Apply the saved view ``name``."""
        try:
            view = load_views().get(name)
        except ViewsError as err:
            self.notify(str(err), severity="error", markup=False)
            return
        if view is None:
            self.notify(f"No saved view named {name!r}.", severity="warning", markup=False)
            return
        self.apply_view(view)

    def action_save_view(self) -> None:
        """Ask for a name and save what is shown as a view."""
        from .modals import ConfirmModal  # the dialog module is large; load it when asked

        def answered(answer: dict[str, Any] | None) -> None:
            if answer is None:
                return
            try:
                save_view(str(answer.get("reason") or ""), self.current_view())
            except ViewsError as err:
                self.notify(str(err), severity="error", markup=False)
                return
            self.notify(f"Saved view {str(answer.get('reason')).strip()!r}.", markup=False)

        self.app.push_screen(ConfirmModal(
            "Save this view?", Content(f"{self._described()}, sorted by "
                                       f"{SORTS[self.sort_index][1]}"),
            confirm="Save view", danger=False, reason="", reason_required=True,
            reason_label="Name of the view"), answered)

    def action_forget_view(self, name: str) -> None:
        """Delete the saved view ``name``."""
        try:
            delete_view(name)
        except ViewsError as err:
            self.notify(str(err), severity="error", markup=False)
            return
        self.notify(f"Forgot view {name!r}.", markup=False)

    def palette_commands(self) -> list[tuple[str, str, str]]:
        """Extra command palette entries: (title, help, action)."""
        found = [(f"Filter: {label}", "show only these runs", f"set_filter('{key}')")
                 for key, label in FILTER_LABELS.items()]
        found += [(f"Sort: {label}", "order the runs list", f"set_sort('{key}')")
                  for key, label in SORTS]
        try:
            views = load_views()
        except ViewsError:
            views = {}
        for name in views:
            found.append((f"View: {name}", "apply this saved view", f"use_view({name!r})"))
            found.append((f"Forget view: {name}", "delete this saved view",
                          f"forget_view({name!r})"))
        return found

    def action_set_sort(self, key: str) -> None:
        """Order the list by ``key`` (one of ``SORTS``)."""
        for index, (name, _) in enumerate(SORTS):
            if name == key:
                self.sort_index = index
                self._show_sort()
                self.reload()
