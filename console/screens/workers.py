"""Live workers: host, pid, concurrency, running attempts, heartbeat age and lease; below,
the attempts (and so the runs) the selected worker holds."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Header, Static

from ..messages import OpenRun
from ..widgets.code_banner import CodeBanner
from ..widgets.fit_footer import StableFooter
from ..widgets.fitted_table import FittedTable
from ..widgets.format import ago, span
from .live import LiveScreen


class WorkersTable(FittedTable):
    COLUMNS = (("id", "Worker", None), ("host", "Host", 14), ("pid", "PID", 7),
               ("busy", "Running", 9), ("beat", "Heartbeat", 11), ("lease", "Lease", 7))


class HeldTable(FittedTable):
    COLUMNS = (("id", "Run", 16), ("activity", "Activity", None), ("attempt", "Try", 4),
               ("started", "Started", 10))


def heartbeat_text(worker: dict[str, Any], colours: dict[str, str]) -> Text:
    """The heartbeat age, in the error colour once it is older than the lease."""
    age = float(worker.get("heartbeat_age") or 0.0)
    late = age > float(worker.get("lease_ttl") or 0.0)
    return Text(("⚠ " if late else "") + span(age) + " ago",
                style=colours["text-error"] if late else "")


class WorkersScreen(LiveScreen):
    """Every worker registered on the database and the attempts it holds."""

    BINDINGS = [Binding("o", "open_run", "Open run", tooltip="or enter",
                        id="workers.open_run")]
    AUTO_FOCUS = "WorkersTable"

    def __init__(self) -> None:
        super().__init__(id="workers")
        self.members: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield CodeBanner(id="code-banner")
        yield Static("", id="workers-summary")
        yield WorkersTable(id="workers-table")
        yield HeldTable(id="held-table")
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = "Workers"
        self.query_one(HeldTable).border_title = "Attempts it holds"
        self.query_one(WorkersTable).focus()

    def fetch(self, params: dict[str, Any]) -> Any:
        return self.engine.workers()

    def show(self, data: Any) -> None:
        self.members = list(data)
        colours = self.colours()
        rows = []
        for w in self.members:
            running = len(w.get("running") or [])
            rows.append((str(w["id"]), [
                Text(str(w["id"]), style="bold", overflow="ellipsis", no_wrap=True),
                Text(str(w.get("host")), overflow="ellipsis", no_wrap=True),
                Text(str(w.get("pid")), justify="right"),
                Text(f"{running} / {w.get('concurrency')}",
                     style=colours["text-warning"] if running >= int(
                         w.get("concurrency") or 0) > 0 else ""),
                heartbeat_text(w, colours),
                Text(span(float(w.get("lease_ttl") or 0.0)))]))
        self.query_one(WorkersTable).set_rows(rows)
        busy = sum(len(w.get("running") or []) for w in self.members)
        summary = Content.assemble((f"{len(self.members)} worker(s)", "bold"),
                                   f", running {busy} attempt(s)")
        if not self.members:
            summary += Content.styled(
                "  None registered: `onward worker` starts one.", "$text-muted")
        self.query_one("#workers-summary", Static).update(summary)
        self._show_selected()

    def tick(self) -> None:
        self._show_selected()

    def _current(self) -> dict[str, Any] | None:
        row = self.query_one(WorkersTable).cursor_row
        return self.members[row] if self.members and 0 <= row < len(self.members) else None

    @on(DataTable.RowHighlighted, "#workers-table")
    def _show_selected(self) -> None:
        held = self.query_one(HeldTable)
        worker = self._current()
        if worker is None:
            held.border_title = "Attempts it holds"
            held.set_rows([])
            return
        held.border_title = (f"{worker['id']}: pid {worker['pid']} on {worker['host']}, "
                             f"started {ago(worker.get('started'), self.now())}")
        held.set_rows([(f"{a['run_id']}:{a['ref']}", [
            Text(str(a["id"]), overflow="ellipsis", no_wrap=True),
            Text(str(a["name"]), overflow="ellipsis", no_wrap=True),
            Text(str(a["attempt"]), justify="right"),
            Text(ago(a.get("started"), self.now()))]) for a in worker.get("running") or []])

    @on(DataTable.RowSelected, "#held-table")
    def _held_selected(self) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        worker = self._current()
        attempts = (worker or {}).get("running") or []
        if not attempts:
            self.notify("The selected worker holds no attempt.", severity="warning")
            return
        row = self.query_one(HeldTable).cursor_row
        self.post_message(OpenRun(str(attempts[min(max(row, 0), len(attempts) - 1)]["run_id"])))
