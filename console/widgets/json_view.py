"""A scrolling, highlighted view of one JSON value."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.json import JSON
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from .history_model import split_tracebacks


class JsonView(VerticalScroll):
    """Shows a JSON value (or a plain message) and scrolls when it is long."""

    DEFAULT_CLASSES = "json-view"

    def __init__(self, value: Any = None, *, empty: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._value = value
        self._empty = empty
        self.shown: Any = None  # the renderable on screen (tests read it)
        self._source: tuple[Any, ...] | None = None  # what ``shown`` was made from

    def compose(self) -> ComposeResult:
        yield Static(self._renderable(self._value), classes="json-body")

    def show(self, value: Any, *, empty: str | None = None) -> None:
        """Replace the value shown (nothing is redrawn when it is the value shown)."""
        if empty is not None:
            self._empty = empty
        self._value = value
        self._put(("json", _dump(value), self._empty), lambda: self._renderable(value))

    def show_event(self, event: dict[str, Any]) -> None:
        """Show a history event as JSON, with any traceback in it taken out and shown
        below as readable text (not one escaped JSON string)."""
        self._value = event

        def parts() -> Group:
            value, tracebacks = split_tracebacks(event)
            out: list[Any] = [self._renderable(value)]
            for where, text in tracebacks:
                out.append(Text(f"\n{where}:", style="bold"))
                out.append(Text(text.rstrip("\n")))
            return Group(*out)

        self._put(("event", _dump(event)), parts)

    @property
    def value(self) -> Any:
        """The value shown (None while a plain message is shown)."""
        return self._value

    def show_text(self, text: str, style: str = "") -> None:
        """Show plain text (a traceback, a message) instead of JSON."""
        self._value = None
        self._put(("text", text, style), lambda: Text(text, style=style))

    def _put(self, source: tuple[Any, ...], make: Callable[[], Any]) -> None:
        """Show what ``make`` makes, unless ``source`` (what it is made from) is on show."""
        if source == self._source:
            return
        self._source = source
        self.shown = make()
        self.query_one(".json-body", Static).update(self.shown)

    def _renderable(self, value: Any) -> Any:
        if value is None and self._empty:
            return Text(self._empty, style="italic")
        return JSON(json.dumps(value, ensure_ascii=False, default=str), indent=2)


def _dump(value: Any) -> str:
    """The JSON text of ``value``: what decides whether it looks the same (1 and True are
    equal in Python, not on screen)."""
    return json.dumps(value, ensure_ascii=False, default=str)
