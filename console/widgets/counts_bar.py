"""The one-line summary of runs per status and per operator filter, clickable to filter."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from .status import filter_content

OPEN_PART = ("running", "stuck", "retrying", "paused", "waiting", "overdue")
CLOSED_PART = ("completed", "failed", "canceled", "terminated", "continued_as_new")
ALWAYS = ("running", "completed", "failed")  # shown even at zero; the rest only when > 0


class CountsBar(Static):
    """``● running 3  ⚠ stuck 1 … │ ✓ completed 9  ✗ failed 2 …``; click an entry to filter.

    Entries with nothing in them are left out (except running, completed and failed), so
    the bar fits one line and what needs attention stands out."""

    @dataclass
    class Selected(Message):
        """An entry was clicked: show only runs with this status or filter."""

        name: str

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._spans: list[tuple[int, int, str]] = []  # (start, end, name) in cells

    def show_counts(self, counts: dict[str, int], active: str | None) -> None:
        parts: list[Content] = []
        self._spans = []
        x = 0
        for name in (*OPEN_PART, "|", *CLOSED_PART):
            if name == "|":
                parts.append(Content.styled("│", "$text-muted"))
                x += 2
                continue
            count = counts.get(name, 0)
            if count or name in ALWAYS or name == active:
                part = filter_content(name, count, active=active == name)
                parts.append(part)
                self._spans.append((x, x + part.cell_length, name))
                x += part.cell_length + 1
        total = sum(counts.get(name, 0) for name in CLOSED_PART) + counts.get("running", 0)
        parts.append(Content.styled(f"  {total} runs", "$text-muted"))
        self.update(Content(" ").join(parts))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        for start, end, name in self._spans:
            if start <= offset.x < end:
                self.post_message(self.Selected(name))
                return
