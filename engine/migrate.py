"""``onward migrate``: move an embedded SQLite database into PostgreSQL, verified.

Every table but ``workers`` is streamed into the target inside one PostgreSQL transaction
while the source is held with SQLite's write lock, so nothing changes under the copy. Each
table is then checked by row count and a SHA-256 over its rows in primary-key order (floats
by ``repr``) on both sides; only then does the target commit. Attempts that stopped workers
still held are handed back ("worker lost", retried under their policy) in the same
transaction, as a worker taking over from them would. The source is left as it was.

Refused, with nothing changed: a source with live workers attached, a non-empty target.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import apsw

from . import attempts
from .errors import BadInput, StoreError
from .liveness import HOST, process_start
from .store import copy
from .store.base import Tx
from .store.sqlite import SqliteStore

if TYPE_CHECKING:
    from .store.postgres import PostgresStore


def migrate(source_db_path: str | os.PathLike[str], target_url: str) -> str:
    """Copy the SQLite database at ``source_db_path`` into ``target_url``; a report."""
    from .store.postgres import PostgresStore  # psycopg is an optional dependency

    target_text = str(target_url)
    if not target_text.startswith(("postgresql://", "postgres://")):
        raise BadInput(f"--to must be a postgresql:// URL, not {target_text!r}")
    source = str(source_db_path)
    store = SqliteStore(source, create=False)  # exists, is Onward's, is current
    started = time.monotonic()
    try:
        with store.write() as source_tx:  # hold writers off while we copy; nothing written
            _refuse_live_workers(source_tx, source)
            target = PostgresStore(target_text, create=True)
            try:
                lines, released = _copy(source_tx, target)
                where = target.where
            finally:
                target.close()
    except apsw.Error as err:
        raise StoreError(f"{source}: {err}") from err
    finally:
        store.close()
    total = sum(n for _, n, _ in lines)
    report = [f"migrated {source} to {where}: {total} rows in "
              f"{time.monotonic() - started:.1f}s, every table verified"]
    report += [f"  {table:<15} {count:>9} rows  sha256 {digest[:16]}  verified"
               for table, count, digest in lines]
    if released:
        report.append(f"  handed back {released} attempt(s) that stopped workers held "
                      "(they run again as their next attempt)")
    return "\n".join(report)


def _refuse_live_workers(tx: Tx, source: str) -> None:
    now = time.time()
    live = []
    for worker_id, host, pid, pid_start, beat, ttl in copy.attached_workers(tx):
        if host == HOST:
            start = process_start(pid)
            alive = start is not None and (pid_start == "?" or start == pid_start)
            where = f"pid {pid}"
        else:
            alive = now - beat <= ttl
            where = f"on {host.split(':')[0]}"
        if alive:
            live.append(f"{worker_id} ({where})")
    if live:
        raise BadInput(f"{len(live)} worker(s) attached to {source}: {', '.join(live[:3])}; "
                       "stop them (and the console) before migrating")


def _copy(source: Tx, target: PostgresStore) -> tuple[list[tuple[str, int, str]], int]:
    lines: list[tuple[str, int, str]] = []
    with target.write() as tx:
        busy = copy.first_table_with_rows(tx)
        if busy is not None:
            raise BadInput(f"{target.where} is not empty ({busy} has rows); migrate "
                           "into a new database or schema (?options=-csearch_path%3Dname)")
        for table in copy.TABLES:
            columns, kinds = copy.source_columns(source, table)
            source_hash = _Digest(kinds)
            copied = copy.copy_into(tx, table, columns, source_hash.feed(
                copy.read_source_table(source, table, columns)))
            target_hash = _Digest(kinds)
            for _ in target_hash.feed(copy.read_copied_table(tx, table, columns, kinds)):
                pass
            same = copied == source_hash.count == target_hash.count
            if not same or source_hash.hexdigest() != target_hash.hexdigest():
                raise StoreError(f"copy of {table} does not match its source ({copied} of "
                                 f"{source_hash.count} rows, checksums "
                                 f"{source_hash.hexdigest()[:12]} and "
                                 f"{target_hash.hexdigest()[:12]}); nothing was migrated")
            lines.append((table, copied, source_hash.hexdigest()))
        copy.restart_serials(tx)
        released = _release_orphaned_attempts(tx)
    return lines, released


class _Digest:
    """SHA-256 over rows in order, each value normalised by its column's kind."""

    def __init__(self, kinds: Sequence[str]) -> None:
        self.kinds = kinds
        self.count = 0
        self._hash = hashlib.sha256()

    def feed(self, rows: Iterable[Sequence[Any]]) -> Iterator[Sequence[Any]]:
        for row in rows:
            self.count += 1
            self._hash.update(self._encode(row))
            yield row

    def _encode(self, row: Sequence[Any]) -> bytes:
        parts = []
        for value, kind in zip(row, self.kinds, strict=True):
            if value is None:
                parts.append("\x00")
            elif kind == "float":
                parts.append(repr(float(value)))
            elif kind == "int":
                parts.append(str(int(value)))
            else:
                parts.append(str(value))
        return ("\x1f".join(parts) + "\x1e").encode("utf-8", "surrogatepass")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _release_orphaned_attempts(tx: Tx) -> int:
    """Hand back attempts that workers of the old database held when they stopped."""
    now = time.time()
    released = 0
    for run_id, ref, owner, attempt in copy.held_attempts(tx):
        run = attempts.fail(tx, run_id, ref, owner, attempt,
                            {"type": "WorkerLost",
                             "message": f"worker lost: {owner} stopped before the move to "
                                        "PostgreSQL"},
                            ("", ""), now, retry_now=True)
        released += run is not None
    return released
