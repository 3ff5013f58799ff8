"""The live header: the title, then steps/s and failures/min as sparklines.

Fed by ``Engine.recent_steps`` once a second, in a thread, while its screen is the one
shown: the first read covers two minutes, later ones only the last few seconds (merged
into the per-second counts kept here), so a read costs about one second of commits. Steps
are committed events; failures are failed attempts, activities, workflow tasks and runs."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static
from textual.worker import Worker, WorkerState

WINDOW = 60  # seconds each sparkline covers
PERIOD = 1.0  # seconds between reads
OVERLAP = 3  # seconds each later read covers (commits land a little after their time)


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
        self._counts: dict[int, tuple[int, int]] = {}  # epoch second -> (events, failures)

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

    def _read(self) -> dict[str, Any]:
        engine = self.app.engine  # type: ignore[attr-defined]
        result: dict[str, Any] = engine.recent_steps(OVERLAP if self._counts
                                                     else WINDOW + 59)
        return result

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "pulse" or event.state != WorkerState.SUCCESS:
            return
        data = event.worker.result
        if not isinstance(data, dict):
            return
        first = int(data["from"])
        for offset, (n, failed) in enumerate(zip(data["events"], data["failures"],
                                                 strict=True)):
            self._counts[first + offset] = (n, failed)
        last = first + len(data["events"]) - 1
        span = range(last - WINDOW - 58, last + 1)
        self._counts = {s: self._counts[s] for s in span if s in self._counts}
        events = [self._counts.get(s, (0, 0))[0] for s in span]
        failures = [self._counts.get(s, (0, 0))[1] for s in span]
        self.show_rates(*rates(events, failures))
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
