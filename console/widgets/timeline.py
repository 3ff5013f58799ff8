"""A run's history as a readable timeline: seq, time, delta, type and key attributes;
filtered by event type and a search text, and (compact) with each activity folded into
one row.

The timeline is a virtual list (Textual's Line API): it keeps the rows as data and renders
only the lines on screen, when they are drawn. Opening a run, folding and each typed search
letter cost what the visible rows cost, not what every row of a long history costs (a
DataTable added a row object per event each time). It looks like the console's tables: a
header line, zebra stripes, a row cursor.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.constants import DIM_FACTOR
from textual.filter import dim_color
from textual.geometry import Region, Size, Spacing
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .fitted_table import flex_width
from .format import clock_time, describe_event, parse_time, span
from .history_model import Row, event_text, fold_text, matches, rows
from .status import event_type_text

COLUMNS: tuple[tuple[str, int | None], ...] = (
    ("#", 4), ("Time", 12), ("Δ", 7), ("Event", 22), ("Details", None))
"""Label and width of each column (None: the flexible one, which takes the rest)."""
MIN_FLEX = 12
PAD = 1  # blank cells either side of a cell's text
HEADER = Spacing(1, 0, 0, 0)  # the header line stays on top: rows scroll under it


class Timeline(ScrollView, can_focus=True):
    """History events, appended incrementally; follows the tail when the cursor is on it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        # Rows matter more than columns here: home/end go to the first/last row. (g is the
        # run detail screen's Signal key, so only G is the vim edge here.)
        Binding("home,ctrl+home", "scroll_top", "First row", show=False),
        Binding("end,ctrl+end,G", "scroll_bottom", "Last row", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "timeline--header", "timeline--cursor", "timeline--hover", "timeline--even-row",
        "timeline--odd-row"}
    # The look of the console's DataTables (Textual's own DataTable CSS and app.tcss).
    DEFAULT_CSS = """
    Timeline {
        height: 1fr;
        border: round $panel-lighten-2;
        background: $surface;
        color: $foreground;
        &:focus {
            border: round $primary;
            background-tint: $foreground 5%;
            & > .timeline--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .timeline--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark > .timeline--even-row {
            background: $surface-darken-1 40%;
        }
        & > .timeline--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .timeline--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .timeline--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .timeline--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .timeline--hover {
            background: $block-hover-background;
        }
    }
    """

    class RowHighlighted(Message):
        """The cursor moved to another row."""

        def __init__(self, timeline: Timeline, cursor_row: int) -> None:
            super().__init__()
            self.timeline = timeline
            self.cursor_row = cursor_row

        @property
        def control(self) -> Timeline:
            """The timeline (so ``@on(..., "#id")`` can pick it)."""
            return self.timeline

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[dict[str, Any]] = []  # the whole history loaded so far
        self.shown: list[Row] = []  # what the rows show, top to bottom
        self.kind: str | None = None  # only events of this type (None: all)
        self.needle = ""  # only events containing this text
        self.compact = False  # each activity folded into one row
        self.cursor_row = 0
        self._hover: int | None = None  # the row under the mouse
        self._colours: dict[str, str] = {}
        self._now = 0.0
        self._cached: dict[Any, list[Text]] = {}  # seq -> cells of a lone event (not delta)
        self._texts: dict[Any, str] = {}  # seq -> the event's searched text
        self._strips: dict[int, Strip] = {}  # row index -> its line, as last drawn
        self._strips_width = -1  # the width those lines were drawn for

    # -- the rows ------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        """How many rows are shown."""
        return len(self.shown)

    @property
    def filtered(self) -> bool:
        """Whether rows are hidden or folded (then new events rebuild the row list)."""
        return bool(self.kind or self.needle or self.compact)

    def set_view(self, *, kind: str | None = None, needle: str = "", compact: bool = False
                 ) -> None:
        """Show only ``kind`` events containing ``needle``; fold activities if ``compact``.
        The cursor stays on the event it was on when that event is still shown."""
        self.kind, self.needle, self.compact = kind, needle.strip(), compact
        self._rebuild()

    def _rebuild(self, *, follow: bool = False) -> None:
        """Work the rows out again from the events; only the visible ones are drawn."""
        current = None if follow else self.current_event()
        self.shown = rows(self.events, kind=self.kind, needle=self.needle,
                          compact=self.compact, text_of=self._text_of)
        target = len(self.shown) - 1
        if current is not None:
            for index, row in enumerate(self.shown):
                if any(m is current for m in row.folded or [row.event]):
                    target = index
                    break
        self._rows_changed()
        self.move_cursor(row=max(target, 0))

    def set_events(self, history: list[dict[str, Any]], colours: dict[str, str], now: float
                   ) -> None:
        """Replace the whole timeline (a different run, or a first load)."""
        self.events = []
        self._cached = {}
        self._texts = {}
        self.shown = []
        self.cursor_row = 0
        self._rows_changed()
        self.add_events(history, colours, now)

    def add_events(self, new: list[dict[str, Any]], colours: dict[str, str], now: float
                   ) -> None:
        """Append events that arrived since the last load."""
        if colours != self._colours:
            self._cached = {}
            self._strips = {}
        self._colours, self._now = colours, now
        if not new:
            return
        follow = not self.shown or self.cursor_row >= len(self.shown) - 1
        self.events.extend(new)
        if self.filtered:
            self._rebuild(follow=follow)
            return
        self.shown.extend(Row(event) for event in new)
        self._rows_changed()
        if follow:
            self.move_cursor(row=len(self.shown) - 1)

    def _rows_changed(self) -> None:
        """The row list changed: forget drawn lines, size the scroll area, redraw."""
        self._strips = {}
        self._hover = None
        self.virtual_size = Size(self._table_width(), len(self.shown) + 1)
        self.refresh()

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

    def _cells(self, row: Row, previous: dict[str, Any] | None) -> list[Text]:
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

    @property
    def last_seq(self) -> int:
        """The seq of the newest event loaded (0 before any)."""
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

    # -- the cursor ----------------------------------------------------------------------------
    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        """Put the cursor on ``row`` (kept within the rows) and, with ``scroll``, scroll it
        into view; a move to another row posts RowHighlighted."""
        row = max(0, min(row, len(self.shown) - 1))
        old, self.cursor_row = self.cursor_row, row
        if old != row:
            self._redraw_row(old)
            self._redraw_row(row)
            if self.shown:
                self.post_message(self.RowHighlighted(self, row))
        if scroll and self.shown:
            self._scroll_to_cursor(animate)

    def _scroll_to_cursor(self, animate: bool = False) -> None:
        if not self.size:  # not laid out yet: once it is
            self.call_after_refresh(self._scroll_to_cursor)
            return
        self.scroll_to_region(Region(0, self.cursor_row + 1, 1, 1), spacing=HEADER,
                              animate=animate, force=True, x_axis=False)

    def _redraw_row(self, index: int) -> None:
        self._strips.pop(index, None)
        self.refresh_lines(index + 1)

    def _key_move(self, row: int) -> None:
        self._set_hover(None)  # keys take over from the mouse
        self.move_cursor(row=row)

    def action_cursor_up(self) -> None:
        """The row above."""
        self._key_move(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        """The row below."""
        self._key_move(self.cursor_row + 1)

    def action_page_up(self) -> None:
        """A page of rows up."""
        self._key_move(self.cursor_row - self._page())

    def action_page_down(self) -> None:
        """A page of rows down."""
        self._key_move(self.cursor_row + self._page())

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 2)

    def action_scroll_top(self) -> None:
        """The first row."""
        self._key_move(0)

    def action_scroll_bottom(self) -> None:
        """The last row."""
        self._key_move(len(self.shown) - 1)

    # -- the mouse -----------------------------------------------------------------------------
    def _row_at(self, event: events.MouseEvent) -> int | None:
        index = event.y - self.gutter.top - 1 + self.scroll_offset.y
        if event.y - self.gutter.top < 1 or not 0 <= index < len(self.shown):
            return None  # the header, or below the last row
        return index

    async def _on_click(self, event: events.Click) -> None:
        index = self._row_at(event)
        if index is not None:
            self.move_cursor(row=index)
            event.stop()

    def _on_mouse_move(self, event: events.MouseMove) -> None:
        self._set_hover(self._row_at(event))

    def _on_leave(self, event: events.Leave) -> None:
        self._set_hover(None)

    def _set_hover(self, index: int | None) -> None:
        if index != self._hover:
            for old in (self._hover, index):
                if old is not None:
                    self._redraw_row(old)
            self._hover = index

    # -- drawing ---------------------------------------------------------------------------------
    def _widths(self) -> list[int]:
        """Each column's text width for the current width of the widget."""
        flex = flex_width([w for _, w in COLUMNS], self.size.width, MIN_FLEX)
        return [w or flex for _, w in COLUMNS]

    def _table_width(self) -> int:
        return sum(self._widths()) + 2 * PAD * len(COLUMNS)

    def on_resize(self) -> None:
        self.virtual_size = Size(self._table_width(), len(self.shown) + 1)

    def notify_style_update(self) -> None:
        self._strips = {}  # focus, theme: the component styles changed
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width != self._strips_width:
            self._strips, self._strips_width = {}, width
        if y == 0:
            header = self.get_component_rich_style("timeline--header")
            return self._line([Text(label, end="") for label, _ in COLUMNS], header, header,
                              Style(), width)
        index = y - 1 + self.scroll_offset.y
        if not 0 <= index < len(self.shown):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(index)
        if strip is None:
            strip = self._strips[index] = self._row_line(index, width)
        return strip

    def _row_line(self, index: int, width: int) -> Strip:
        style = self.get_component_rich_style
        base = style("timeline--odd-row" if index % 2 else "timeline--even-row")
        marks = Style()
        if index == self._hover:
            marks += style("timeline--hover")
        if index == self.cursor_row:
            marks += style("timeline--cursor")
        previous = self.shown[index - 1].event if index else None
        return self._line(self._cells(self.shown[index], previous), base + marks,
                          base + marks, Style.from_color(marks.color), width)

    def _line(self, cells: list[Text], pre: Style, fill: Style, post: Style, width: int
              ) -> Strip:
        """One line of cells, each padded and cut to its column (as a DataTable draws its
        cells: ``pre`` under each cell's own styles, ``post`` over them), then ``fill``
        to the widget's width."""
        console = self.app.console
        blank = Segment(" " * PAD)
        segments: list[Segment] = []
        for text, cut in zip(cells, self._widths(), strict=True):
            fitted = text.copy()
            fitted.truncate(cut, overflow=text.overflow or "fold")
            if text.justify == "right":
                fitted.pad_left(cut - fitted.cell_len)
            segments.append(blank)
            own = console.get_style(text.style) if text.style else None
            segments.extend(Segment.apply_style(fitted.render(console), own))
            segments.append(Segment(" " * (cut - fitted.cell_len + PAD)))
        segments = [_undim(s) for s in Segment.apply_style(segments, pre, post)]
        used = sum(s.cell_length for s in segments)
        if used < width:
            segments.append(Segment(" " * (width - used), fill))
        return Strip(segments).adjust_cell_length(width, self.rich_style).simplify()


NOT_DIM = Style(dim=False)


def _undim(segment: Segment) -> Segment:
    """``segment`` with a dim style turned into its dimmed colour now (as Textual's dim
    filter would at output): a dim attribute left in a cached line was drawn in either of
    two shades under a dialog's backdrop, depending on when the line was drawn."""
    style = segment.style
    if style is None or not style.dim or style.color is None or style.bgcolor is None:
        return segment
    colour = dim_color(style.bgcolor, style.color, DIM_FACTOR)
    return Segment(segment.text, style + Style.from_color(colour) + NOT_DIM)
