"""A Gantt-style chart of a run: one lane per activity (each attempt a bar, backoffs dotted),
timer, manual task and child, over the run's time, so an operator sees where it went."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .format import clock_time, parse_time, span
from .history_model import Lane, lanes

LABEL = 22  # columns for a lane's name
LOOK = {"ok": ("█", "text-success"), "failed": ("█", "text-error"),
        "open": ("▓", "text-primary"), "waiting": ("·", "text-warning")}
KINDS = {"run": "W", "activity": "A", "timer": "T", "task": "M", "child": "C"}


def chart_text(steps: list[Lane], start: float, end: float, width: int,
               colours: dict[str, str], now: float) -> Text:
    """The chart as text ``width`` columns wide: a lane a line, then the time axis."""
    bar_width = max(8, width - LABEL - 3)
    total = max(end - start, 1e-3)

    def column(t: float) -> int:
        return min(bar_width - 1, max(0, int((t - start) / total * bar_width)))

    out = Text(no_wrap=True, overflow="crop")
    if not steps:
        out.append("No activities, timers, tasks or children in this history yet.",
                   style="italic")
        return out
    for lane in steps:
        name = f"{KINDS[lane.kind]} {lane.label}"
        name = name if len(name) <= LABEL else name[:LABEL - 1] + "…"
        out.append(f"{name:<{LABEL}} ", style="bold" if lane.kind == "activity" else "")
        cells: list[tuple[str, str]] = [(" ", "")] * bar_width
        for bar in lane.spans:
            stop = bar.end if bar.end is not None else end
            if bar.start > end:
                continue
            char, colour = LOOK[bar.outcome]
            for i in range(column(bar.start), column(min(stop, end)) + 1):
                if char == "·" and cells[i][0] != " ":
                    continue  # an attempt's own bar wins over the backoff around it
                cells[i] = (char, colours.get(colour, ""))
        start_run = 0
        for i in range(1, bar_width + 1):  # one append per run of equal cells
            if i == bar_width or cells[i] != cells[start_run]:
                char, style = cells[start_run]
                out.append(char * (i - start_run), style=style)
                start_run = i
        out.append("\n")
    left = clock_time(start, now, millis=True)
    right = f"{clock_time(end, now, millis=True)} (+{span(end - start)})"
    gap = max(1, bar_width - len(left) - len(right))
    out.append(" " * (LABEL + 1) + left + " " * gap + right, style="dim")
    out.append("\n" + " " * (LABEL + 1), style="dim")
    for outcome, label in (("ok", "done "), ("failed", "failed "), ("open", "running "),
                           ("waiting", "backoff")):
        char, colour = LOOK[outcome]
        out.append(char * 2, style=colours.get(colour, ""))
        out.append(f" {label} ", style="dim")
    return out


class Gantt(ScrollView, can_focus=True):
    """The chart of one run's history; redrawn to the width it has, and only the lines on
    screen are rendered (a history can have thousands of steps).

    ``show_history`` only notes what to chart: the lanes and lines are worked out when the
    chart is first drawn (or read) after the history changed, so a history that grows while
    another tab is shown costs nothing until the chart is looked at.
    """

    DEFAULT_CSS = "Gantt { height: 1fr; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._events: list[dict[str, Any]] = []
        self._source: tuple[Any, ...] | None = None  # what the chart was last asked to show
        self._steps: list[Lane] | None = None  # lanes of ``_events`` (None: not worked out)
        self._count = 0  # events in ``_events`` when its lanes were last worked out
        self._open_run = False
        self._colours: dict[str, str] = {}
        self._now = 0.0
        self._drawn: tuple[Any, list[Text]] | None = None
        self._strips: dict[int, Strip] = {}

    @property
    def steps(self) -> list[Lane]:
        """The chart's lanes, worked out from the history on first use."""
        if self._steps is None:
            self._steps = lanes(self._events)
        return self._steps

    def show_history(self, events: list[dict[str, Any]], colours: dict[str, str],
                     now: float, *, open_run: bool) -> None:
        """Chart ``events``; an open run's chart runs up to ``now``. Nothing is redrawn
        when the history, colours and (for an open run) time are those already charted."""
        source = (id(events), len(events), events[-1].get("seq") if events else None,
                  tuple(sorted(colours.items())), now if open_run else None)
        if source == self._source:
            return
        self._source = source
        if events is not self._events or len(events) != self._count:
            self._steps = None
        self._events, self._count = events, len(events)
        self._open_run = open_run
        self._colours, self._now = colours, now
        self.refresh()

    def _time_range(self) -> tuple[float, float]:
        times = [t for t in (parse_time(e.get("time")) for e in self._events) if t is not None]
        start = min(times) if times else self._now
        end = max(times) if times else self._now
        if self._open_run:
            end = max(end, self._now)
        return start, end

    def _lines(self) -> list[Text]:
        """The chart's lines for the current width (drawn again only when it changed)."""
        width = self.scrollable_content_region.width or self.size.width
        key = (width, self._source)
        if self._drawn is None or self._drawn[0] != key:
            start, end = self._time_range()
            text = chart_text(self.steps, start, end, width, self._colours, self._now)
            lines = list(text.split("\n"))
            self._drawn = (key, lines)
            self._strips = {}
            self.virtual_size = Size(width, len(lines))
            return lines
        return self._drawn[1]

    def on_resize(self) -> None:
        if self._source is not None:
            self._lines()

    def render_line(self, y: int) -> Strip:
        lines = self._lines()
        index = y + self.scroll_offset.y
        width = self.scrollable_content_region.width
        if not 0 <= index < len(lines):
            return Strip.blank(width)
        strip = self._strips.get(index)
        if strip is None:
            strip = Strip(lines[index].render(self.app.console)).adjust_cell_length(width)
            self._strips[index] = strip
        return strip

    def chart_text(self) -> str:
        """The chart as plain text (tests and copy)."""
        return "\n".join(line.plain for line in self._lines())
