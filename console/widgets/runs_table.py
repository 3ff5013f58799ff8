"""The runs table: rows keyed by workflow id, updated in place when the order is unchanged;
a selection (space) for bulk actions; relative times and countdowns that tick."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from .fitted_table import Column, FittedTable
from .format import ago, next_due_text, relative_times
from .status import status_text

COLUMNS: tuple[Column, ...] = (
    ("id", "ID", 22),
    ("workflow", "Workflow", 14),
    ("status", "Status", 12),
    ("step", "Current step", None),
    ("started", "Started", 8),
    ("updated", "Changed", 8),
    ("next", "Next", 14),
)
NARROW: tuple[Column, ...] = (  # below WIDE_FROM cells: what an operator needs first
    ("id", "ID", 18),
    ("status", "Status", 11),
    ("step", "Current step", None),
    ("updated", "Changed", 8),
    ("next", "Next", 14),
)
WIDE_FROM = 110
NEAR_END = 20  # rows from the end at which more rows are asked for
MARK = "✓ "  # before the id of a selected run


class RunsTable(FittedTable):
    """Shows pages of ``Engine.list`` rows; asks for more as the cursor nears the end."""

    BINDINGS = [  # rows matter more than columns here: home/end go to the first/last row
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    class NearEnd(Message):
        """The cursor is within a few rows of the last loaded row."""

    class SelectionChanged(Message):
        """Runs were selected or unselected (space)."""

    COLUMNS = COLUMNS

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ids: list[str] = []
        self._rows: dict[str, dict[str, Any]] = {}
        self._colours: dict[str, str] = {}
        self._now = 0.0
        self.selected: set[str] = set()  # workflow ids chosen with space
        self.due: dict[str, dict[str, str | None]] = {}  # run_id -> next retry/deadline

    def fit_columns(self) -> bool:
        self.COLUMNS = COLUMNS if self.size.width >= WIDE_FROM else NARROW  # type: ignore[misc]
        return super().fit_columns()

    def refill(self) -> None:
        if self._ids:
            rows = [self._rows[i] for i in self._ids]
            self._ids = []
            self.show_runs(rows, self._colours, self._now)

    # -- rows ------------------------------------------------------------------------------
    def _cell(self, key: str, run: dict[str, Any]) -> Any:
        ident = str(run["id"])
        if key == "id":
            text = Text(overflow="ellipsis", no_wrap=True, end="")
            if ident in self.selected:
                text.append(MARK, style="bold reverse")
            text.append(ident, style="bold")
            return text
        if key == "status":
            return status_text(run, self._colours)
        if key in ("started", "updated"):
            return Text(ago(run.get(key), self._now), end="")
        if key == "next":
            return Text(next_due_text(run, self.due.get(str(run.get("run_id"))), self._now),
                        overflow="ellipsis", no_wrap=True, end="")
        if key == "step":
            return Text(relative_times(str(run.get("step") or ""), self._now),
                        overflow="ellipsis", no_wrap=True, end="")
        return Text(str(run.get(key) or ""), overflow="ellipsis", no_wrap=True, end="")

    def _cells(self, run: dict[str, Any]) -> list[Any]:
        return [self._cell(key, run) for key, _, _ in self.COLUMNS]

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
                    for (key, _, _), cell in zip(self.COLUMNS, self._cells(fresh[ident]),
                                                 strict=True):
                        self.update_cell(ident, key, cell)
            self._rows = fresh
            return
        current = self.current_id()
        index = self.cursor_row
        self.clear()
        self._rows = fresh
        self._ids = ids
        if self.selected - set(ids):  # selected runs no longer listed are let go
            self.selected &= set(ids)
            self.post_message(self.SelectionChanged())
        for run in rows:
            self.add_row(*self._cells(run), key=str(run["id"]))
        if current in fresh:
            self.move_cursor(row=ids.index(current), animate=False, scroll=False)
        elif ids:
            self.move_cursor(row=min(index, len(ids) - 1), animate=False, scroll=False)

    def refresh_times(self, now: float) -> None:
        """Re-render the relative times and countdowns whose text changed (no store call;
        most change once a minute, so a tick touches few cells)."""
        self._now = now
        keys = [key for key, _, _ in self.COLUMNS
                if key in ("step", "started", "updated", "next")]
        for ident in self._ids:
            run = self._rows[ident]
            for key in keys:
                if key == "step" and "T" not in str(run.get("step") or ""):
                    continue  # no time in it to say again
                cell = self._cell(key, run)
                if str(self.get_cell(ident, key)) != str(cell):
                    self.update_cell(ident, key, cell)

    # -- selection -------------------------------------------------------------------------
    def toggle_selected(self) -> None:
        """Select the highlighted run, or unselect it if it was selected."""
        ident = self.current_id()
        if ident is None:
            return
        self.selected ^= {ident}
        self.update_cell(ident, "id", self._cell("id", self._rows[ident]))
        self.post_message(self.SelectionChanged())

    def clear_selection(self) -> None:
        """Unselect every run."""
        chosen, self.selected = self.selected, set()
        for ident in chosen & set(self._ids):
            self.update_cell(ident, "id", self._cell("id", self._rows[ident]))
        self.post_message(self.SelectionChanged())

    def selected_runs(self) -> list[dict[str, Any]]:
        """The selected runs, in table order."""
        return [self._rows[i] for i in self._ids if i in self.selected]

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
