"""A run's history as a readable timeline: seq, time, delta, type and key attributes;
filtered by event type and a search text, and (compact) with each activity folded into
one row."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding

from .fitted_table import Column, FittedTable
from .format import clock_time, describe_event, parse_time, span
from .history_model import Row, event_text, fold_text, matches, rows
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
        self.events: list[dict[str, Any]] = []  # the whole history loaded so far
        self.shown: list[Row] = []  # what the rows show, top to bottom
        self.kind: str | None = None  # only events of this type (None: all)
        self.needle = ""  # only events containing this text
        self.compact = False  # each activity folded into one row
        self._colours: dict[str, str] = {}
        self._now = 0.0
        self._cached: dict[Any, list[Any]] = {}  # seq -> cells of a lone event (not delta)
        self._texts: dict[Any, str] = {}  # seq -> the event's searched text

    @property
    def filtered(self) -> bool:
        """Whether rows are hidden or folded (then new events redraw every row)."""
        return bool(self.kind or self.needle or self.compact)

    def refill(self) -> None:
        self._redraw()

    def set_view(self, *, kind: str | None = None, needle: str = "", compact: bool = False
                 ) -> None:
        """Show only ``kind`` events containing ``needle``; fold activities if ``compact``.
        The cursor stays on the event it was on when that event is still shown."""
        self.kind, self.needle, self.compact = kind, needle.strip(), compact
        self._redraw()

    def _redraw(self, *, follow: bool = False) -> None:
        current = None if follow else self.current_event()
        if not self.columns:
            self.fit_columns()
        self.clear()
        self.shown = rows(self.events, kind=self.kind, needle=self.needle,
                          compact=self.compact, text_of=self._text_of)
        previous: dict[str, Any] | None = None
        target = len(self.shown) - 1
        for index, row in enumerate(self.shown):
            self.add_row(*self._cells(row, previous), key=str(row.event.get("seq")))
            previous = row.event
            members = row.folded or [row.event]
            if current is not None and any(m is current for m in members):
                target = index
        if self.shown:
            self.move_cursor(row=target, animate=False)

    def _text_of(self, event: dict[str, Any]) -> str:
        """The event's searched text, worked out once per event (each typed letter searches
        the whole history again)."""
        seq = event.get("seq")
        if seq is None:
            return event_text(event)
        text = self._texts.get(seq)
        if text is None:
            text = self._texts[seq] = event_text(event)
        return text

    def _cells(self, row: Row, previous: dict[str, Any] | None) -> list[Any]:
        event = row.event
        first = row.folded[0] if row.folded else event
        when = parse_time(first.get("time"))
        before = parse_time(previous.get("time")) if previous else None
        delta = f"+{span(when - before)}" if when is not None and before is not None else ""
        fixed = self._cached.get(event.get("seq")) if not row.folded else None
        if fixed is None:
            if row.folded:
                kind = Text(f"Activity ×{len(row.folded)} events", style="bold", end="")
                details = fold_text(row.folded, self._now)
            else:
                kind = event_type_text(str(event.get("type", "")), self._colours)
                details = describe_event(event, self._now)
            fixed = [Text(str(first.get("seq", "")), justify="right", end=""),
                     Text(clock_time(first.get("time"), self._now, millis=True), end=""),
                     kind, Text(details, overflow="ellipsis", no_wrap=True, end="")]
            if not row.folded:
                self._cached[event.get("seq")] = fixed
        return [fixed[0], fixed[1], Text(delta, style="dim", end=""), fixed[2], fixed[3]]

    def set_events(self, history: list[dict[str, Any]], colours: dict[str, str], now: float
                   ) -> None:
        """Replace the whole timeline (a different run, or a first load)."""
        self.events = []
        self._cached = {}
        self._texts = {}
        self.shown = []
        self.clear()
        self.add_events(history, colours, now)

    def add_events(self, new: list[dict[str, Any]], colours: dict[str, str], now: float
                   ) -> None:
        """Append events that arrived since the last load."""
        if not self.columns:
            self.fit_columns()
        if colours != self._colours:
            self._cached = {}
        self._colours, self._now = colours, now
        follow = not self.shown or self.cursor_row >= len(self.shown) - 1
        if self.filtered:
            self.events.extend(new)
            if new:
                self._redraw(follow=follow)
            return
        for event in new:
            previous = self.events[-1] if self.events else None
            row = Row(event)
            self.add_row(*self._cells(row, previous), key=str(event.get("seq")))
            self.events.append(event)
            self.shown.append(row)
        if follow and self.shown and new:
            self.move_cursor(row=len(self.shown) - 1, animate=False)

    @property
    def last_seq(self) -> int:
        return int(self.events[-1].get("seq", 0)) if self.events else 0

    def current_row(self) -> Row | None:
        """The row under the cursor (an event, or a folded activity)."""
        if not self.shown or not 0 <= self.cursor_row < len(self.shown):
            return None
        return self.shown[self.cursor_row]

    def current_event(self) -> dict[str, Any] | None:
        """The event under the cursor (a folded activity's newest event)."""
        row = self.current_row()
        return row.event if row is not None else None

    def count_matching(self) -> int:
        """How many events pass the type filter and the search."""
        return sum(1 for e in self.events
                   if matches(e, self.kind, self.needle, self._text_of))
