"""App-wide messages. Widget-local messages live in the widget that posts them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class StoreChanged(Message, bubble=False):
    """Something committed to the store; live screens reload. Posted from the poll thread
    to the app, which hands it to each live screen (so it must not bubble back up)."""

    token: Any = None

    def can_replace(self, message: Message) -> bool:
        # Only the newest change matters: a burst of commits becomes one reload.
        return isinstance(message, StoreChanged)


@dataclass
class CodeChanged(Message):
    """A provider or flows module was (re)loaded, or failed to; from the watcher thread."""

    message: str
    ok: bool


@dataclass
class OpenRun(Message):
    """Show the detail screen of a run (a workflow id follows its newest run; a run id pins)."""

    ident: str


@dataclass
class OperationDone(Message):
    """An operator action finished: one (id, ok, message) per run it touched."""

    operation: str
    results: list[tuple[str, bool, str]]
    bulk: bool = False
