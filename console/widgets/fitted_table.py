"""A DataTable with fixed-width columns and one flexible column that takes the rest."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

Column = tuple[str, str, int | None]  # key, label, width (None: the flexible column)



def flex_width(widths: list[int | None], available: int, minimum: int) -> int:
    """The flexible column's width (the one of ``widths`` that is None): what ``available``
    cells leave after the fixed columns, each cell padded by one either side, and two cells
    kept for the vertical scrollbar; at least ``minimum``."""
    fixed = sum(w for w in widths if w) + 2 * len(widths) + 2
    return max(minimum, available - fixed)

class FittedTable(DataTable[Any]):
    """Long cells are cut with an ellipsis instead of pushing columns off screen.

    Subclasses set ``COLUMNS``. Rows given to ``set_rows`` are kept so they can be laid
    out again when the table is resized; subclasses that manage rows themselves override
    ``refill``.
    """

    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    BINDINGS: ClassVar[list[BindingType]] = [  # vim keys beside the arrows, home and end
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "vim_edge('g')", "First row", show=False),
        Binding("G", "vim_edge('G')", "Last row", show=False),
    ]
    MIN_FLEX = 12

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self._flex_width = -1
        self._kept: list[tuple[str | None, Sequence[Any]]] = []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # g and G yield to a screen that binds them itself (run detail: g is Signal).
        if action == "vim_edge" and parameters and any(
                isinstance(b, Binding) and str(parameters[0]) in b.key.split(",")
                for b in self.screen.BINDINGS):
            return False
        return super().check_action(action, parameters)

    def action_vim_edge(self, key: str) -> None:
        """g: the first row; G: the last row."""
        if key == "g":
            self.action_scroll_top()
        else:
            self.action_scroll_bottom()

    def fit_columns(self) -> bool:
        """(Re)create the columns for the current width; True if they changed."""
        flex = flex_width([w for _, _, w in self.COLUMNS], self.size.width, self.MIN_FLEX)
        if flex == self._flex_width and self.columns:
            return False
        self._flex_width = flex
        self.clear(columns=True)
        for key, label, width in self.COLUMNS:
            self.add_column(label, key=key, width=width or flex)
        return True

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # DataTable measures every cell of every new row to size auto-width columns; ours
        # all have fixed widths, so with one-line, unlabelled rows only the scrollable size
        # changes. Refilling 200 runs (or 1,000 events) skips 1,400 (5,000) measurements.
        keys = list(new_rows)
        rows = [self.rows.get(key) for key in keys]
        if any(c.auto_width for c in self.columns.values()) or any(
                row is not None and (row.label is not None or row.auto_height)
                for row in rows):
            super()._update_dimensions(keys)
            return
        width = sum(c.get_render_width(self) for c in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width + self._row_label_column_width,
                                 self._total_row_height + header)

    def on_resize(self, event: events.Resize) -> None:
        if self.fit_columns():
            self.refill()

    def refill(self) -> None:
        """Lay the kept rows out again after the columns changed."""
        self.set_rows(self._kept)

    def set_rows(self, rows: Sequence[tuple[str | None, Sequence[Any]]]) -> None:
        """Replace every row, keeping the cursor on the same key (or index) if possible."""
        if not self.columns:
            self.fit_columns()
        keys = [key for key, _ in rows]
        current = self._kept[self.cursor_row][0] if 0 <= self.cursor_row < len(
            self._kept) else None
        index = self.cursor_row
        self._kept = list(rows)
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if current is not None and current in keys:
            self.move_cursor(row=keys.index(current), animate=False)
        elif rows:
            self.move_cursor(row=min(index, len(rows) - 1), animate=False)
