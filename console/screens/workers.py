"""Live workers: host, pid, concurrency, running attempts, heartbeat age and lease; below,
the attempts (and so the runs) the selected worker holds.

Ages are measured on the store's clock, never the console's: each read says the store's
time it was made at (``read_at``), and between reads the ages grow by the time the
console's own clock has moved since (a difference, so its skew cancels out)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Static

from ..messages import OpenRun
from ..widgets.code_banner import CodeBanner
from ..widgets.fit_footer import StableFooter
from ..widgets.fitted_table import FittedTable
from ..widgets.format import ago, parse_time, span
from ..widgets.pulse import PulseHeader
from .live import LiveScreen


class WorkersTable(FittedTable):
    COLUMNS = (("id", "Worker", None), ("host", "Host", 14), ("pid", "PID", 7),
               ("busy", "Running", 9), ("beat", "Heartbeat", 11), ("lease", "Lease", 7))


class HeldTable(FittedTable):
    COLUMNS = (("id", "Run", 16), ("activity", "Activity", None), ("attempt", "Try", 4),
               ("started", "Started", 10))


def heartbeat_text(worker: dict[str, Any], store_now: float, colours: dict[str, str]
                   ) -> Text:
    """The heartbeat's age at ``store_now`` (the store's time), in the error colour once
    it is older than the lease."""
    beat = parse_time(worker.get("heartbeat"))
    age = max(0.0, store_now - beat) if beat is not None else 0.0
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
        self._read: tuple[float, float] | None = None  # (store's time, console's) at the read

    def compose(self) -> ComposeResult:
        yield PulseHeader(id="pulse")
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
        return self.engine.workers(), self.now()

    def store_now(self) -> float:
        """The store's time now: the last read's, moved on by the console's clock since
        (the console's own now while nothing has been read)."""
        if self._read is None:
            return self.now()
        store_then, console_then = self._read
        return store_then + (self.now() - console_then)

    def show(self, data: Any) -> None:
        rows, console_then = data
        self.members = list(rows)
        read_at = parse_time(self.members[0].get("read_at")) if self.members else None
        self._read = (read_at, console_then) if read_at is not None else None
        self._fill()

    def _fill(self) -> None:
        colours = self.colours()
        store_now = self.store_now()
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
                heartbeat_text(w, store_now, colours),
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
        """Age the heartbeats and start times by the time passed (no store read)."""
        if self.members:
            self._fill()

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
        store_now = self.store_now()
        held.border_title = (f"{worker['id']}: pid {worker['pid']} on {worker['host']}, "
                             f"started {ago(worker.get('started'), store_now)}")
        held.set_rows([(f"{a['run_id']}:{a['ref']}", [
            Text(str(a["id"]), overflow="ellipsis", no_wrap=True),
            Text(str(a["name"]), overflow="ellipsis", no_wrap=True),
            Text(str(a["attempt"]), justify="right"),
            Text(ago(a.get("started"), store_now))]) for a in worker.get("running") or []])

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
