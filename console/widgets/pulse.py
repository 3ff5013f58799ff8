"""The live header on every screen: the screen's title, then steps/s and failures/min as
sparklines.

One ``PulseFeed`` per app reads ``Engine.recent_steps`` once a second in a thread worker:
the first read covers only the last few seconds, so the sparklines show the latest rates
at once; the read after it fills the whole two minutes (over a busy store, a million events
take a few hundred milliseconds to count), and later ones again cover only the last few
seconds (merged into the per-second counts kept here), so a read costs about one second of
commits. Every
``PulseHeader`` (one per screen) draws what the feed publishes as ``app.pulse`` and reads
nothing itself.
Steps are committed events; failures are failed attempts, activities, workflow tasks and
runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

if TYPE_CHECKING:
    from ..app import OnwardApp

WINDOW = 60  # seconds each sparkline covers
SPARK_WIDTHS = (8, 30)  # cells each sparkline takes, at least and at most
FIXED = 31  # cells of the labels and values beside the sparklines
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


@dataclass(frozen=True)
class Pulse:
    """What the headers draw: steps/s and failures/min per second, oldest first, and how
    many reads made them since the whole window was read (0: not yet; ``partial``: only
    the last few seconds are in)."""

    steps: list[float] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)
    reads: int = 0
    partial: bool = False


class PulseFeed:
    """The one data source of every live header: per-second counts merged from reads of
    ``Engine.recent_steps``, published as ``app.pulse`` (a reactive the headers watch)."""

    def __init__(self, app: OnwardApp) -> None:
        self.app = app
        self._counts: dict[int, tuple[int, int]] = {}  # epoch second -> (events, failures)
        self._reads = 0
        self._busy = False
        self._filled = False  # the whole window has been read once

    def tick(self) -> None:
        """Start a read in a thread (called on the UI thread once a PERIOD). One read at a
        time: a tick that comes while the last read still runs is skipped."""
        if not self._busy:
            self._start(OVERLAP)

    def _start(self, seconds: int) -> None:
        self._busy = True
        self.app.run_worker(lambda: self._read(seconds), thread=True, exit_on_error=False,
                            group="pulse", name="live header")

    def _read(self, seconds: int) -> None:
        try:
            data = self.app.engine.recent_steps(seconds)
        except BaseException:
            self._busy = False  # the next tick tries again; the app's handler shows why
            raise
        self.app.call_from_thread(self.merge, data)

    def merge(self, data: dict[str, Any]) -> None:
        """Fold one read's per-second counts in and publish the rates (UI thread); after
        the first (short) read, start the read of the whole window at once."""
        self._busy = False
        filling = len(data["events"]) >= WINDOW + 59
        first = int(data["from"])
        for offset, (n, failed) in enumerate(zip(data["events"], data["failures"],
                                                 strict=True)):
            self._counts[first + offset] = (n, failed)
        last = first + len(data["events"]) - 1
        span = range(last - WINDOW - 58, last + 1)
        self._counts = {s: self._counts[s] for s in span if s in self._counts}
        events = [self._counts.get(s, (0, 0))[0] for s in span]
        failures = [self._counts.get(s, (0, 0))[1] for s in span]
        self._filled = self._filled or filling
        if self._filled:
            self._reads += 1
        steps, per_min = rates(events, failures)
        self.app.pulse = Pulse(steps, per_min, self._reads, partial=not self._filled)
        if not self._filled:
            self._start(WINDOW + 59)


class PulseHeader(Horizontal):
    """``Onward · Runs   steps/s ▁▃▅█ 12   fail/min ▁▁▂ 3``: the title follows the screen's
    sub-title; the sparklines follow ``app.pulse`` (hidden for an offline history)."""

    DEFAULT_CSS = """
    PulseHeader { height: 1; background: $panel; color: $foreground; }
    PulseHeader #pulse-title { width: 1fr; padding: 0 1; text-style: bold;
                               text-wrap: nowrap; text-overflow: ellipsis; }
    PulseHeader .pulse-label { width: auto; padding: 0 1 0 2; color: $text-muted; }
    PulseHeader Sparkline { width: 8; }
    PulseHeader .pulse-value { width: 5; padding: 0 0 0 1; }
    PulseHeader #pulse-steps > .sparkline--max-color { color: $success; }
    PulseHeader #pulse-failures > .sparkline--max-color { color: $error; }
    PulseHeader.-offline .pulse-part { display: none; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown = Pulse()  # what is drawn now: tests read it
        self._title_width = 0

    @property
    def reads(self) -> int:
        """The feed's reads behind what is drawn (0 before the first)."""
        return self.shown.reads

    @property
    def steps(self) -> list[float]:
        return self.shown.steps

    @property
    def failures(self) -> list[float]:
        return self.shown.failures

    def compose(self) -> ComposeResult:
        yield Static(self.app.title, id="pulse-title", markup=False)
        yield Static("steps/s", classes="pulse-label pulse-part")
        yield Sparkline([0.0], id="pulse-steps", classes="pulse-part")
        yield Static("0", id="pulse-steps-now", classes="pulse-value pulse-part")
        yield Static("fail/min", classes="pulse-label pulse-part")
        yield Sparkline([0.0], id="pulse-failures", classes="pulse-part")
        yield Static("0", id="pulse-failures-now", classes="pulse-value pulse-part")

    def on_mount(self) -> None:
        self.set_class(getattr(self.app, "offline", None) is not None, "-offline")
        self.watch(self.screen, "sub_title", self._show_title)
        self.watch(self.app, "pulse", self.show_pulse)

    def _show_title(self, sub_title: str | None) -> None:
        title = str(self.app.title) + (f" · {sub_title}" if sub_title else "")
        self.query_one("#pulse-title", Static).update(title)
        self._title_width = len(title) + 2  # (its padding)
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """The sparklines take what the whole title leaves (within SPARK_WIDTHS); the
        title, cut with an ellipsis only when they are at their narrowest, the rest."""
        room = (self.size.width - FIXED - self._title_width) // 2
        width = max(SPARK_WIDTHS[0], min(SPARK_WIDTHS[1], room))
        for spark in self.query(Sparkline):
            spark.styles.width = width

    def show_pulse(self, pulse: Pulse) -> None:
        """Draw both sparklines and the latest value of each."""
        if pulse is self.shown:
            return
        self.shown = pulse
        self.query_one("#pulse-steps", Sparkline).data = pulse.steps or [0.0]
        self.query_one("#pulse-failures", Sparkline).data = pulse.failures or [0.0]
        self.query_one("#pulse-steps-now", Static).update(
            str(int(pulse.steps[-1])) if pulse.steps else "0")
        self.query_one("#pulse-failures-now", Static).update(
            str(int(pulse.failures[-1])) if pulse.failures else "0")
