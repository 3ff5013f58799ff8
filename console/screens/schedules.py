"""Schedules: id, workflow, when it fires, overlap policy, paused (and why), a live countdown
to the next fire, the last result and the fire counts; below, the selected schedule's next
fires and recent actions (enter opens a run). Pause, unpause, trigger, backfill (a range
asked in a dialog) and delete (confirmed) act on the selected schedule in a thread and
report with a toast."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import DataTable, Static

from onward import Engine

from ..messages import OpenRun, OperationDone
from ..widgets.code_banner import CodeBanner
from ..widgets.fit_footer import FitFooter
from ..widgets.fitted_table import Column, FittedTable
from ..widgets.format import STATUS_LOOK, clock_time, short_span
from ..widgets.pulse import PulseHeader
from .live import LiveScreen
from .modals import BackfillModal, ConfirmModal
from .operating import short

LAYOUTS: tuple[tuple[Column, ...], ...] = (  # widest first; the first that fits is used
    (("id", "Schedule", None), ("workflow", "Workflow", 12), ("spec", "When", 30),
     ("overlap", "Overlap", 12), ("state", "State", 18), ("next", "Next fire", 9),
     ("last", "Last result", 28), ("counts", "Fired/skip/miss", 15)),
    (("id", "Schedule", None), ("workflow", "Workflow", 10), ("spec", "When", 16),
     ("overlap", "Overlap", 10), ("state", "State", 12), ("next", "Next", 9),
     ("last", "Last result", 18), ("counts", "F/S/M", 8)),
    (("id", "Schedule", None), ("workflow", "Workflow", 9), ("spec", "When", 12),
     ("state", "State", 9), ("next", "Next", 9), ("last", "Last result", 13)),
)


class SchedulesTable(FittedTable):
    """The schedules, with as many columns as the width allows (the overlap policy and
    counts drop first; the detail pane shows them too)."""

    COLUMNS = LAYOUTS[-1]
    MIN_FLEX = 10

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cells: list[tuple[str, dict[str, Any]]] = []

    def fit_columns(self) -> bool:
        for layout in LAYOUTS:
            fixed = sum(w for _, _, w in layout if w) + 2 * len(layout) + 2
            if fixed + self.MIN_FLEX <= self.size.width or layout is LAYOUTS[-1]:
                if layout is not self.COLUMNS:
                    self.COLUMNS = layout  # type: ignore[misc]  # per instance, by width
                    self._flex_width = -1
                break
        return super().fit_columns()

    def set_cells(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        """Show rows given as column key → cell, keeping the cells of columns not shown."""
        if not self.columns:
            self.fit_columns()
        self._cells = rows
        self.refill()

    def refill(self) -> None:
        self.set_rows([(key, [cells[k] for k, _, _ in self.COLUMNS])
                       for key, cells in self._cells])


class NextFires(Static):
    """The selected schedule's spec, counts, note and next fire times (local time)."""


class RecentTable(FittedTable):
    COLUMNS = (("fire", "Fire time", 15), ("run", "Run", None), ("status", "Status", 12))
    MIN_FLEX = 8


def spec_text(schedule: dict[str, Any]) -> str:
    """``cron 30 2 * * * Europe/Berlin`` or ``every 30s`` (an interval has no zone)."""
    spec = schedule.get("spec") or {}
    if "cron" in spec:
        tz = str(schedule.get("tz") or "UTC")
        return f"cron {spec['cron']}" + ("" if tz == "UTC" else f" {tz}")
    if "every" in spec:
        return f"every {spec['every']}"
    return ", ".join(f"{k} {v}" for k, v in spec.items())


def next_text(schedule: dict[str, Any], now: float) -> str:
    """The countdown to the next fire: 'in 42s', 'due now', 'paused' or 'never'."""
    if schedule.get("paused"):
        return "paused"
    due = schedule.get("next_due")
    if due is None:
        return "never"
    left = float(due) - now
    return f"in {short_span(left)}" if left >= 1 else "due now"


def status_text(status: str | None, colours: dict[str, str]) -> Text:
    """A run status with its symbol and colour ('' when there is none)."""
    if not status:
        return Text("")
    symbol, label, var = STATUS_LOOK.get(status, ("?", status, "text-secondary"))
    return Text(f"{symbol} {label}", style=colours.get(var, ""), overflow="ellipsis",
                no_wrap=True)


def last_text(schedule: dict[str, Any], colours: dict[str, str]) -> Text:
    """The newest action: its status symbol and run id."""
    recent = schedule.get("recent") or []
    if not recent:
        return Text("none yet", style=colours.get("text-muted", ""))
    first = recent[0]
    symbol, _label, var = STATUS_LOOK.get(str(first.get("status")),
                                          ("?", "", "text-secondary"))
    return Text(f"{symbol} {first.get('id')}", style=colours.get(var, ""),
                overflow="ellipsis", no_wrap=True)


def counts_text(schedule: dict[str, Any]) -> str:
    """fired/skipped/missed, e.g. ``12/1/0``."""
    counts = schedule.get("counts") or {}
    return (f"{counts.get('fired', 0)}/{counts.get('skipped', 0)}/"
            f"{counts.get('missed', 0)}")


def state_text(schedule: dict[str, Any], colours: dict[str, str]) -> Text:
    """'active', or '⏸ paused' with its note."""
    if not schedule.get("paused"):
        return Text("active")
    note = schedule.get("note")
    return Text("⏸ paused" + (f": {note}" if note else ""),
                style=colours.get("text-accent", ""), overflow="ellipsis", no_wrap=True)


def schedule_action(engine: Engine, name: str, sid: str, note: str | None = None,
                    span: tuple[str, str] | None = None) -> tuple[bool, str]:
    """Pause, unpause, trigger, backfill (over ``span``: start and end) or delete schedule
    ``sid``; (ok, what happened). Engine errors propagate (the app shows them)."""
    if name == "pause":
        engine.pause_schedule(sid, note or None)
        return True, f"paused schedule {sid}" + (f" ({note})" if note else "")
    if name == "unpause":
        engine.unpause_schedule(sid)
        return True, f"unpaused schedule {sid}"
    if name == "trigger":
        outcome = engine.trigger_schedule(sid)
        said = {"started": "started a run", "skipped": "skipped (its last run is open)",
                "buffered": "buffered (runs after its open run)",
                "exists": "this instant already has its run"}.get(outcome, outcome)
        return outcome in ("started", "buffered"), f"triggered schedule {sid}: {said}"
    if name == "backfill" and span is not None:
        tally = engine.backfill_schedule(sid, *span)
        fires = sum(tally.values())
        said = ", ".join(f"{n} {what}" for what, n in tally.items() if n) or "none"
        return True, (f"backfilled schedule {sid}: {fires} fire time(s) in the range"
                      + (f" ({said})" if fires else ""))
    if name == "delete":
        engine.delete_schedule(sid)
        return True, f"deleted schedule {sid}; the runs it started go on"
    raise ValueError(f"unknown schedule action {name!r}")


def detail_text(schedule: dict[str, Any], now: float) -> Content:
    """The detail pane's left side: when, overlap, counts, the note, then the next fires
    in local time."""
    counts = schedule.get("counts") or {}
    lines = [Content.assemble((spec_text(schedule), "bold")),
             Content(f"overlap {schedule.get('overlap')}"),
             Content(f"fired {counts.get('fired', 0)}, skipped {counts.get('skipped', 0)}, "
                     f"missed {counts.get('missed', 0)}")]
    if schedule.get("paused"):
        lines.append(Content.styled("⏸ paused" + (f": {schedule['note']}"
                                                   if schedule.get("note") else ""),
                                    "$text-accent"))
    elif schedule.get("note"):
        lines.append(Content.styled(str(schedule["note"]), "$text-muted"))
    lines.append(Content.styled("Next fires", "bold $text-primary"))
    fires = [clock_time(t, now) for t in schedule.get("next_fires") or []]
    if schedule.get("paused"):
        fires = [f"{t} (if unpaused)" for t in fires]
    lines += [Content(f"  {t}") for t in fires] or [Content("  none")]
    return Content("\n").join(lines)


class SchedulesScreen(LiveScreen):
    """Every schedule on the database, with the selected one's next fires and actions."""

    BINDINGS = [
        Binding("p", "pause_schedule", "Pause", tooltip="with an optional note",
                id="schedules.pause"),
        Binding("u", "unpause_schedule", "Unpause", id="schedules.unpause"),
        Binding("t", "trigger_schedule", "Trigger now", id="schedules.trigger"),
        Binding("b", "backfill_schedule", "Backfill", tooltip="fire the times in a range",
                id="schedules.backfill"),
        Binding("d", "delete_schedule", "Delete", id="schedules.delete"),
        Binding("o", "open_run", "Open run", tooltip="or enter on a recent action",
                id="schedules.open_run"),
    ]
    AUTO_FOCUS = "SchedulesTable"

    def __init__(self) -> None:
        super().__init__(id="schedules")
        self.members: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield PulseHeader(id="pulse")
        yield CodeBanner(id="code-banner")
        yield Static("", id="schedules-summary")
        yield SchedulesTable(id="schedules-table")
        with Horizontal(id="schedule-detail"):
            yield NextFires("", id="next-fires")
            yield RecentTable(id="recent-table")
        yield FitFooter()

    def on_mount(self) -> None:
        self.sub_title = "Schedules"
        self.query_one(NextFires).border_title = "Schedule"
        self.query_one(RecentTable).border_title = "Recent actions"
        self.query_one(SchedulesTable).focus()

    def fetch(self, params: dict[str, Any]) -> Any:
        return self.engine.schedules()

    def show(self, data: Any) -> None:
        self.members = list(data)
        self._fill()
        paused = sum(1 for s in self.members if s.get("paused"))
        summary = Content.assemble((f"{len(self.members)} schedule(s)", "bold"),
                                   f", {paused} paused")
        if not self.members:
            summary += Content.styled(
                "  None yet: `onward schedule create` makes one.", "$text-muted")
        self.query_one("#schedules-summary", Static).update(summary)
        self._show_selected()

    def _fill(self) -> None:
        colours = self.colours()
        now = self.now()
        rows = []
        for s in self.members:
            rows.append((str(s["id"]), {
                "id": Text(str(s["id"]), style="bold", overflow="ellipsis", no_wrap=True),
                "workflow": Text(str(s.get("workflow")), overflow="ellipsis", no_wrap=True),
                "spec": Text(spec_text(s), overflow="ellipsis", no_wrap=True),
                "overlap": Text(str(s.get("overlap")), overflow="ellipsis", no_wrap=True),
                "state": state_text(s, colours),
                "next": Text(next_text(s, now)),
                "last": last_text(s, colours),
                "counts": Text(counts_text(s), justify="right")}))
        self.query_one(SchedulesTable).set_cells(rows)

    def tick(self) -> None:
        """Move the countdowns on (no store read)."""
        if self.members:
            self._fill()

    def current(self) -> dict[str, Any] | None:
        """The selected schedule (None when there is none)."""
        row = self.query_one(SchedulesTable).cursor_row
        return self.members[row] if self.members and 0 <= row < len(self.members) else None

    @on(DataTable.RowHighlighted, "#schedules-table")
    def _show_selected(self) -> None:
        fires = self.query_one(NextFires)
        recent = self.query_one(RecentTable)
        schedule = self.current()
        if schedule is None:
            fires.border_title = "Schedule"
            fires.update("")
            recent.set_rows([])
            return
        now = self.now()
        fires.border_title = str(schedule["id"])
        fires.update(detail_text(schedule, now))
        colours = self.colours()
        recent.border_title = f"Recent actions of {schedule['id']}"
        recent.set_rows([(f"{a.get('run_id')}", [
            Text(clock_time(a.get("fire_time"), now)),
            Text(str(a.get("id")), overflow="ellipsis", no_wrap=True),
            status_text(a.get("status"), colours)])
            for a in schedule.get("recent") or []])

    @on(DataTable.RowSelected, "#recent-table")
    def _recent_selected(self) -> None:
        self.action_open_run()

    @on(DataTable.RowSelected, "#schedules-table")
    def _schedule_selected(self) -> None:
        self.query_one(RecentTable).focus()

    # -- actions ----------------------------------------------------------------------------
    def action_open_run(self) -> None:
        """Open the run of the selected recent action (the newest, from the schedules
        table)."""
        schedule = self.current()
        recent = (schedule or {}).get("recent") or []
        if not recent:
            self.notify("The selected schedule has no recent action.", severity="warning")
            return
        table = self.query_one(RecentTable)
        row = table.cursor_row if table.has_focus else 0
        action = recent[min(max(row, 0), len(recent) - 1)]
        self.post_message(OpenRun(str(action.get("run_id") or action["id"])))

    def _selected_id(self) -> str | None:
        schedule = self.current()
        if schedule is None:
            self.notify("No schedule selected.", severity="warning")
            return None
        return str(schedule["id"])

    def action_pause_schedule(self) -> None:
        """Ask for an optional note, then pause the selected schedule."""
        sid = self._selected_id()
        if sid is None:
            return

        def answered(answer: dict[str, Any] | None) -> None:
            if answer is not None:
                self.act("pause", sid, (answer.get("reason") or "").strip() or None)
        self.app.push_screen(ConfirmModal(
            f"Pause schedule {sid}?",
            "It fires no more until unpaused; fires that fall in the pause are not made "
            "up. Runs it started go on.", confirm=f"Pause {short(sid)}", reason="",
            reason_label="Note (optional, shown with the schedule)"), answered)

    def action_unpause_schedule(self) -> None:
        """Let the selected schedule fire again, from its next fire time after now."""
        sid = self._selected_id()
        if sid is not None:
            self.act("unpause", sid)

    def action_trigger_schedule(self) -> None:
        """Fire the selected schedule now, under its overlap policy."""
        sid = self._selected_id()
        if sid is not None:
            self.act("trigger", sid)

    def action_backfill_schedule(self) -> None:
        """Ask for a range (the last hour to start with), then fire the selected schedule
        for each of its fire times in it."""
        sid = self._selected_id()
        if sid is None:
            return
        end = datetime.fromtimestamp(self.now()).astimezone().replace(second=0, microsecond=0)

        def answered(answer: dict[str, Any] | None) -> None:
            if answer is not None:
                self.act("backfill", sid, span=(answer["start"], answer["end"]))
        engine = self.onward.engine

        def preview(start: datetime, until: datetime) -> dict[str, Any]:
            return engine.backfill_preview(sid, start, until)
        self.app.push_screen(BackfillModal(sid, end - timedelta(hours=1), end, preview),
                             answered)

    def action_delete_schedule(self) -> None:
        """Delete the selected schedule, once confirmed ("Keep" has the focus)."""
        sid = self._selected_id()
        if sid is None:
            return

        def answered(answer: dict[str, Any] | None) -> None:
            if answer is not None:
                self.act("delete", sid)
        self.app.push_screen(ConfirmModal(
            f"Delete schedule {sid}?",
            "It is removed and never fires again (pause it instead to keep it). The runs it "
            "started go on.", confirm=f"Delete {short(sid)}", danger=True), answered)

    def act(self, name: str, sid: str, note: str | None = None,
            span: tuple[str, str] | None = None) -> None:
        """Run a schedule action in a thread owned by the app; a toast reports it."""
        app = self.onward
        engine = app.engine

        def job() -> None:
            ok, text = schedule_action(engine, name, sid, note, span)
            app.post_message(OperationDone(f"{name} schedule", [(sid, ok, text)]))

        app.run_worker(job, name=f"{name} schedule {sid}", group="operations",
                       thread=True, exit_on_error=False)
