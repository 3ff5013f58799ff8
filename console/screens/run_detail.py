"""One run: summary, timeline of its history, the raw event, pending work, related runs.

Live (by workflow id, following its newest run, or pinned to a run id) or offline: an
exported history opened with ``--history``, shown read-only with no store calls.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Input, Select, Static, TabbedContent, TabPane

from ..messages import OpenRun
from ..operations import export_history
from ..widgets.code_banner import CodeBanner
from ..widgets.fit_footer import StableFooter
from ..widgets.format import clock_time, error_text, pretty_json
from ..widgets.gantt import Gantt
from ..widgets.history_model import event_types
from ..widgets.json_view import JsonView
from ..widgets.pending import PendingView
from ..widgets.pulse import PulseHeader
from ..widgets.run_summary import RunSummary
from ..widgets.status import status_text
from ..widgets.timeline import Timeline
from .live import LiveScreen

OPERATING_ACTIONS = {"operate", "toggle_pause", "reset", "signal", "run_again", "replay",
                     "export", "handler"}


class RunDetailScreen(LiveScreen):
    """Everything about one run, and the operator's actions on it."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        Binding("r", "operate('retry')", "Retry", id="detail.retry"),
        Binding("p", "toggle_pause", "Pause/resume", key_display="p", id="detail.pause"),
        Binding("b", "reset", "Reset", tooltip="reset to the selected event", id="detail.reset"),
        Binding("c", "operate('cancel')", "Cancel", id="detail.cancel"),
        Binding("t", "operate('terminate')", "Terminate", id="detail.terminate"),
        Binding("g", "signal", "Signal", id="detail.signal"),
        Binding("y", "handler('query')", "Query", show=False, id="detail.query"),
        Binding("u", "handler('update')", "Update", show=False, id="detail.update"),
        Binding("a", "run_again", "Run again", id="detail.run_again"),
        Binding("v", "replay", "Replay check", id="detail.replay"),
        Binding("e", "export", "Export", id="detail.export"),
        Binding("slash", "search", "Search", key_display="/", id="detail.search"),
        Binding("f", "filter_type", "Filter", tooltip="show one event type",
                show=False, id="detail.filter"),
        Binding("z", "compact", "Fold", tooltip="fold each activity's attempts into a row",
                show=False, id="detail.compact"),
        Binding("x", "copy_event", "Copy JSON", tooltip="copy the selected event as JSON",
                show=False, id="detail.copy"),
        Binding("m", "chart", "Chart", tooltip="where the time went", id="detail.chart"),
        Binding("h", "tab('timeline')", "Timeline", show=False, id="detail.tab_timeline"),
        Binding("i", "tab('io')", "Input & result", show=False, id="detail.tab_io"),
        Binding("w", "tab('pending')", "Pending work", show=False, id="detail.tab_pending"),
        Binding("l", "tab('related')", "Related runs", show=False, id="detail.tab_related"),
    ]
    AUTO_FOCUS = "#history"  # when a dialog on top closes, keys go to the timeline

    def __init__(self, ident: str | None = None, *, offline: dict[str, Any] | None = None,
                 id: str | None = "detail") -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.offline = offline
        self.ident = str(offline["id"]) if offline is not None else str(ident)
        self.run: dict[str, Any] = {}
        self._related: list[str] = []
        self._types: list[str] = []
        self._generation = 0  # bumped by open_run: a load for the previous run is dropped
        self._opener: Screen[Any] | None = None  # open_run: push over it once loaded
        self._related_rows: list[Any] = []  # the related table's text (redrawn on change)

    def compose(self) -> ComposeResult:
        yield PulseHeader(id="pulse")
        yield CodeBanner(id="code-banner")
        yield RunSummary("loading…", id="summary")
        with TabbedContent(initial="timeline", id="tabs"):
            with TabPane("Timeline", id="timeline"):
                with Vertical():
                    with Horizontal(id="history-bar"):
                        yield Select[str]([], prompt="all events", compact=True,
                                          id="history-type")
                        yield Input(placeholder="/ search the history", compact=True,
                                    id="history-search")
                        yield Static("", id="history-count")
                    yield Timeline(id="history")
                    yield JsonView(empty="select an event", id="event")
            with TabPane("Chart", id="chart"):
                yield Gantt(id="gantt")
            with TabPane("Input & result", id="io"):
                with Horizontal():
                    yield JsonView(id="input")
                    yield JsonView(empty="no result yet", id="outcome")
            with TabPane("Pending", id="pending"):
                yield PendingView(id="pending-view")
            with TabPane("Related", id="related"):
                with Vertical():
                    yield DataTable(cursor_type="row", zebra_stripes=True, id="related-table")
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = self.ident
        self.query_one("#event", JsonView).border_title = "Event"
        self.query_one("#input", JsonView).border_title = "Input"
        self.query_one("#outcome", JsonView).border_title = "Result"
        table = self.query_one("#related-table", DataTable)
        for key, label in (("relation", "Relation"), ("id", "ID"), ("run", "Run"),
                           ("workflow", "Workflow"), ("status", "Status"),
                           ("started", "Started")):
            table.add_column(label, key=key)
        self.query_one(Timeline).focus()

    # -- swapping the run shown ------------------------------------------------------------------
    def open_run(self, ident: str) -> None:
        """Show ``ident`` in this (kept, hidden) screen: everything of the run shown before
        goes — its data, the type filter, the search, the fold, the tab, the scroll, the
        selected event — and ``loads`` counts from 0 again. The run is read first and the
        screen pushed once it is in place, so it is drawn once, with the new run (not
        emptied, drawn, then filled); it is pushed over the screen that asked for it, and
        not at all if another screen has come on top by then."""
        if self.offline is not None:
            raise ValueError("an offline history screen cannot open another run")
        self.ident = str(ident)
        self._generation += 1
        self._opener = self.app.screen
        self.run = {}
        self._related = []
        self._types = []
        self.loads = 0
        self.sub_title = self.ident
        self.query_one(TabbedContent).active = "timeline"
        select = self.query_one("#history-type", Select)
        search = self.query_one("#history-search", Input)
        with self.prevent(Select.Changed, Input.Changed):
            select.expanded = False
            select.set_options([])
            search.value = ""
        timeline = self.query_one(Timeline)
        timeline.kind, timeline.needle, timeline.compact = None, "", False
        event = self.query_one("#event", JsonView)
        event.border_title = "Event"
        event.show(None, empty="select an event")
        for scrolled in ("#history", "#event", "#input", "#outcome", "#gantt",
                         "#pending-view", "#related-table"):
            self.query_one(scrolled).scroll_home(animate=False, immediate=True)
        timeline.focus()
        self.reload()

    # -- loading -----------------------------------------------------------------------------
    def load_params(self) -> dict[str, Any]:
        return {"ident": self.ident, "run_id": self.run.get("run_id"),
                "after": self.query_one(Timeline).last_seq, "generation": self._generation}

    def fetch(self, params: dict[str, Any]) -> Any:
        generation = params["generation"]
        summary = self.engine.show(params["ident"], history=False)
        if params["run_id"] and summary["run_id"] == params["run_id"]:
            events = self.engine.history(summary["run_id"], after=params["after"])
            return summary, events, False, generation
        full = self.engine.show(summary["run_id"])
        return full, full.get("history") or [], True, generation

    def show(self, data: Any) -> None:
        run, events, replace, generation = data
        if generation != self._generation:
            return  # loaded for the run shown before open_run: the reload after it follows
        self._apply(run, events, replace=replace)
        opener, self._opener = self._opener, None
        if opener is not None and self.app.screen is opener:
            self.app.push_screen(self)

    def reload(self) -> None:
        if self.offline is None:
            super().reload()
        else:  # no store: (re)draw the exported history, e.g. after a theme change
            self._apply(self.offline, self.offline.get("history") or [], replace=True)

    def _apply(self, run: dict[str, Any], events: list[dict[str, Any]], *, replace: bool
               ) -> None:
        now = self.now()
        self.run = run
        self.sub_title = f"{run.get('id')} · {run.get('workflow')}"
        self.query_one(RunSummary).show_run(run, now, offline=self.offline is not None)
        timeline = self.query_one(Timeline)
        if replace:
            timeline.set_events(events, self.colours(), now)
        elif events:
            timeline.add_events(events, self.colours(), now)
        self._offer_types(timeline.events)
        self._show_count()
        self.query_one(Gantt).show_history(timeline.events, self.colours(), now,
                                           open_run=run.get("status") == "running")
        self.query_one("#input", JsonView).show(run.get("input"))
        outcome = self.query_one("#outcome", JsonView)
        if run.get("error"):
            error = run["error"]
            outcome.border_title = "Error"
            text = error_text(error)
            if isinstance(error, dict) and error.get("traceback"):
                text += "\n\n" + str(error["traceback"])
            outcome.show_text(text)
        elif run.get("status") == "completed":
            outcome.border_title = "Result"
            outcome.show(run.get("result"))
        else:
            outcome.border_title = "Result"
            outcome.show(None, empty=f"no result: the run is {run.get('status')}")
        self.query_one(PendingView).show_pending(run.get("pending"), now)
        self._show_related(run, now)
        selected = timeline.current_event()
        if selected is not None:
            self._show_event(selected)

    def _show_related(self, run: dict[str, Any], now: float) -> None:
        colours = self.colours()
        rows: list[tuple[Text, ...]] = []
        related: list[str] = []

        def add(relation: str, ident: str, run_id: str, workflow: str, status_run: dict[str, Any],
                started: str | None, target: str) -> None:
            rows.append((Text(relation), Text(ident), Text(run_id[:12]), Text(workflow),
                         status_text(status_run, colours), Text(clock_time(started, now))))
            related.append(target)

        parent = run.get("parent")
        if parent:
            add("parent", str(parent.get("id")), str(parent.get("run_id") or ""), "",
                {"status": ""}, None, str(parent.get("run_id") or parent.get("id")))
        for child in run.get("children") or []:
            add("child", str(child["id"]), str(child["run_id"]), str(child.get("workflow", "")),
                child, None, str(child["run_id"]))
        for other in run.get("runs") or []:
            if other["run_id"] == run.get("run_id"):
                relation = "this run"
            elif other["run_id"] == run.get("reset_from"):
                relation = "reset from"
            elif other["run_id"] == run.get("reset_to"):
                relation = "reset to"
            elif other["run_id"] == run.get("continued_from"):
                relation = "continued from"
            else:
                relation = "newest run" if other.get("current") else "earlier run"
            add(relation, str(run.get("id")), str(other["run_id"]), str(run.get("workflow")),
                other, other.get("started"), str(other["run_id"]))
        self._related = related
        shape = [[(cell.plain, str(cell.style)) for cell in row] for row in rows]
        if shape == self._related_rows:
            return  # as shown: a reload of an unchanged run redraws nothing
        self._related_rows = shape
        table = self.query_one("#related-table", DataTable)
        selected = table.cursor_row
        table.clear()
        for cells in rows:
            table.add_row(*cells)
        if rows:
            table.move_cursor(row=min(selected, len(rows) - 1), animate=False)

    def tick(self) -> None:
        if self.run and self.is_current:  # the kept screen ticks on while hidden
            now = self.now()
            self.query_one(RunSummary).show_run(self.run, now, offline=self.offline is not None)
            self.query_one(PendingView).show_pending(self.run.get("pending"), now)

    # -- selection ----------------------------------------------------------------------------
    @on(Timeline.RowHighlighted, "#history")
    def _event_highlighted(self) -> None:
        event = self.query_one(Timeline).current_event()
        if event is not None:
            self._show_event(event)

    def _show_event(self, event: dict[str, Any]) -> None:
        view = self.query_one("#event", JsonView)
        if view.value is event:
            return  # already shown: redrawing a long event costs a layout
        view.border_title = f"Event {event.get('seq')} · {event.get('type')}"
        view.show_event(event)

    # -- history filter, search, fold, copy, chart ----------------------------------------------
    def _offer_types(self, events: list[dict[str, Any]]) -> None:
        types = event_types(events)
        if types != self._types:
            self._types = types
            select = self.query_one("#history-type", Select)
            chosen = select.value
            with self.prevent(Select.Changed):
                select.set_options([(t, t) for t in sorted(types)])
                if chosen in types:
                    select.value = chosen

    def _show_count(self) -> None:
        timeline = self.query_one(Timeline)
        count = self.query_one("#history-count", Static)
        if timeline.kind or timeline.needle:
            text = f"{timeline.count_matching()} of {len(timeline.events)}"
        else:
            text = f"{len(timeline.events)} events"
        text += ", folded" if timeline.compact else ""
        if count.content != text:
            count.update(text)

    def _apply_view(self) -> None:
        timeline = self.query_one(Timeline)
        kind = self.query_one("#history-type", Select).value
        timeline.set_view(kind=None if kind is Select.NULL else str(kind),
                          needle=self.query_one("#history-search", Input).value,
                          compact=timeline.compact)
        self._show_count()
        event = timeline.current_event()
        if event is not None:
            self._show_event(event)
        else:
            view = self.query_one("#event", JsonView)
            view.border_title = "Event"
            view.show(None, empty="no event matches the filter")

    @on(Select.Changed, "#history-type")
    def _type_chosen(self) -> None:
        self._apply_view()
        self.query_one(Timeline).focus()

    @on(Input.Changed, "#history-search")
    def _search_typed(self) -> None:
        self._apply_view()

    @on(Input.Submitted, "#history-search")
    def _search_done(self) -> None:
        self.query_one(Timeline).focus()

    def action_search(self) -> None:
        self.query_one(TabbedContent).active = "timeline"
        self.query_one("#history-search", Input).focus()

    def action_filter_type(self) -> None:
        self.query_one(TabbedContent).active = "timeline"
        select = self.query_one("#history-type", Select)
        select.focus()
        select.action_show_overlay()

    def action_compact(self) -> None:
        timeline = self.query_one(Timeline)
        timeline.compact = not timeline.compact
        self._apply_view()

    def action_copy_event(self) -> None:
        row = self.query_one(Timeline).current_row()
        if row is None:
            self.notify("Select an event to copy.", severity="warning")
            return
        value: Any = row.folded or row.event
        self.app.copy_to_clipboard(json.dumps(value, indent=2, ensure_ascii=False,
                                              default=str))
        what = (f"{len(row.folded)} events of an activity" if row.folded
                else f"event {row.event.get('seq')}")
        self.notify(f"Copied {what} as JSON", timeout=2)

    def action_chart(self) -> None:
        tabs = self.query_one(TabbedContent)
        self.action_tab("timeline" if tabs.active == "chart" else "chart")

    @on(DataTable.RowSelected, "#related-table")
    def _related_selected(self, event: DataTable.RowSelected) -> None:
        if self.offline is not None:
            self.notify("Offline history: related runs are not in the file.",
                        severity="warning")
            return
        if 0 <= event.cursor_row < len(self._related):
            target = self._related[event.cursor_row]
            if target != self.run.get("run_id"):
                self.post_message(OpenRun(target))

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        focus = {"timeline": "#history", "related": "#related-table", "io": "#input",
                 "pending": "#pending-view", "chart": "#gantt"}[tab]
        self.query_one(focus).focus()

    # -- actions -----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in OPERATING_ACTIONS and self.offline is not None:
            return False
        return True

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.dismiss()
        else:
            self.app.exit()

    def action_operate(self, name: str) -> None:
        self.ask_operation(name, self.ident)

    def action_toggle_pause(self) -> None:
        self.ask_operation("resume" if self.run.get("paused") else "pause", self.ident)

    def action_signal(self) -> None:
        self.ask_signal(self.ident)

    def action_handler(self, kind: str) -> None:
        self.ask_handler(kind, self.ident)

    def action_reset(self) -> None:
        event = self.query_one(Timeline).current_event()
        if event is None:
            self.notify("Select an event in the timeline to reset to.", severity="warning")
            return
        self.ask_repair("reset", self.ident, int(event["seq"]))

    def action_run_again(self) -> None:
        if not self.run:
            return
        self.onward.action_start_workflow(str(self.run.get("workflow")),
                                          pretty_json(self.run.get("input")), again=self.ident)

    def action_replay(self) -> None:
        self.run_operation("replay", [self.ident], {})

    def action_export(self) -> None:
        self._export(self.ident)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export(self, ident: str) -> None:
        path = export_history(self.engine.show(ident))
        self.app.notify(f"Exported the history of {ident} to {path}", title="Exported",
                        markup=False)
