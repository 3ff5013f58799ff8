"""A run's history as a readable timeline: seq, time, delta, type and key attributes."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding

from .fitted_table import Column, FittedTable
from .format import clock_time, describe_event, parse_time, span
from .status import event_type_text

COLUMNS: tuple[Column, ...] = (
    ("seq", "#", 4),
    ("time", "Time", 12),
    ("delta", "Δ", 7),
    ("type", "Event", 22),
    ("details", "Details", None),
)


class Timeline(FittedTable):
    """History events, appended incrementally; follows the tail when the cursor is on it."""

    BINDINGS = [  # rows matter more than columns here: home/end go to the first/last row
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    COLUMNS = COLUMNS

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[dict[str, Any]] = []
        self._colours: dict[str, str] = {}
        self._now = 0.0

    def refill(self) -> None:
        if self.events:
            kept, self.events = self.events, []
            self.add_events(kept, self._colours, self._now)

    def _cells(self, event: dict[str, Any], previous: dict[str, Any] | None) -> list[Any]:
        when = parse_time(event.get("time"))
        before = parse_time(previous.get("time")) if previous else None
        delta = f"+{span(when - before)}" if when is not None and before is not None else ""
        return [
            Text(str(event.get("seq", "")), justify="right", end=""),
            Text(clock_time(event.get("time"), self._now, millis=True), end=""),
            Text(delta, style="dim", end=""),
            event_type_text(str(event.get("type", "")), self._colours),
            Text(describe_event(event, self._now), overflow="ellipsis", no_wrap=True, end=""),
        ]

    def set_events(self, history: list[dict[str, Any]], colours: dict[str, str], now: float
                   ) -> None:
        """Replace the whole timeline (a different run, or a first load)."""
        self.events = []
        self.clear()
        self.add_events(history, colours, now)

    def add_events(self, new: list[dict[str, Any]], colours: dict[str, str], now: float
                   ) -> None:
        """Append events that arrived since the last load."""
        if not self.columns:
            self.fit_columns()
        self._colours, self._now = colours, now
        follow = not self.events or self.cursor_row >= len(self.events) - 1
        for event in new:
            previous = self.events[-1] if self.events else None
            self.add_row(*self._cells(event, previous), key=str(event.get("seq")))
            self.events.append(event)
        if follow and self.events and new:
            self.move_cursor(row=len(self.events) - 1, animate=False)

    @property
    def last_seq(self) -> int:
        return int(self.events[-1].get("seq", 0)) if self.events else 0

    def current_event(self) -> dict[str, Any] | None:
        if not self.events or not 0 <= self.cursor_row < len(self.events):
            return None
        return self.events[self.cursor_row]
