"""A JSON text editor that says, as you type, whether the text is valid JSON."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static, TextArea

_NOTHING = object()


class JsonText(TextArea):
    """The editing area: ctrl+a selects all the text (instead of going to the line start,
    which home still does)."""

    BINDINGS = [Binding("ctrl+a", "select_all", "Select all", show=False)]


def error_excerpt(text: str, line: int, column: int, width: int = 24) -> str:
    """The text just before the error on its line, the spot marked ``▸``, and a little after it."""
    lines = text.splitlines() or [""]
    source = lines[min(max(line, 1), len(lines)) - 1]
    before = source[max(0, column - 1 - width):column - 1]
    after = source[column - 1:column + 5]
    return f"{before}▸{after}"


class JsonEditor(Vertical):
    """A TextArea for JSON plus a status line; ``parsed()`` says whether it can be submitted."""

    DEFAULT_CLASSES = "json-editor"

    def __init__(self, text: str = "", *, allow_empty: bool = True,
                 empty_note: str = "empty: no value", id: str | None = None,  # noqa: A002
                 ) -> None:
        super().__init__(id=id)
        self._text = text
        self.allow_empty = allow_empty
        self.empty_note = empty_note

    def compose(self) -> ComposeResult:
        yield JsonText(self._text, soft_wrap=True, show_line_numbers=True,
                       tab_behavior="focus", classes="json-text")
        yield Static("", classes="json-status")

    def on_mount(self) -> None:
        self._check()

    @property
    def text(self) -> str:
        return self.query_one(TextArea).text

    @text.setter
    def text(self, value: str) -> None:
        self.query_one(TextArea).load_text(value)
        self._check()

    def parsed(self) -> tuple[bool, Any]:
        """(True, value) when the text is valid JSON (empty counts as None if allowed);
        else (False, the error message)."""
        ok, value, _where = self._parse()
        return ok, value

    def _parse(self) -> tuple[bool, Any, tuple[int, int, str] | None]:
        text = self.text
        if not text.strip():
            if self.allow_empty:
                return True, None, None
            return False, "enter a JSON value", None
        try:
            return True, json.loads(text), None
        except json.JSONDecodeError as err:
            return (False, f"invalid JSON at line {err.lineno}, column {err.colno}: "
                    f"{err.msg}", (err.lineno, err.colno, err.msg))

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._check()

    def _check(self) -> bool:
        ok, value, where = self._parse()
        status = self.query_one(".json-status", Static)
        if ok:
            status.update(Content.styled("✓ valid JSON" if self.text.strip() else
                                         self.empty_note, "$text-success"))
        else:
            message = f"✗ {value}"
            if where is not None:  # short enough for one line: the spot, then why
                line, column, why = where
                message = (f"✗ {error_excerpt(self.text, line, column)}  {why} "
                           f"(line {line}, column {column})")
            status.update(Content.styled(message, "$text-error"))
        self.set_class(not ok, "-invalid")
        return ok

    def focus_editor(self) -> None:
        """Put the keyboard in the text area."""
        self.query_one(TextArea).focus()

    def select_all(self) -> None:
        """Select the whole text (what ctrl+a does), e.g. to replace it by typing."""
        self.query_one(TextArea).select_all()
