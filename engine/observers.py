"""Delivery of committed events to ``onward_event`` observers, off the worker's path.

Observers are plugin code: one that blocks (a slow webhook, a lock it never gets) must not
stall the thread that committed the events. :class:`ObserverFeed` hands events to a daemon
thread through a bounded queue; when the queue is full, events are dropped, counted, and
the first drop (and the first after deliveries resume) is logged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("onward.plugins")

QUEUE_SIZE = 10_000


class ObserverFeed:
    """A bounded queue of events and the thread that passes them to the observers."""

    def __init__(self, deliver: Callable[[dict[str, Any]], None],
                 size: int = QUEUE_SIZE) -> None:
        self._deliver = deliver
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0
        """Events observers never saw because the queue was full."""
        self._dropping = False

    def put(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for the observers; never blocks (drops it when full)."""
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:  # (several threads publish)
                self.dropped += 1
                first, self._dropping = not self._dropping, True
            if first:
                log.warning("onward_event observers are not keeping up (%d events queued): "
                            "dropping events until they catch up", self._queue.maxsize)
            return
        self._dropping = False

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="onward-observers",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self._deliver(event)
            except Exception:  # noqa: BLE001 - observers are guarded one by one already
                log.exception("onward_event delivery failed")

    def close(self, timeout: float = 1.0) -> None:
        """Deliver what is queued (waiting up to ``timeout`` s), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return  # an observer is stuck: leave the daemon thread behind
        thread.join(max(0.0, deadline - time.monotonic()))
