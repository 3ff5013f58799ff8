"""Watching files for changes: the one watcher behind provider and flows hot reload.

A :class:`FileWatcher` runs watchfiles in a daemon thread over some folders or files and
hands each batch of changed paths its filter accepts to a callback. The provider manager
(engine/providers.py) watches its plugin folders with one; the code watcher of a worker
(engine/reload.py) watches the flows files with another. What a change means is theirs to
decide; here is only noticing it, and stopping promptly.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import watchfiles

__all__ = ["FileWatcher"]

log = logging.getLogger("onward.watch")

WAKE_MS = 200  # how often the thread wakes to notice stop()


class FileWatcher:
    """Calls ``on_change(paths)`` from a background thread when watched files change."""

    def __init__(self, roots: Iterable[str | Path], on_change: Callable[[list[str]], None],
                 *, accept: Callable[[str], bool], name: str, debounce_ms: int = 1600,
                 on_error: Callable[[Exception], None] | None = None) -> None:
        """Watch ``roots`` (folders, not recursively, or files).

        A file is watched through its folder: an editor that saves by writing a new file
        and renaming it over the old one replaces the file, and a watch on the file
        itself would see nothing after that first save. ``accept(path)`` picks the changed
        paths that matter; ``on_change`` gets them sorted, once per batch (changes within
        ``debounce_ms`` make one batch); an error it raises is logged and watching goes
        on. ``on_error`` hears why watching itself stopped (the thread then ends).
        """
        self.roots = [str(r) for r in roots]
        self._dirs = {os.path.realpath(r) for r in self.roots if os.path.isdir(r)}
        self._files = {os.path.realpath(r) for r in self.roots} - self._dirs
        """The roots that are files: of their folders' other files, none counts."""
        self._on_change = on_change
        self._accept = accept
        self._debounce_ms = debounce_ms
        self._on_error = on_error
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called (a long ``on_change`` may check it)."""
        return self._stop.is_set()

    def start(self, *, ready_timeout: float = 5.0) -> FileWatcher:
        """Start the thread; wait up to ``ready_timeout`` seconds until it watches, so
        that changes made after this returns are seen. Nothing to watch: no thread."""
        if not self.roots or (self._thread is not None and self._thread.is_alive()):
            return self
        self._stop = threading.Event()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop, ready),
                                        name=self._name, daemon=True)
        self._thread.start()
        ready.wait(ready_timeout)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, if running, and wait up to ``timeout`` seconds for it to end."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout)

    def _folders(self) -> list[str]:
        """What watchfiles watches: the folder roots, and the folders of the file roots."""
        return sorted(self._dirs | {os.path.dirname(f) for f in self._files})

    def _wanted(self, path: str) -> bool:
        real = os.path.realpath(path)
        if real not in self._files and os.path.dirname(real) not in self._dirs:
            return False  # a neighbour of a watched file
        return self._accept(path)

    def _run(self, stop: threading.Event, ready: threading.Event) -> None:
        try:
            for changes in watchfiles.watch(
                    *self._folders(), watch_filter=lambda _change, path: self._wanted(path),
                    stop_event=stop, debounce=self._debounce_ms, rust_timeout=WAKE_MS,
                    yield_on_timeout=True, raise_interrupt=False, recursive=False):
                ready.set()
                paths = sorted({path for _, path in changes})
                if paths and not stop.is_set():
                    self._deliver(paths)
        except Exception as err:
            if self._on_error is None:
                log.warning("watching %s stopped: %s", ", ".join(self.roots), err)
            else:
                self._on_error(err)
        finally:
            ready.set()

    def _deliver(self, paths: list[str]) -> None:
        try:
            self._on_change(paths)
        except Exception:
            log.exception("handling changes to %s failed", ", ".join(paths))
