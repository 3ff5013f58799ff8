"""The live header: the title, then steps/s and failures/min as sparklines.

Fed by ``Engine.recent_steps`` (events committed per second over the last two minutes, read
through the runs changed in that window) once a second, in a thread, while its screen is
the one shown. Steps are committed events; failures are failed attempts, activities,
workflow tasks and runs."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static
from textual.worker import Worker, WorkerState

WINDOW = 60  # seconds each sparkline covers
PERIOD = 1.0  # seconds between reads


def rates(events: list[int], failures: list[int], window: int = WINDOW
          ) -> tuple[list[float], list[float]]:
    """Steps per second over the last ``window`` seconds, and failures per minute (a sliding
    60-second sum) at each of those seconds; the inputs are per-second counts, oldest first,
    ``window + 59`` long or shorter."""
    steps = [float(n) for n in events[-window:]]
    per_min = []
    for end in range(max(0, len(failures) - window), len(failures)):
        per_min.append(float(sum(failures[max(0, end - 59):end + 1])))
    return steps, per_min


class PulseHeader(Horizontal):
    """``Onward · Runs   steps/s ▁▃▅█ 12   fail/min ▁▁▂ 3``."""

    DEFAULT_CSS = """
    PulseHeader { height: 1; background: $panel; color: $foreground; }
    PulseHeader #pulse-title { width: 1fr; padding: 0 1; text-style: bold; }
    PulseHeader .pulse-label { width: auto; padding: 0 1 0 2; color: $text-muted; }
    PulseHeader Sparkline { width: 1fr; max-width: 30; min-width: 8; }
    PulseHeader .pulse-value { width: 5; padding: 0 0 0 1; }
    PulseHeader #pulse-steps > .sparkline--max-color { color: $success; }
    PulseHeader #pulse-failures > .sparkline--max-color { color: $error; }
    """

    def __init__(self, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.reads = 0  # finished reads: tests wait on this
        self.steps: list[float] = []
        self.failures: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(self.title, id="pulse-title", markup=False)
        yield Static("steps/s", classes="pulse-label")
        yield Sparkline([0.0], id="pulse-steps")
        yield Static("0", id="pulse-steps-now", classes="pulse-value")
        yield Static("fail/min", classes="pulse-label")
        yield Sparkline([0.0], id="pulse-failures")
        yield Static("0", id="pulse-failures-now", classes="pulse-value")

    def on_mount(self) -> None:
        self.set_interval(PERIOD, self._tick)
        self._tick()

    def _tick(self) -> None:
        if self.screen.is_current and getattr(self.app, "offline", None) is None:
            self.run_worker(self._read, thread=True, exclusive=True, exit_on_error=False,
                            group="pulse")

    def _read(self) -> dict[str, list[int]]:
        engine = self.app.engine  # type: ignore[attr-defined]
        result: dict[str, list[int]] = engine.recent_steps(WINDOW + 59)
        return result

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "pulse" or event.state != WorkerState.SUCCESS:
            return
        data = event.worker.result
        if not isinstance(data, dict):
            return
        self.show_rates(*rates(data["events"], data["failures"]))
        self.reads += 1

    def show_rates(self, steps: list[float], failures: list[float]) -> None:
        """Draw both sparklines and the latest value of each."""
        self.steps, self.failures = steps, failures
        self.query_one("#pulse-steps", Sparkline).data = steps or [0.0]
        self.query_one("#pulse-failures", Sparkline).data = failures or [0.0]
        self.query_one("#pulse-steps-now", Static).update(
            str(int(steps[-1])) if steps else "0")
        self.query_one("#pulse-failures-now", Static).update(
            str(int(failures[-1])) if failures else "0")
