"""A JSON text editor that says, as you type, whether the text is valid JSON."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static, TextArea

_NOTHING = object()


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
        yield TextArea(self._text, soft_wrap=True, show_line_numbers=True,
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
        text = self.text.strip()
        if not text:
            if self.allow_empty:
                return True, None
            return False, "enter a JSON value"
        try:
            return True, json.loads(text)
        except json.JSONDecodeError as err:
            return False, f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._check()

    def _check(self) -> bool:
        ok, value = self.parsed()
        status = self.query_one(".json-status", Static)
        if ok:
            status.update(Content.styled("✓ valid JSON" if self.text.strip() else
                                         self.empty_note, "$text-success"))
        else:
            status.update(Content.styled(f"✗ {value}", "$text-error"))
        self.set_class(not ok, "-invalid")
        return ok

    def focus_editor(self) -> None:
        self.query_one(TextArea).focus()
