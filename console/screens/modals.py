"""Dialogs: confirmations, forms with JSON validation, and bulk results."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from onward import OnwardError

from ..widgets.fitted_table import FittedTable
from ..widgets.format import pretty_json
from ..widgets.json_editor import JsonEditor
from ..widgets.json_view import JsonView
from ..widgets.status import theme_colours


class Dialog(ModalScreen[Any]):
    """A centred dialog box; escape cancels (dismisses with None)."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]
    FIT: str | None = None
    """The part that scrolls in the height the rest leaves, so the buttons stay on screen
    however small the terminal (None: the dialog is small enough as it is)."""
    SHORT = 30  # rows below which dialogs tighten their spacing (the -short class)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_resize(self) -> None:
        short = self.size.height < self.SHORT
        self.set_class(short, "-short")
        for field in self.query("Input, Select, Checkbox"):
            field.compact = short  # type: ignore[attr-defined]
        if self.FIT is not None:
            self.call_after_refresh(self.fit)

    def fit(self) -> None:
        """Give the ``FIT`` part the rows the others leave in the dialog."""
        if self.FIT is None:
            return
        part = self.query_one(self.FIT)
        box = self.query_one(".dialog")
        others = sum(child.outer_size.height + child.styles.margin.height
                     for child in box.children if child is not part and child.display)
        room = (int(self.size.height * 0.95) - box.styles.gutter.height - others
                - part.styles.margin.height)
        part.styles.max_height = max(2, room)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)


class ConfirmModal(Dialog):
    """Ask before doing something. Returns {"reason": ...} (None when not asked for).

    A dangerous action starts with the safe button focused, so a stray enter keeps
    everything as it is. ``reason_required`` refuses an empty reason; ``type_to_confirm``
    asks the operator to type that text (the number of runs a bulk action touches).
    """

    BINDINGS = [Binding("ctrl+s", "confirm", "Confirm", id="dialog.confirm")]

    def __init__(self, title: str, body: str | Content, *, confirm: str = "Confirm",
                 keep: str = "Keep", danger: bool = False, reason: str | None = None,
                 reason_label: str = "Reason", reason_required: bool = False,
                 type_to_confirm: str | None = None) -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._confirm = confirm
        self._keep = keep
        self._danger = danger
        self._reason = reason
        self._reason_label = reason_label
        self._reason_required = reason_required
        self._type_to_confirm = type_to_confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -danger" if self._danger else "dialog"):
            yield Label(self._title, classes="dialog-title", markup=False)
            yield Static(self._body, classes="dialog-body", markup=False)
            if self._reason is not None:
                label = self._reason_label + (" (required)" if self._reason_required else "")
                yield Label(label, classes="field-label", markup=False)
                yield Input(self._reason, placeholder=self._reason_label.lower(), id="reason")
            if self._type_to_confirm is not None:
                yield Label(f"Type {self._type_to_confirm} to confirm", classes="field-label",
                            markup=False)
                yield Input(placeholder=self._type_to_confirm, id="typed")
            yield Static("", classes="dialog-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(self._confirm, variant="error" if self._danger else "primary",
                             id="confirm")
                yield Button(self._keep, id="cancel")

    def on_mount(self) -> None:
        if self._danger:
            self.query_one("#cancel", Button).focus()
        elif self._reason is not None:
            self.query_one("#reason", Input).focus()
        else:
            self.query_one("#confirm", Button).focus()

    def refusal(self) -> tuple[str, str] | None:
        """Why the action cannot go ahead yet, and the field to fix; None when it can."""
        if self._reason is not None and self._reason_required and \
                not self.query_one("#reason", Input).value.strip():
            return "Give a reason: it is recorded in the history.", "#reason"
        if self._type_to_confirm is not None and \
                self.query_one("#typed", Input).value.strip() != self._type_to_confirm:
            return f"Type {self._type_to_confirm} to confirm.", "#typed"
        return None

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#reason")
    @on(Input.Submitted, "#typed")
    def action_confirm(self) -> None:
        refused = self.refusal()
        if refused is not None:
            message, field = refused
            self.query_one(".dialog-error", Static).update(message)
            self.query_one(field, Input).focus()
            return
        reason = self.query_one("#reason", Input).value if self._reason is not None else None
        self.dismiss({"reason": reason})


class RepairModal(Dialog):
    """Confirm a retry or reset from its plan (``Engine.repair_plan``): the cut, the events
    kept and discarded, and the completed activities among the discarded, which the new
    run would do again. Discarding those needs the checkbox ticked; "Keep" has focus.

    A reset's cut point can be changed in the dialog: ``replan(seq)`` (called in a thread)
    fetches the plan for it and the preview follows. Returns {"seq": the cut,
    "discard_completed": bool, "consented": [seq of each completed one shown]}.
    """

    BINDINGS = [Binding("ctrl+s", "confirm", "Confirm", id="dialog.repair")]
    FIT = "#plan-preview"
    SHOWN = 12  # discarded events listed before "and N more"

    def __init__(self, plan: dict[str, Any], explain: str,
                 replan: Callable[[int], dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.plan = plan
        self._explain = explain
        self._replan = replan if plan["action"] == "reset" else None
        self.completed = list(plan.get("discarded_completed") or [])
        self._problem = ""  # why the typed cut has no plan ("" when it has one)

    def compose(self) -> ComposeResult:
        plan = self.plan
        verb = "Retry" if plan["action"] == "retry" else "Reset"
        ident = str(plan["id"])
        with Vertical(classes="dialog -wide -danger -repair"):
            yield Label(self._title(), classes="dialog-title", markup=False, id="repair-title")
            yield Static(self._explain, classes="dialog-body", markup=False)
            if self._replan is not None:
                with Horizontal(id="cut-row"):
                    yield Label("Cut after event ", classes="field-label")
                    yield Input(str(plan["cut"]), type="integer", compact=True, id="cut-seq")
                    yield Label(" (the events up to it are kept)", classes="field-label")
            with VerticalScroll(id="plan-preview"):
                yield Static(self._cut_summary(), id="cut")
                yield Static(self._completed_warning(), id="completed")
            yield Checkbox(self._consent_label(), compact=True, id="consent")
            yield Static("", classes="dialog-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{verb} {ident}", variant="error", id="confirm")
                yield Button("Keep", id="cancel")

    def _title(self) -> str:
        ident = str(self.plan["id"])
        if self.plan["action"] == "retry":
            return f"Retry {ident}?"
        return f"Reset {ident} to event {self.plan['cut']}?"

    def _consent_label(self) -> str:
        count = len(self.completed)
        return (f"Discard {count} completed activit{'y' if count == 1 else 'ies'}: the new "
                f"run does {'it' if count == 1 else 'them'} again")

    def _cut_summary(self) -> Content:
        plan = self.plan
        discarded = list(plan.get("discarded") or [])
        completed = {c["seq"] for c in self.completed}
        lines = [Content.assemble(
            "Keeps events 1–", (str(plan["cut"]), "bold"), f" ({plan['kept']} events); ",
            (f"discards {len(discarded)} event" + ("" if len(discarded) == 1 else "s"),
             "bold"), ":" if discarded else " (nothing after the cut).")]
        for event in discarded[:self.SHOWN]:
            flagged = event["seq"] in completed
            lines.append(Content.assemble(
                (f"  {event['seq']:>4}  {event['type']}", "$text-error bold" if flagged
                 else "$text-muted"),
                ("   ← completed: it really happened" if flagged else "", "$text-error")))
        if len(discarded) > self.SHOWN:
            lines.append(Content.styled(f"  … and {len(discarded) - self.SHOWN} more",
                                        "$text-muted"))
        return Content("\n").join(lines)

    def _completed_warning(self) -> Content:
        if not self.completed:
            return Content("")
        lines = [Content.styled(
            f"{len(self.completed)} completed activit"
            f"{'y' if len(self.completed) == 1 else 'ies'} would be discarded: their effects "
            "really happened (a payment, a refund…) and the new run does them again.",
            "$text-error bold")]
        for c in self.completed:
            result = json.dumps(c.get("result"), ensure_ascii=False, default=str)
            if len(result) > 60:
                result = result[:59] + "…"
            lines.append(Content.assemble(("  ✗ ", "$text-error"), (str(c["name"]), "bold"),
                                          f" (event {c['seq']}) → {result}"))
        return Content("\n").join(lines)

    def on_mount(self) -> None:
        self._show_plan()
        self.query_one("#cancel", Button).focus()

    def _show_plan(self) -> None:
        """Put the current plan on screen (after a new cut was planned)."""
        self.query_one("#repair-title", Label).update(self._title())
        self.query_one("#cut", Static).update(self._cut_summary())
        warning = self.query_one("#completed", Static)
        warning.update(self._completed_warning())
        warning.display = bool(self.completed)
        consent = self.query_one("#consent", Checkbox)
        consent.label = self._consent_label()
        consent.value = False  # consent is for the activities listed, so asked again
        consent.display = bool(self.completed)
        self.query_one(".dialog-error", Static).update(self._problem)
        self.call_after_refresh(self.fit)

    @on(Input.Changed, "#cut-seq")
    def _cut_typed(self, event: Input.Changed) -> None:
        try:
            seq = int(event.value)
        except ValueError:
            self._problem = "The cut is an event number."
            self.query_one(".dialog-error", Static).update(self._problem)
            return
        if seq != self.plan["cut"] or self._problem:
            self._plan_cut(seq)

    @work(thread=True, exclusive=True, exit_on_error=False, group="replan")
    def _plan_cut(self, seq: int) -> None:
        assert self._replan is not None
        try:
            plan, problem = self._replan(seq), ""
        except OnwardError as err:
            plan, problem = None, str(err)
        self.app.call_from_thread(self._planned, seq, plan, problem)

    def _planned(self, seq: int, plan: dict[str, Any] | None, problem: str) -> None:
        if self.query_one("#cut-seq", Input).value.strip() != str(seq):
            return  # typed on since: a newer plan is on its way
        self._problem = problem
        if plan is not None:
            self.plan = plan
            self.completed = list(plan.get("discarded_completed") or [])
        self._show_plan()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        error = self.query_one(".dialog-error", Static)
        if self._problem:
            error.update(f"{self._problem} Choose another event, or press Keep.")
            self.query_one("#cut-seq", Input).focus()
            return
        consent = bool(self.completed) and self.query_one("#consent", Checkbox).value
        if self.completed and not consent:
            error.update("Tick the box to discard the completed activities, or press Keep.")
            self.query_one("#consent", Checkbox).focus()
            return
        self.dismiss({"seq": self.plan["cut"], "discard_completed": consent,
                      "consented": [c["seq"] for c in self.completed]})


class HandlerNames(Static):
    """The handler names a run's code knows, loaded in a thread when the dialog opens (a
    replay of the run); "loading…" until then."""

    def __init__(self, load: Callable[[], list[str]] | None, what: str, **kw: Any) -> None:
        super().__init__("loading handler names…" if load else "", markup=False, **kw)
        self._load = load
        self._what = what
        self.names: list[str] = []

    def on_mount(self) -> None:
        if self._load is not None:
            self.run_worker(self._fetch, thread=True, exit_on_error=False)

    def _fetch(self) -> None:
        assert self._load is not None
        try:
            names = self._load()
            text = (f"{self._what}: {', '.join(names)}" if names
                    else f"the run's code declares no {self._what}")
        except Exception as err:  # noqa: BLE001 - shown, not raised: typing still works
            names, text = [], f"handler names unknown: {err}"
        self.app.call_from_thread(self._show, names, text)

    def _show(self, names: list[str], text: str) -> None:
        self.names = names
        self.update(text)
        self.post_message(self.Loaded(names))

    class Loaded(Message):
        """The names arrived."""

        def __init__(self, names: list[str]) -> None:
            super().__init__()
            self.names = names


class SignalModal(Dialog):
    """Send a signal: a name (the run's known signal names are listed and suggested) and a
    JSON payload (validated). Returns {"name", "payload"}."""

    BINDINGS = [Binding("ctrl+s", "send", "Send", id="dialog.send")]

    def __init__(self, ident: str, names: Callable[[], list[str]] | None = None) -> None:
        super().__init__()
        self._ident = ident
        self._names = names

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Signal {self._ident}", classes="dialog-title", markup=False)
            yield Label("Signal name", classes="field-label")
            yield Input(placeholder="e.g. approve", id="name")
            yield HandlerNames(self._names, "signal handlers", classes="field-note")
            yield Label("Payload (JSON; empty sends null)", classes="field-label")
            yield JsonEditor("", empty_note="empty: the payload is null", id="payload")
            yield Static("", classes="dialog-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Send", variant="primary", id="send")
                yield Button("Cancel", id="cancel")

    @on(HandlerNames.Loaded)
    def _suggest(self, event: HandlerNames.Loaded) -> None:
        self.query_one("#name", Input).suggester = SuggestFromList(event.names)

    @on(Input.Submitted, "#name")
    def _name_done(self) -> None:
        self.query_one(JsonEditor).focus_editor()

    @on(Button.Pressed, "#send")
    def action_send(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        ok, payload = self.query_one(JsonEditor).parsed()
        error = self.query_one(".dialog-error", Static)
        if not name:
            error.update("A signal needs a name.")
            self.query_one("#name", Input).focus()
            return
        if not ok:
            error.update(f"The payload is not valid JSON: {payload}")
            self.query_one(JsonEditor).focus_editor()
            return
        self.dismiss({"name": name, "payload": payload})


class HandlerModal(Dialog):
    """Ask a query or an update: the run's handler names to choose from and a JSON list of
    arguments. Returns {"name", "args"}; the result is reported when it comes back."""

    BINDINGS = [Binding("ctrl+s", "ask", "Ask", id="dialog.ask")]

    def __init__(self, ident: str, kind: str, names: Callable[[], list[str]]) -> None:
        super().__init__()
        self._ident = ident
        self._kind = kind
        self._names = names

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"{self._kind.title()} {self._ident}", classes="dialog-title",
                        markup=False)
            yield Label(f"{self._kind.title()} handler", classes="field-label")
            yield Select([], prompt="loading…", id="name")
            yield HandlerNames(self._names, f"{self._kind} handlers", classes="field-note")
            yield Label("Arguments (a JSON list; empty: none)", classes="field-label")
            yield JsonEditor("", empty_note="empty: no arguments", id="args")
            yield Static("", classes="dialog-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(self._kind.title(), variant="primary", id="ask")
                yield Button("Cancel", id="cancel")

    @on(HandlerNames.Loaded)
    def _offer(self, event: HandlerNames.Loaded) -> None:
        select = self.query_one("#name", Select)
        select.set_options([(name, name) for name in event.names])
        select.prompt = f"choose a {self._kind}" if event.names else f"no {self._kind} handlers"
        if len(event.names) == 1:
            select.value = event.names[0]
        select.focus()

    @on(Button.Pressed, "#ask")
    def action_ask(self) -> None:
        select = self.query_one("#name", Select)
        ok, args = self.query_one(JsonEditor).parsed()
        error = self.query_one(".dialog-error", Static)
        if select.value is Select.NULL:
            error.update(f"Choose a {self._kind} handler.")
            select.focus()
            return
        if not ok or not isinstance(args, list | type(None)):
            error.update("The arguments must be a JSON list." if ok
                         else f"The arguments are not valid JSON: {args}")
            self.query_one(JsonEditor).focus_editor()
            return
        self.dismiss({"name": str(select.value), "args": args or []})


class StartModal(Dialog):
    """Start a workflow: type, JSON input (a list = positional args), optional id."""

    BINDINGS = [Binding("ctrl+s", "start", "Start", id="dialog.start")]

    def __init__(self, workflow_types: list[str], *, workflow: str | None = None,
                 input_text: str = "", ident: str = "", title: str = "Start a workflow"
                 ) -> None:
        super().__init__()
        self._types = workflow_types
        self._workflow = workflow if workflow in workflow_types else None
        self._input = input_text
        self._ident = ident
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Label(self._title, classes="dialog-title", markup=False)
            yield Label("Workflow", classes="field-label")
            yield Select([(t, t) for t in self._types], prompt="choose a workflow type",
                         value=self._workflow or Select.NULL, id="workflow")
            yield Label("Input (JSON: a list gives positional arguments, anything else is "
                        "one argument; empty: none)", classes="field-label")
            yield JsonEditor(self._input, empty_note="empty: the workflow gets no arguments",
                             id="input")
            yield Label("Workflow id (optional; an id runs once)", classes="field-label")
            yield Input(self._ident, placeholder="generated when empty", id="ident")
            yield Static("", classes="dialog-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Start", variant="primary", id="start")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if not self._types:
            self.query_one(".dialog-error", Static).update(
                "No workflow types are registered: pass --flows or --plugins with workflows.")
        if self._workflow:
            self.query_one(JsonEditor).focus_editor()
        else:
            self.query_one("#workflow", Select).focus()

    @on(Button.Pressed, "#start")
    @on(Input.Submitted, "#ident")
    def action_start(self) -> None:
        workflow = self.query_one("#workflow", Select).value
        ok, value = self.query_one(JsonEditor).parsed()
        error = self.query_one(".dialog-error", Static)
        if workflow is Select.NULL or not isinstance(workflow, str):
            error.update("Choose a workflow type.")
            self.query_one("#workflow", Select).focus()
            return
        if not ok:
            error.update(f"The input is not valid JSON: {value}")
            self.query_one(JsonEditor).focus_editor()
            return
        ident = self.query_one("#ident", Input).value.strip() or None
        self.dismiss({"workflow": workflow, "input": value, "id": ident})


class CompleteTaskModal(Dialog):
    """Complete a manual task with a JSON result (validated). Returns {"result": value}."""

    BINDINGS = [Binding("ctrl+s", "complete", "Complete", id="dialog.complete")]
    FIT = "#task-body"

    def __init__(self, task: dict[str, Any], *, default: str = "true") -> None:
        super().__init__()
        self.task_info = task
        self._default = default

    def compose(self) -> ComposeResult:
        task = self.task_info
        who = f" for {task['assignee']}" if task.get("assignee") else ""
        with Vertical(classes="dialog -wide"):
            yield Label(f"Complete {task.get('kind')}{who} ({task.get('id')})",
                        classes="dialog-title", markup=False)
            with VerticalScroll(id="task-body"):
                if task.get("instructions"):
                    yield Static(str(task["instructions"]), classes="dialog-body",
                                 markup=False)
                yield Label("Task data", classes="field-label")
                yield Static(pretty_json(task.get("data")), classes="task-data", markup=False)
            yield Label("Result (JSON; the workflow receives it; ctrl+s completes)",
                        classes="field-label")
            yield JsonEditor(self._default, allow_empty=False, id="result")
            yield Static("", classes="dialog-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Complete", variant="success", id="complete")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(JsonEditor).focus_editor()

    @on(Button.Pressed, "#complete")
    def action_complete(self) -> None:
        ok, value = self.query_one(JsonEditor).parsed()
        if not ok:
            self.query_one(".dialog-error", Static).update(
                f"Not completed: the result is not valid JSON ({value}).")
            return
        self.dismiss({"result": value})


class AnswerModal(Dialog):
    """A query's or update's whole answer as JSON (the toast holds one line of it)."""

    BINDINGS = [Binding("enter", "cancel", "Close", id="dialog.close_answer")]

    def __init__(self, title: str, value: Any) -> None:
        super().__init__()
        self._title = title
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Label(self._title, classes="dialog-title", markup=False)
            yield JsonView(self.value, id="answer")
            with Horizontal(classes="buttons"):
                yield Button("Close", variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()


class ResultsTable(FittedTable):
    COLUMNS = (("id", "Run", 24), ("ok", "Outcome", 9), ("message", "Message", None))


class ResultsModal(Dialog):
    """What a bulk action did to each run: id → ok or error."""

    BINDINGS = [Binding("enter", "cancel", "Close", id="dialog.close")]

    def __init__(self, title: str, results: list[tuple[str, bool, str]]) -> None:
        super().__init__()
        self._title = title
        self._results = results

    def compose(self) -> ComposeResult:
        ok = sum(1 for _, good, _ in self._results if good)
        with Vertical(classes="dialog -wide -tall"):
            yield Label(self._title, classes="dialog-title", markup=False)
            yield Static(Content.assemble(
                (f"{ok} ok", "$text-success bold"), ", ",
                (f"{len(self._results) - ok} failed", "$text-error bold" if ok <
                 len(self._results) else "bold"),
                f" of {len(self._results)}"), classes="dialog-body")
            yield ResultsTable(id="results")
            with Horizontal(classes="buttons"):
                yield Button("Close", variant="primary", id="cancel")

    def on_mount(self) -> None:
        table = self.query_one(ResultsTable)
        colours = theme_colours(self.app)
        rows = []
        for ident, good, message in self._results:
            outcome = (Text("✓ ok", style=colours["text-success"]) if good else
                       Text("✗ error", style=colours["text-error"]))
            rows.append((None, [Text(ident, overflow="ellipsis", no_wrap=True), outcome,
                                Text(message, overflow="ellipsis", no_wrap=True)]))
        table.set_rows(rows)
        table.focus()


def local_instant(text: str) -> datetime | None:
    """An ISO-8601 time typed by the operator: with an offset as given, without one in
    the local time zone (as the console shows times). None when it is not a time."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.astimezone()


def shown_time(iso_text: str) -> str:
    """A fire time (ISO, UTC) as the dialog shows it: local, minutes, and seconds only
    when it has some."""
    moment = datetime.fromisoformat(iso_text.replace("Z", "+00:00")).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


def fire_times_text(found: dict[str, Any]) -> str:
    """One line for what ``Engine.backfill_preview`` found: how many fire times the range
    covers, from the first to the last."""
    count = int(found["count"])
    if found.get("more"):
        return (f"More than {count - 1:,} fire times from {shown_time(found['first'])}: "
                "too many for one backfill; shorten the range.")
    if count == 0:
        return "No fire times in this range: the backfill would fire nothing."
    if count == 1:
        return f"1 fire time: {shown_time(found['first'])}."
    return (f"{count:,} fire times from {shown_time(found['first'])} to "
            f"{shown_time(found['last'])}.")


class BackfillModal(Dialog):
    """Backfill a schedule: fire it for each of its fire times in [start, end). Times are
    ISO-8601, local unless they carry an offset. Returns {"start", "end"} as aware ISO
    strings. With ``preview`` (the engine's ``backfill_preview`` for this schedule), a
    line under the range says how many fire times it covers, read in a thread as the
    range is typed."""

    BINDINGS = [Binding("ctrl+s", "backfill", "Backfill", id="dialog.backfill")]

    def __init__(self, sid: str, start: datetime, end: datetime,
                 preview: Callable[[datetime, datetime], dict[str, Any]] | None = None
                 ) -> None:
        super().__init__()
        self._sid = sid
        self._start = start
        self._end = end
        self._preview = preview
        self.previewed: tuple[datetime, datetime] | None = None
        """The range the preview line describes (tests wait for it)."""

    def compose(self) -> ComposeResult:
        shown = "%Y-%m-%d %H:%M"
        with Vertical(classes="dialog"):
            yield Label(f"Backfill schedule {self._sid}", classes="dialog-title",
                        markup=False)
            yield Static("Fire it once for each of its fire times from the start up to (not "
                         "including) the end, oldest first, under its overlap policy. Times "
                         "that already ran are not run again.", classes="dialog-body",
                         markup=False)
            yield Label("Start (local time, or with an offset such as Z)",
                        classes="field-label")
            yield Input(self._start.strftime(shown), id="start")
            yield Label("End", classes="field-label")
            yield Input(self._end.strftime(shown), id="end")
            yield Static("", id="fire-times", classes="field-note", markup=False)
            yield Static("", classes="dialog-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Backfill", variant="primary", id="backfill")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#start", Input).focus()
        self._range_typed()

    def _range(self) -> tuple[dict[str, datetime], str, str]:
        """The typed range, or the field at fault and a one-line error."""
        times: dict[str, datetime] = {}
        for field in ("start", "end"):
            moment = local_instant(self.query_one(f"#{field}", Input).value)
            if moment is None:
                return times, field, (f"The {field} is not a time: write it as 2026-03-02 "
                                      "09:30 (local) or 2026-03-02T09:30Z.")
            times[field] = moment
        if times["end"] <= times["start"]:
            return times, "end", "The end must be later than the start."
        return times, "", ""

    @on(Input.Changed, "#start")
    @on(Input.Changed, "#end")
    def _range_typed(self) -> None:
        times, _, problem = self._range()
        self.query_one(".dialog-error", Static).update(problem)
        if problem:
            self.query_one("#fire-times", Static).update("")
        elif self._preview is not None:
            self._count_fire_times(times["start"], times["end"])

    @work(thread=True, exclusive=True, exit_on_error=False, group="fire-times")
    def _count_fire_times(self, start: datetime, end: datetime) -> None:
        assert self._preview is not None
        try:
            text = fire_times_text(self._preview(start, end))
        except OnwardError as err:
            text = str(err).splitlines()[0]
        self.app.call_from_thread(self._counted, start, end, text)

    def _counted(self, start: datetime, end: datetime, text: str) -> None:
        if not self.is_attached:
            return  # the dialog closed meanwhile
        times, _, problem = self._range()
        if problem or (times["start"], times["end"]) != (start, end):
            return  # typed on since: a newer count is on its way (or none is needed)
        self.query_one("#fire-times", Static).update(text)
        self.previewed = (start, end)

    @on(Input.Submitted, "#start")
    def _start_done(self) -> None:
        self.query_one("#end", Input).focus()

    @on(Button.Pressed, "#backfill")
    @on(Input.Submitted, "#end")
    def action_backfill(self) -> None:
        times, field, problem = self._range()
        if problem:
            self.query_one(".dialog-error", Static).update(problem)
            self.query_one(f"#{field}", Input).focus()
            return
        self.dismiss({k: v.isoformat() for k, v in times.items()})
