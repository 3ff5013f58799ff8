"""The provider log: every load, reload, failure and removal of a provider, and who hears.

Entries are kept (the most recent ``LOG_SIZE``) for ``onward providers`` and the console,
written to the ``onward.plugins`` logger, and handed to listeners. A manager records
entries while it holds its load lock and calls :meth:`ProviderLog.flush` after letting go
of it, so listeners (which may reload flows or write to the database) never run under it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LOG_SIZE", "ProviderLog", "ProviderLogEntry"]

logger = logging.getLogger("onward.plugins")

LOG_SIZE = 1000


@dataclass
class ProviderLogEntry:
    """One load, reload, failure or removal of a provider."""

    time: float
    provider: str
    version: str
    action: str  # "loaded" | "reloaded" | "failed" | "removed"
    message: str


class ProviderLog:
    """The recent entries, and the listeners told about new ones."""

    def __init__(self, clock: Callable[[], float]) -> None:
        """``clock`` stamps each entry."""
        self._clock = clock
        self._lock = threading.Lock()  # guards the entries; never held while others' code runs
        self._entries: deque[ProviderLogEntry] = deque(maxlen=LOG_SIZE)
        self._pending: list[ProviderLogEntry] = []
        self._listeners: list[Callable[[ProviderLogEntry], None]] = []

    def entries(self) -> list[ProviderLogEntry]:
        """The most recent entries, oldest first."""
        with self._lock:
            return list(self._entries)

    def add_listener(self, fn: Callable[[ProviderLogEntry], None]) -> None:
        """Call ``fn(entry)`` for every new entry (from the thread that flushes it)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[ProviderLogEntry], None]) -> None:
        """Stop calling ``fn``."""
        if fn in self._listeners:
            self._listeners.remove(fn)

    def record(self, provider: str, version: str, action: str,
               message: str) -> ProviderLogEntry:
        """Keep and log one entry; listeners hear of it at the next :meth:`flush`."""
        entry = ProviderLogEntry(self._clock(), provider, version, action, message)
        (logger.warning if action == "failed" else logger.info)(
            "provider %s %s: %s", provider, action, message)
        with self._lock:
            self._entries.append(entry)
            self._pending.append(entry)
        return entry

    def flush(self) -> None:
        """Tell listeners about the entries recorded since the last flush; a listener
        that raises is logged and the others are still told."""
        with self._lock:
            pending, self._pending = self._pending, []
        for entry in pending:
            for listener in list(self._listeners):
                try:
                    listener(entry)
                except Exception:
                    logger.exception("provider log listener %r failed", listener)
