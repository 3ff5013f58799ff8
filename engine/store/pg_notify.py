"""PostgreSQL change notification: LISTEN on one channel, turned into change tokens.

Every write transaction of a :class:`~engine.store.postgres.PostgresStore` that changed
something ends with ``NOTIFY`` on the schema's channel (:attr:`ChangeFeed.notify`), sent
just before its ``COMMIT`` (in one round trip: engine/store/pg_tx.py).
A :class:`ChangeFeed` keeps one dedicated connection listening on that channel, read by one
thread, and counts the notifications, so idle workers wake at once instead of polling.
PostgreSQL names the backend that sent each notification, so a worker's pinned connection
(tracked with :meth:`ChangeFeed.track`) can ignore its own commits. While the listening
connection is down the tokens change every ``FALLBACK_POLL`` seconds instead.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from .pg_connect import first_line

log = logging.getLogger("onward.store.postgres")

LISTEN_RETRY = 2.0  # seconds between attempts to reopen a lost listening connection
FALLBACK_POLL = 0.25  # change_token granularity while the listening connection is down
IDLE_WAKE = 30.0  # the listening thread wakes this often even when nothing arrives


class ChangeFeed:
    """Counts NOTIFYs on one channel from a listening connection of its own.

    The listening connection opens on first use (:meth:`token` or :meth:`wait`); a lost
    one is reopened every ``LISTEN_RETRY`` seconds, and what happened meanwhile counts as
    a change.
    """

    def __init__(self, conninfo: str, channel: str, where: str) -> None:
        """Listen on ``channel`` of the database at ``conninfo`` (``where`` names it in
        log messages)."""
        self._conninfo = conninfo
        self.where = where
        name = sql.Identifier(channel[:63])
        self.notify = sql.SQL("NOTIFY {}").format(name).as_string()
        """The statement sent before the COMMIT of a write transaction that changed
        something."""
        self._listen_sql = sql.SQL("LISTEN {}").format(name).as_string()
        self._changes = 0
        self._own: dict[int, int] = {}  # session backend pid -> notifications it sent
        self._listening = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._stop_r, self._stop_w = -1, -1
        self._closed = False

    @property
    def listening(self) -> bool:
        """True while the listening connection is up (tokens then change only on news)."""
        return self._listening

    def token(self, own_pid: int = 0) -> Any:
        """A value that differs after a commit by another backend than ``own_pid``."""
        self._ensure_listener()
        with self._changed:
            changes = self._changes - self._own.get(own_pid, 0)
        if self._listening:
            return changes
        return (changes, int(time.monotonic() / FALLBACK_POLL))

    def wait(self, timeout: float) -> None:
        """Block until a notification arrives, the feed closes or ``timeout`` passes."""
        self._ensure_listener()
        deadline = time.monotonic() + timeout
        with self._changed:
            start = self._changes
            while self._changes == start and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(remaining if self._listening
                                   else min(remaining, FALLBACK_POLL))
                if not self._listening:
                    return

    def track(self, pid: int, on: bool) -> None:
        """Start (``on``) or stop counting the notifications sent by backend ``pid``."""
        with self._changed:
            if on:
                self._own.setdefault(pid, 0)
            else:
                self._own.pop(pid, None)

    def close(self) -> None:
        """Stop listening and wake every waiter; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._listening = False
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
            os.close(self._stop_r)
            os.close(self._stop_w)
        self._bump()

    def _bump(self, senders: Sequence[int] = ()) -> None:
        with self._changed:
            self._changes += max(1, len(senders))
            for pid in senders:
                if pid in self._own:
                    self._own[pid] += 1
            self._changed.notify_all()

    def _ensure_listener(self) -> None:
        if self._thread is not None or self._closed:
            return
        with self._changed:
            if self._thread is not None:
                return
            self._stop_r, self._stop_w = os.pipe()
            try:
                self._conn = self._open()
                self._listening = True
            except psycopg.Error as err:
                log.warning("%s: cannot listen for changes (%s); polling", self.where,
                            first_line(err))
            self._thread = threading.Thread(target=self._loop, name="onward-pg-listen",
                                            daemon=True)
            self._thread.start()

    def _open(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._conninfo, autocommit=True)
        try:
            conn.execute(self._listen_sql)
        except BaseException:
            conn.close()
            raise
        return conn

    def _loop(self) -> None:
        conn = self._conn
        while True:
            if conn is None:
                if self._stopping(LISTEN_RETRY):
                    break
                conn = self._reopen()
                continue
            ready, _, _ = select.select([conn.pgconn.socket, self._stop_r], [], [], IDLE_WAKE)
            if self._stop_r in ready:
                break
            if ready:
                conn = self._consume(conn)
        if conn is not None:
            conn.close()

    def _stopping(self, timeout: float) -> bool:
        """True once :meth:`close` asked the thread to stop (waits up to ``timeout``)."""
        ready, _, _ = select.select([self._stop_r], [], [], timeout)
        return bool(ready)

    def _reopen(self) -> psycopg.Connection[Any] | None:
        """A new listening connection, or None if the server is not reachable yet."""
        try:
            conn = self._open()
        except psycopg.Error:
            return None
        self._conn = conn
        self._listening = True
        self._bump()  # what happened while we were deaf
        return conn

    def _consume(self, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any] | None:
        """Count the notifications waiting on ``conn``; None if the connection is lost."""
        try:
            conn.pgconn.consume_input()
            senders = []
            while (note := conn.pgconn.notifies()) is not None:
                senders.append(note.be_pid)
        except psycopg.Error as err:
            log.warning("%s: lost the listening connection (%s); reconnecting",
                        self.where, first_line(err))
            self._listening = False
            self._bump()
            conn.close()
            self._conn = None
            return None
        if senders:
            self._bump(senders)
        return conn
