"""The home screen: every run, live, with counts, filters, search, sorting and bulk actions."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Select, Static

from ..messages import OpenRun
from ..widgets.code_banner import CodeBanner
from ..widgets.counts_bar import CountsBar
from ..widgets.format import FILTER_LABELS
from ..widgets.runs_table import RunsTable
from .live import LiveScreen

PAGE = 200
SORTS: tuple[tuple[str, str], ...] = (
    ("started", "newest first"),
    ("updated", "last change"),
    ("id", "id"),
    ("workflow", "workflow"),
    ("status", "status"),
)
EMPTY_DB = ("No runs yet. Press [b]n[/] to start a workflow, or run "
            "[b]onward console --demo[/] to start the sample flows.")


class RunsScreen(LiveScreen):
    """Runs as a live table; operations on the highlighted run or on every run shown."""

    BINDINGS = [
        Binding("o", "open_run", "Open", tooltip="or enter", id="runs.open"),
        Binding("slash", "focus_search", "Search", key_display="/", id="runs.search"),
        Binding("f", "focus_filter", "Filter", id="runs.filter"),
        Binding("s", "cycle_sort", "Sort", id="runs.sort"),
        Binding("r", "operate('retry')", "Retry", id="runs.retry"),
        Binding("p", "toggle_pause", "Pause/resume", id="runs.pause"),
        Binding("c", "operate('cancel')", "Cancel", id="runs.cancel"),
        Binding("t", "operate('terminate')", "Terminate", id="runs.terminate"),
        Binding("g", "signal", "Signal", show=False, id="runs.signal"),
        Binding("R", "bulk('retry')", "Retry all shown", show=False, id="runs.bulk_retry"),
        Binding("C", "bulk('cancel')", "Cancel all shown", show=False, id="runs.bulk_cancel"),
        Binding("T", "bulk('terminate')", "Terminate all shown", show=False,
                id="runs.bulk_terminate"),
        Binding("escape", "clear", "Clear filter", show=False, id="runs.clear"),
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
        yield Header()
        yield CodeBanner(id="code-banner")
        yield CountsBar("", id="counts")
        with Horizontal(id="toolbar"):
            yield Input(placeholder="search id or workflow  ( / )", id="search")
            yield Select([(label, key) for key, label in FILTER_LABELS.items()],
                         value="all", allow_blank=False, id="filter")
            yield Static("", id="sort-label")
        yield RunsTable(id="runs-table")
        yield Static("", id="empty")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Runs"
        self._show_sort()
        self.query_one(RunsTable).focus()
        self.watch(self.query_one("#filter", Select), "expanded", self._filter_closed,
                   init=False)

    def _filter_closed(self, expanded: bool) -> None:
        """A filter chosen (or the list dismissed): the keys go back to the table, so
        enter opens a run instead of the dropdown again."""
        if not expanded:  # after the Select has refocused itself
            self.call_after_refresh(self.query_one(RunsTable).focus)

    # -- loading -----------------------------------------------------------------------------
    def load_params(self) -> dict[str, Any]:
        return {"status": None if self.status_filter == "all" else self.status_filter,
                "search": self.search or None, "limit": self.limit,
                "order": SORTS[self.sort_index][0]}

    def fetch(self, params: dict[str, Any]) -> Any:
        counts = self.engine.counts()
        rows = self.engine.list(params["status"], search=params["search"],
                                limit=params["limit"], order=params["order"])
        return counts, rows, params["limit"]

    def show(self, data: Any) -> None:
        counts, rows, limit = data
        self._more = len(rows) >= limit
        self._total_runs = sum(counts.get(s, 0) for s in (
            "running", "completed", "failed", "canceled", "terminated", "continued_as_new"))
        self.query_one(CountsBar).show_counts(counts, self.status_filter)
        table = self.query_one(RunsTable)
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

    def _apply_search(self) -> None:
        text = self.query_one("#search", Input).value.strip()
        if text != self.search:
            self.search = text
            self.limit = PAGE
            self.reload()

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self._apply_search()
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

    def action_operate(self, name: str) -> None:
        run = self._current()
        if run is not None:
            self.ask_operation(name, str(run["id"]))

    def action_toggle_pause(self) -> None:
        run = self._current()
        if run is not None:
            self.ask_operation("resume" if run.get("paused") else "pause", str(run["id"]))

    def action_signal(self) -> None:
        run = self._current()
        if run is not None:
            self.ask_signal(str(run["id"]))

    def action_bulk(self, name: str) -> None:
        """Act on every run matching the current filter and search (not just those loaded)."""
        params = self.load_params()
        params["limit"] = None
        described = self._described()
        only_open = name in ("cancel", "terminate")
        engine = self.engine

        def collect() -> None:
            rows = engine.list(params["status"], search=params["search"], order=params["order"])
            idents = [str(r["id"]) for r in rows if not only_open or r["status"] == "running"]
            self.app.call_from_thread(self.ask_bulk, name, idents,
                                      described + (" (open runs only)" if only_open else ""))

        self.run_worker(collect, thread=True, exclusive=True, exit_on_error=False,
                        group="bulk-collect")

    def palette_commands(self) -> list[tuple[str, str, str]]:
        """Extra command palette entries: (title, help, action)."""
        return [(f"Filter: {label}", "show only these runs", f"set_filter('{key}')")
                for key, label in FILTER_LABELS.items()]
