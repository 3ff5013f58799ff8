"""The Onward console: the App (bindings, screen switching, background plumbing) and
``run_console``, which ``onward console`` calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from onward import CodeWatcher, Engine, OnwardError, watch_code
from onward import Worker as EngineWorker

from .commands import ConsoleCommands
from .demo import seed_demo
from .gc_pacing import GcPacer
from .messages import CodeChanged, OpenRun, OperationDone, StoreChanged
from .operations import load_history, start_args
from .screens.help import HelpScreen
from .screens.live import LiveScreen
from .screens.modals import ResultsModal, StartModal
from .screens.providers import ProvidersScreen
from .screens.run_detail import RunDetailScreen
from .screens.runs import RunsScreen
from .screens.schedules import SchedulesScreen
from .screens.tasks import TasksScreen
from .screens.workers import WorkersScreen
from .widgets.pulse import PERIOD, Pulse, PulseFeed

POLL_INTERVAL = 0.25  # seconds between change-token checks
GC_TICK = 1.0  # seconds between checks for a quiet moment to collect garbage in
ERROR_REPEAT = 10.0  # seconds before the same background error is shown again
ONLINE_ACTIONS = {"show_runs", "show_tasks", "show_providers", "show_workers",
                  "show_schedules", "start_workflow"}


class OnwardApp(App[int]):
    """Runs, run details, the tasks inbox and providers, over one ``Engine``."""

    # Every stylesheet is listed here: Textual does not load the CSS_PATH of the screen
    # that get_default_screen() returns (the offline detail screen).
    CSS_PATH = ["app.tcss", "screens/runs.tcss", "screens/run_detail.tcss",
                "screens/tasks.tcss", "screens/providers.tcss", "screens/modals.tcss",
                "screens/workers.tcss", "screens/schedules.tcss"]
    TITLE = "Onward"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    MODES = {"runs": RunsScreen, "tasks": TasksScreen, "providers": ProvidersScreen,
             "workers": WorkersScreen, "schedules": SchedulesScreen}
    DEFAULT_MODE = "runs"
    BINDINGS = [
        Binding("1", "show_runs", "Runs", id="app.runs"),
        Binding("2", "show_tasks", "Tasks", id="app.tasks"),
        Binding("3", "show_providers", "Code", id="app.providers"),
        Binding("4", "show_workers", "Workers", id="app.workers"),
        Binding("5", "show_schedules", "Schedules", id="app.schedules"),
        Binding("n", "start_workflow", "New run", id="app.start"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
        Binding("ctrl+t", "toggle_theme", "Light/dark theme", show=False, id="app.theme"),
        Binding("q", "quit", "Quit", show=False, id="app.quit"),
    ]

    refused_reloads: reactive[dict[str, str]] = reactive(dict, always_update=True)
    """Code reloads refused and not yet resolved (source → why): every screen shows them
    in a banner until the source loads again."""
    pulse: reactive[Pulse] = reactive(Pulse)
    """Steps/s and failures/min: the live header of every screen draws them."""

    def __init__(self, engine: Engine, *, worker: bool = True, demo: bool = False,
                 history_file: str | Path | None = None,
                 clock: Callable[[], float] | None = None, watch: bool | None = None,
                 concurrency: int = 8, pace_gc: bool = False) -> None:
        self.offline = load_history(history_file) if history_file else None
        if self.offline is not None:
            # An exported history is the whole app: start in a mode with no screen of its
            # own, so get_default_screen() supplies the read-only detail screen and no
            # screen that reads the store is ever created.
            self.DEFAULT_MODE = "offline"  # type: ignore[misc]
        super().__init__()
        self.engine = engine
        self.clock = clock or engine.clock
        self.with_worker = worker and self.offline is None
        self.watch_code = (self.with_worker if watch is None else watch) and \
            self.offline is None
        self.demo = demo and self.offline is None
        self.concurrency = concurrency
        self.notices: list[tuple[str, str]] = []  # (severity, message) of every toast
        self.engine_worker: EngineWorker | None = None
        self.code_watcher: CodeWatcher | None = None
        self._stop = threading.Event()
        self._lifecycle = threading.Lock()
        self._last_error: tuple[str, float] = ("", 0.0)
        self.ready = threading.Event()  # set once demo, worker and watcher are in place
        self._detail: RunDetailScreen | None = None  # the kept run detail screen (open_run)
        self._last_refusal = ""  # why the last reload was refused (shown while it stands)
        # Full garbage-collection passes between key presses: only for a process the
        # console owns (``onward console``), as it changes the collector's thresholds.
        self.gc_pacer = GcPacer() if pace_gc else None

    def now(self) -> float:
        """The console's notion of now (fixed in snapshot tests)."""
        return float(self.clock())

    def get_default_screen(self) -> Screen[Any]:
        return RunDetailScreen(offline=self.offline)

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        self.notices.append((str(severity), message))
        super().notify(message, title=title, severity=severity, timeout=timeout,
                       markup=markup)

    # -- background plumbing --------------------------------------------------------------
    def on_mount(self) -> None:
        if self.gc_pacer is not None:
            self.set_interval(GC_TICK, self._pace_gc)
        if self.offline is not None:
            self.ready.set()
            return
        self._boot()
        self._poll()
        feed = PulseFeed(self)
        self.set_interval(PERIOD, feed.tick)
        feed.tick()

    @work(thread=True, exclusive=True, exit_on_error=False, group="boot")
    def _boot(self) -> None:
        """Seed the demo, start the in-process worker and the code watcher (all may block)."""
        try:
            if self.with_worker:
                with self._lifecycle:
                    if self._stop.is_set():
                        return
                    self.engine_worker = self.engine.start_worker(
                        concurrency=self.concurrency)
            if self.demo:
                started = seed_demo(self.engine, live=self.with_worker)
                if started:
                    self.notify(f"Demo: started {', '.join(started)}. The bank is down "
                                "(delete onward-data/bank.outage to end it) and the "
                                "printer is jammed (see the tasks inbox).", title="Demo",
                                markup=False, timeout=12)
            if self.watch_code:
                watcher = watch_code(self.engine, self.engine_worker, notify=self._code_notice)
                with self._lifecycle:
                    self.code_watcher = watcher
                    if self._stop.is_set():
                        self._stop_background()
        finally:
            self.ready.set()

    def _pace_gc(self) -> None:
        """Once the console is up, freeze what it built; then collect between key presses."""
        pacer = self.gc_pacer
        if pacer is None:
            return
        if pacer.started:
            pacer.tick()
        elif self.ready.is_set():
            pacer.start()

    async def on_event(self, event: events.Event) -> None:
        if self.gc_pacer is not None and isinstance(event, events.InputEvent):
            self.gc_pacer.input_seen()
        await super().on_event(event)

    def _code_notice(self, message: str, ok: bool) -> None:
        """Called by the watcher from its own thread (maybe after the app has gone)."""
        if not self._stop.is_set():
            self.post_message(CodeChanged(message, ok))

    @work(thread=True, exclusive=True, exit_on_error=False, group="poll")
    def _poll(self) -> None:
        """Post StoreChanged whenever the store's change token moves."""
        worker = get_current_worker()
        last: Any = object()
        failing = False
        while not (self._stop.is_set() or worker.is_cancelled):
            try:
                token = self.engine.change_token()
            except Exception as err:  # noqa: BLE001 - keep polling; say it once
                if not failing:
                    self.notify(f"Cannot read the database: {err}", severity="error",
                                markup=False)
                failing = True
                self._stop.wait(1.0)
                continue
            failing = False
            if token != last:
                last = token
                self.post_message(StoreChanged(token))
            self._stop.wait(POLL_INTERVAL)

    def on_store_changed(self, message: StoreChanged) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, LiveScreen):
                screen.post_message(StoreChanged(message.token))

    def on_code_changed(self, message: CodeChanged) -> None:
        self.notify(message.message, title="Code reloaded" if message.ok else "Reload failed",
                    severity="information" if message.ok else "error", markup=False)
        if not message.ok:
            self._last_refusal = message.message
        self._check_code()

    @work(thread=True, exclusive=True, exit_on_error=False, group="code-check")
    def _check_code(self) -> None:
        """After a reload or a refusal: which sources are not running what is on disk."""
        refused = {}
        for drift in self.engine.code_drift():
            refused[str(drift["source"])] = (
                f"{self._last_refusal or 'not reloaded yet'} (on disk: version "
                f"{drift['on_disk']}; running: version {drift['loaded']})")
        for provider in self.engine.providers():
            if provider.get("error"):
                refused[f"provider {provider.get('name')}"] = str(provider["error"])
        self.call_from_thread(setattr, self, "refused_reloads", refused)
        for screen in self.screen_stack:
            if isinstance(screen, ProvidersScreen):
                screen.reload()

    def _stop_background(self) -> None:
        """Stop the watcher and the worker (call with the lifecycle lock held)."""
        if self.code_watcher is not None:
            self.code_watcher.stop()
            self.code_watcher = None
        if self.engine_worker is not None:
            self.engine.stop_worker(self.engine_worker, grace=5.0)
            self.engine_worker = None

    def on_unmount(self) -> None:
        if self.gc_pacer is not None:
            self.gc_pacer.stop()
        self._stop.set()
        with self._lifecycle:
            self._stop_background()

    # -- results of background work -------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place where errors of any thread worker become visible."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        known = isinstance(error, OnwardError)
        text = str(error) if known else f"{type(error).__name__}: {error}"
        now = time.monotonic()
        if text == self._last_error[0] and now - self._last_error[1] < ERROR_REPEAT:
            return  # a failing live reload would otherwise toast four times a second
        self._last_error = (text, now)
        self.notify(text, title="Not done" if known else "Unexpected error", severity="error",
                    markup=False)

    def on_operation_done(self, message: OperationDone) -> None:
        if message.bulk:
            self.push_screen(ResultsModal(f"{message.operation.capitalize()}: results",
                                          message.results))
            return
        for _ident, ok, text in message.results:
            self.notify(text, title="Done" if ok else "Not done",
                        severity="information" if ok else "error", markup=False)

    def on_open_run(self, message: OpenRun) -> None:
        # One detail screen is kept (installed, so popping it does not remove it) and swapped
        # to the run asked for: composing, styling and laying a new one out cost ~400 ms.
        # A run opened from a detail screen already on a stack (a related run) gets a new
        # screen on top, so escape goes back to the run it was opened from.
        kept = self._detail
        if kept is None:
            kept = self._detail = RunDetailScreen(message.ident)
            self.install_screen(kept, name="detail")
        elif any(kept in stack for stack in self._screen_stacks.values()):
            self.push_screen(RunDetailScreen(message.ident, id=None))  # ids are unique
            return
        else:
            kept.open_run(message.ident)  # pushes itself once the run is read: one paint
            return
        self.push_screen(kept)

    # -- actions --------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.offline is not None and action in ONLINE_ACTIONS:
            return False
        return True

    def action_show_runs(self) -> None:
        self.switch_mode("runs")

    def action_show_tasks(self) -> None:
        self.switch_mode("tasks")

    def action_show_providers(self) -> None:
        self.switch_mode("providers")

    def action_show_workers(self) -> None:
        self.switch_mode("workers")

    def action_show_schedules(self) -> None:
        self.switch_mode("schedules")

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen([
            ("Everywhere", self.BINDINGS), ("Runs", RunsScreen.BINDINGS),
            ("Run detail", RunDetailScreen.BINDINGS), ("Tasks", TasksScreen.BINDINGS),
            ("Workers", WorkersScreen.BINDINGS), ("Schedules", SchedulesScreen.BINDINGS),
        ]))

    def action_start_workflow(self, workflow: str | None = None, input_text: str = "",
                              again: str | None = None) -> None:
        """Open the start dialog (prefilled to run an existing run's input again)."""
        if self.offline is None:
            self._open_start(workflow, input_text, again)

    @work(thread=True, exclusive=True, exit_on_error=False, group="start-form")
    def _open_start(self, workflow: str | None, input_text: str, again: str | None) -> None:
        types = list(self.engine.workflow_types())
        self.call_from_thread(self._show_start, types, workflow, input_text, again)

    def _show_start(self, types: list[str], workflow: str | None, input_text: str,
                    again: str | None) -> None:
        title = (f"Run {again} again: same workflow and input, new id" if again
                 else "Start a workflow")
        self.push_screen(StartModal(types, workflow=workflow, input_text=input_text,
                                    title=title), self._start_answered)

    def _start_answered(self, answer: dict[str, Any] | None) -> None:
        if answer is not None:
            self._start_run(answer["workflow"], start_args(answer["input"]), answer["id"])

    @work(thread=True, exit_on_error=False, group="operations")
    def _start_run(self, workflow: str, args: list[Any], ident: str | None) -> None:
        handle = self.engine.start(workflow, *args, id=ident)
        if handle.created:
            self.notify(f"Started {workflow} as {handle.id}", title="Started", markup=False)
        else:
            self.notify(f"{handle.id} already exists and an id runs once: nothing new was "
                        "started", title="Not started", severity="warning", markup=False)


def run_console(engine: Engine, args: Any) -> int:
    """Run the console for ``onward console`` (args: no_worker, demo, history, concurrency)."""
    app = OnwardApp(engine, worker=not getattr(args, "no_worker", False),
                    demo=bool(getattr(args, "demo", False)),
                    history_file=getattr(args, "history", None),
                    concurrency=int(getattr(args, "concurrency", 8) or 8), pace_gc=True)
    app.run()
    return int(app.return_code or 0)
