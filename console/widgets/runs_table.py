"""The runs table: rows keyed by workflow id, updated in place when the order is unchanged."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from .fitted_table import Column, FittedTable
from .format import ago, clock_time
from .status import status_text

COLUMNS: tuple[Column, ...] = (
    ("id", "ID", 22),
    ("workflow", "Workflow", 14),
    ("status", "Status", 12),
    ("step", "Current step", None),
    ("started", "Started", 15),
    ("updated", "Last change", 11),
)
NEAR_END = 20  # rows from the end at which more rows are asked for


class RunsTable(FittedTable):
    """Shows pages of ``Engine.list`` rows; asks for more as the cursor nears the end."""

    BINDINGS = [  # rows matter more than columns here: home/end go to the first/last row
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    class NearEnd(Message):
        """The cursor is within a few rows of the last loaded row."""

    COLUMNS = COLUMNS

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ids: list[str] = []
        self._rows: dict[str, dict[str, Any]] = {}
        self._colours: dict[str, str] = {}
        self._now = 0.0

    def refill(self) -> None:
        if self._ids:
            rows = [self._rows[i] for i in self._ids]
            self._ids = []
            self.show_runs(rows, self._colours, self._now)

    # -- rows ------------------------------------------------------------------------------
    def _cells(self, run: dict[str, Any]) -> list[Any]:
        step = str(run.get("step") or "")
        return [
            Text(str(run["id"]), style="bold", overflow="ellipsis", no_wrap=True, end=""),
            Text(str(run.get("workflow", "")), overflow="ellipsis", no_wrap=True, end=""),
            status_text(run, self._colours),
            Text(step, overflow="ellipsis", no_wrap=True, end=""),
            Text(clock_time(run.get("started"), self._now), end=""),
            Text(ago(run.get("updated"), self._now), end=""),
        ]

    def show_runs(self, rows: list[dict[str, Any]], colours: dict[str, str], now: float
                  ) -> None:
        """Show these rows, keeping the cursor on the same run where possible."""
        if not self.columns:
            self.fit_columns()
        self._colours, self._now = colours, now
        ids = [str(r["id"]) for r in rows]
        fresh = {str(r["id"]): r for r in rows}
        if ids == self._ids:
            for ident in ids:
                if fresh[ident] != self._rows.get(ident):
                    for (key, _, _), cell in zip(COLUMNS, self._cells(fresh[ident]),
                                                 strict=True):
                        self.update_cell(ident, key, cell)
            self._rows = fresh
            return
        current = self.current_id()
        index = self.cursor_row
        self.clear()
        self._rows = fresh
        self._ids = ids
        for run in rows:
            self.add_row(*self._cells(run), key=str(run["id"]))
        if current in fresh:
            self.move_cursor(row=ids.index(current), animate=False, scroll=False)
        elif ids:
            self.move_cursor(row=min(index, len(ids) - 1), animate=False, scroll=False)

    def refresh_times(self, now: float) -> None:
        """Re-render the relative 'last change' column (no store call)."""
        self._now = now
        for ident in self._ids:
            self.update_cell(ident, "updated", Text(ago(self._rows[ident].get("updated"), now),
                                                    end=""))

    def recolour(self, colours: dict[str, str]) -> None:
        """Re-render status cells after a theme change."""
        self._colours = colours
        for ident in self._ids:
            self.update_cell(ident, "status", status_text(self._rows[ident], colours))

    # -- cursor ----------------------------------------------------------------------------
    def current_id(self) -> str | None:
        if not self._ids or not 0 <= self.cursor_row < len(self._ids):
            return None
        return self._ids[self.cursor_row]

    def current_run(self) -> dict[str, Any] | None:
        ident = self.current_id()
        return self._rows.get(ident) if ident else None

    @property
    def loaded(self) -> int:
        return len(self._ids)

    def on_data_table_row_highlighted(self, event: FittedTable.RowHighlighted) -> None:
        if self._ids and event.cursor_row >= len(self._ids) - NEAR_END:
            self.post_message(self.NearEnd())
