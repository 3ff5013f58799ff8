"""A Gantt-style chart of a run: one lane per activity (each attempt a bar, backoffs dotted),
timer, manual task and child, over the run's time, so an operator sees where it went."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

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
        for char, style in cells:
            out.append(char, style=style)
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


class Gantt(Widget, can_focus=True):
    """The chart of one run's history; redrawn to the width it has."""

    DEFAULT_CSS = "Gantt { height: auto; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps: list[Lane] = []
        self._range = (0.0, 0.0)
        self._colours: dict[str, str] = {}
        self._now = 0.0

    def show_history(self, events: list[dict[str, Any]], colours: dict[str, str],
                     now: float, *, open_run: bool) -> None:
        """Chart ``events``; an open run's chart runs up to ``now``."""
        self.steps = lanes(events)
        times = [t for t in (parse_time(e.get("time")) for e in events) if t is not None]
        start = min(times) if times else now
        end = max(times) if times else now
        if open_run:
            end = max(end, now)
        self._range, self._colours, self._now = (start, end), colours, now
        self.styles.height = len(self.steps) + 2 if self.steps else 1
        self.refresh(layout=True)

    def render(self) -> Text:
        start, end = self._range
        return chart_text(self.steps, start, end, self.size.width, self._colours, self._now)
