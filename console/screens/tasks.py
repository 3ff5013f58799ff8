"""The inbox of open manual tasks across runs: complete with a JSON result, or fail."""

from __future__ import annotations

import getpass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import DataTable, Input, Select, Static

from ..messages import OpenRun, OperationDone
from ..widgets.code_banner import CodeBanner
from ..widgets.fit_footer import StableFooter
from ..widgets.fitted_table import FittedTable
from ..widgets.format import clock_time, compact_json, countdown
from ..widgets.json_view import JsonView
from ..widgets.pulse import PulseHeader
from .live import LiveScreen
from .modals import CompleteTaskModal, ConfirmModal


class TasksTable(FittedTable):
    """Open tasks; the instructions take the width that is left."""

    COLUMNS = (("kind", "Kind", 10), ("workflow", "Workflow", 13), ("id", "Run", 14),
               ("assignee", "Assignee", 10), ("instructions", "Instructions", None),
               ("data", "Data", 18), ("deadline", "Deadline", 16))


def is_approval(task: dict[str, Any]) -> bool:
    """An approval-shaped task: its kind says approve/approval, so yes/no is the answer."""
    return "approv" in str(task.get("kind", "")).lower()


def task_matches(task: dict[str, Any], *, needle: str = "", assignee: str | None = None,
                 kind: str | None = None, overdue: bool = False) -> bool:
    """Whether ``task`` passes the inbox filters (``assignee`` "anyone" means unassigned)."""
    if overdue and not task.get("overdue"):
        return False
    if kind is not None and task.get("kind") != kind:
        return False
    if assignee is not None and (task.get("assignee") or "anyone") != assignee:
        return False
    if needle:
        text = " ".join(str(task.get(k) or "") for k in (
            "kind", "workflow", "id", "assignee", "instructions", "task_id"))
        text += " " + compact_json(task.get("data"), 10_000)
        return needle.casefold() in text.casefold()
    return True


def operator_name() -> str:
    """Who completes tasks from this console (recorded as ``by``)."""
    try:
        return f"console:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "console"


class TasksScreen(LiveScreen):
    """Open manual tasks, oldest first; overdue ones stand out."""

    BINDINGS = [
        Binding("c", "complete", "Complete", tooltip="or enter", id="tasks.complete"),
        Binding("x", "fail", "Fail", id="tasks.fail"),
        Binding("a", "decide(True)", "Approve", tooltip="approval tasks: approve",
                id="tasks.approve"),
        Binding("r", "decide(False)", "Reject", tooltip="approval tasks: reject with a reason",
                id="tasks.reject"),
        Binding("o", "open_run", "Open run", id="tasks.open_run"),
        Binding("slash", "search", "Search", key_display="/", id="tasks.search"),
    ]
    AUTO_FOCUS = "TasksTable"  # when a dialog on top closes, keys go to the inbox

    def __init__(self) -> None:
        super().__init__(id="tasks")
        self.tasks: list[dict[str, Any]] = []  # the ones shown (after the filters)
        self.all_tasks: list[dict[str, Any]] = []
        self._choices: tuple[list[str], list[str]] = ([], [])

    def compose(self) -> ComposeResult:
        yield PulseHeader(id="pulse")
        yield CodeBanner(id="code-banner")
        yield Static("", id="tasks-summary")
        with Horizontal(id="tasks-bar"):
            yield Input(placeholder="/ search tasks", compact=True, id="tasks-search")
            yield Select[str]([], prompt="any assignee", compact=True, id="tasks-assignee")
            yield Select[str]([], prompt="any kind", compact=True, id="tasks-kind")
            yield Select[str]([("overdue only", "overdue")], prompt="any deadline",
                              compact=True, id="tasks-due")
        yield TasksTable(id="tasks-table")
        with Horizontal(id="task-detail"):
            yield Static("", id="task-instructions", markup=False)
            yield JsonView(empty="no data", id="task-data")
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = "Tasks"
        self.query_one("#task-data", JsonView).border_title = "Task data"
        self.query_one(TasksTable).focus()

    def fetch(self, params: dict[str, Any]) -> Any:
        return self.engine.tasks()

    def show(self, data: Any) -> None:
        self.all_tasks = list(data)
        self._offer_choices()
        self._filter()

    def _offer_choices(self) -> None:
        assignees = sorted({str(t.get("assignee") or "anyone") for t in self.all_tasks})
        kinds = sorted({str(t.get("kind", "")) for t in self.all_tasks})
        if (assignees, kinds) == self._choices:
            return
        self._choices = (assignees, kinds)
        for selector, names in (("#tasks-assignee", assignees), ("#tasks-kind", kinds)):
            select = self.query_one(selector, Select)
            chosen = select.value
            with self.prevent(Select.Changed):
                select.set_options([(name, name) for name in names])
                if chosen in names:
                    select.value = chosen

    def _chosen(self, selector: str) -> str | None:
        value = self.query_one(selector, Select).value
        return None if value is Select.NULL else str(value)

    def _filter(self) -> None:
        now = self.now()
        colours = self.colours()
        self.tasks = [t for t in self.all_tasks if task_matches(
            t, needle=self.query_one("#tasks-search", Input).value.strip(),
            assignee=self._chosen("#tasks-assignee"), kind=self._chosen("#tasks-kind"),
            overdue=self._chosen("#tasks-due") == "overdue")]
        self.query_one(TasksTable).set_rows(
            [(str(t["task_id"]), self._cells(t, now, colours)) for t in self.tasks])
        overdue = sum(1 for t in self.all_tasks if t.get("overdue"))
        summary = Content.assemble((f"{len(self.all_tasks)} open task(s)", "bold"))
        if len(self.tasks) != len(self.all_tasks):
            summary += Content.styled(f", {len(self.tasks)} shown", "bold")
        if overdue:
            summary += Content.assemble("  ", (f"⚑ {overdue} overdue", "$text-error bold"))
        if not self.all_tasks:
            summary += Content.styled("  Nothing waits on a person right now.", "$text-muted")
        elif not self.tasks:
            summary += Content.styled("  No task matches the filters.", "$text-muted")
        self.query_one("#tasks-summary", Static).update(summary)
        self._show_selected()

    @on(Input.Changed, "#tasks-search")
    @on(Select.Changed)
    def _filters_changed(self) -> None:
        self._filter()

    @on(Input.Submitted, "#tasks-search")
    def _search_done(self) -> None:
        self.query_one(TasksTable).focus()

    def action_search(self) -> None:
        self.query_one("#tasks-search", Input).focus()

    def _cells(self, task: dict[str, Any], now: float, colours: dict[str, str]) -> list[Any]:
        overdue = bool(task.get("overdue"))
        deadline_style = f"bold {colours['text-error']}" if overdue else ""
        return [
            Text(str(task.get("kind", "")), style="bold", overflow="ellipsis", no_wrap=True),
            Text(str(task.get("workflow", "")), overflow="ellipsis", no_wrap=True),
            Text(str(task.get("id", "")), overflow="ellipsis", no_wrap=True),
            Text(str(task.get("assignee") or "anyone"), overflow="ellipsis", no_wrap=True),
            Text(str(task.get("instructions") or ""), overflow="ellipsis", no_wrap=True),
            Text(compact_json(task.get("data"), 30), overflow="ellipsis", no_wrap=True),
            Text(("⚑ " if overdue else "") + countdown(task.get("deadline"), now),
                 style=deadline_style),
        ]

    def tick(self) -> None:
        now = self.now()
        colours = self.colours()
        table = self.query_one("#tasks-table", DataTable)
        for task in self.tasks:
            table.update_cell(str(task["task_id"]), "deadline",
                              self._cells(task, now, colours)[-1])

    def _current(self, *, quiet: bool = False) -> dict[str, Any] | None:
        row = self.query_one("#tasks-table", DataTable).cursor_row
        if self.tasks and 0 <= row < len(self.tasks):
            return self.tasks[row]
        if not quiet:
            self.notify("No task selected.", severity="warning")
        return None

    @on(DataTable.RowHighlighted, "#tasks-table")
    def _show_selected(self) -> None:
        task = self._current(quiet=True)
        instructions = self.query_one("#task-instructions", Static)
        data = self.query_one("#task-data", JsonView)
        if task is None:
            instructions.update("")
            data.show(None)
            return
        who = f"for {task['assignee']}" if task.get("assignee") else "for anyone"
        instructions.update(f"{task.get('kind')} {who} — run {task.get('id')} "
                            f"({task.get('workflow')})\n\n{task.get('instructions') or ''}\n\n"
                            f"task {task.get('task_id')}, created "
                            f"{clock_time(task.get('created'), self.now())}")
        data.show(task.get("data"))

    @on(DataTable.RowSelected, "#tasks-table")
    def _row_selected(self) -> None:
        self.action_complete()

    def action_complete(self) -> None:
        task = self._current()
        if task is None:
            return

        def answered(answer: dict[str, Any] | None) -> None:
            if answer is not None:
                self._close_task(task, "complete", answer["result"])

        default = '{"approved": true}' if "approv" in str(task.get("kind")) else "true"
        self.app.push_screen(CompleteTaskModal(task, default=default), answered)

    def action_decide(self, approve: bool) -> None:
        """Approve, or reject with a reason, an approval-shaped task: the workflow gets
        {"approved": true} or {"approved": false, "reason": ...}."""
        task = self._current()
        if task is None:
            return
        if not is_approval(task):
            self.notify(f"A {task.get('kind')} task is not an approval: complete it (c) with "
                        "the result it needs.", severity="warning")
            return

        def answered(answer: dict[str, Any] | None) -> None:
            if answer is None:
                return
            result: dict[str, Any] = {"approved": approve}
            if answer.get("reason"):
                result["reason" if not approve else "comment"] = answer["reason"]
            self._close_task(task, "complete", result)

        what = f"{task.get('kind')} of {task.get('id')}"
        if approve:
            self.app.push_screen(ConfirmModal(
                f"Approve {what}?", f"{task.get('instructions') or ''}\n\nThe workflow gets "
                '{"approved": true}.', confirm="Approve", reason="",
                reason_label="Comment (optional)"), answered)
        else:
            self.app.push_screen(ConfirmModal(
                f"Reject {what}?", f"{task.get('instructions') or ''}\n\nThe workflow gets "
                '{"approved": false} with your reason.', confirm="Reject", danger=True,
                reason="", reason_required=True), answered)

    def action_fail(self) -> None:
        task = self._current()
        if task is None:
            return

        def answered(answer: dict[str, Any] | None) -> None:
            if answer is not None:
                self._close_task(task, "fail", answer.get("reason") or "")

        self.app.push_screen(ConfirmModal(
            f"Fail task {task.get('kind')} of {task.get('id')}?",
            "The workflow sees an ApplicationError with this reason at its manual_task call.",
            confirm="Fail task", danger=True, reason="", reason_label="Reason"), answered)

    def _close_task(self, task: dict[str, Any], how: str, value: Any) -> None:
        app = self.onward
        engine = self.engine
        task_id, ident = str(task["task_id"]), str(task["id"])
        label = f"{task.get('kind')} of {ident}"

        def job() -> None:
            if how == "complete":
                engine.complete_task(task_id, value, by=operator_name())
                message = f"Completed task {label}; the run moves on."
            else:
                engine.fail_task(task_id, value, by=operator_name())
                message = f"Failed task {label}: {value or 'no reason given'}"
            app.post_message(OperationDone(f"{how} task", [(ident, True, message)]))

        app.run_worker(job, name=f"{how} {task_id}", group="operations", thread=True,
                       exit_on_error=False)

    def action_open_run(self) -> None:
        task = self._current()
        if task is not None:
            self.post_message(OpenRun(str(task["id"])))
