"""The embedded store: one SQLite file through APSW, in WAL mode, fsynced on every commit.

Every connection is set up the same way (busy timeout, WAL, ``synchronous``, foreign keys).
All writes of a process go through one connection, in turn, so its page cache stays valid
from one transaction to the next; reads come from a small pool. Writers take the lock up
front with ``BEGIN IMMEDIATE`` so a transaction never fails half way on a lock upgrade.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import apsw

from ..errors import DatabaseCorrupt, DatabaseMissing, StoreError
from .base import Row, Store, Tx
from .schema import APPLICATION_ID, SCHEMA_VERSION, SchemaTypes

BUSY_TIMEOUT_MS = 15_000
CACHE_KIB = 64 * 1024  # page cache per connection: hot histories stay in memory
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def _pragma_int(conn: apsw.Connection, sql: str) -> int:
    value: Any = conn.execute(sql).fetchall()[0][0]
    return int(value)


def _wrap(err: apsw.Error, path: str) -> StoreError:
    """A one-line, actionable message for an SQLite error."""
    if isinstance(err, apsw.NotADBError | apsw.CorruptError):
        return DatabaseCorrupt(f"{path} is corrupt or not an SQLite database ({err}); "
                               "restore it from a backup or point --db elsewhere")
    if isinstance(err, apsw.FullError):
        return StoreError(f"{path}: the disk or database is full; free space and the "
                          "work resumes")
    if isinstance(err, apsw.BusyError):
        return StoreError(f"{path} stayed locked by another process for "
                          f"{BUSY_TIMEOUT_MS // 1000}s")
    if isinstance(err, apsw.ReadOnlyError | apsw.CantOpenError | apsw.PermissionsError):
        return StoreError(f"cannot open {path} for writing: {err}")
    return StoreError(f"{path}: {err}")


class SqliteTx(Tx):
    """A transaction on one APSW connection."""

    def __init__(self, conn: apsw.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.published: list[Any] = []
        self.closed_runs: list[str] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except apsw.Error as err:
            if isinstance(err, apsw.ConstraintError | apsw.SQLError):
                raise
            raise _wrap(err, self.path) from err

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a statement's result, or None (one call less than the base
        class's, on every run row read)."""
        try:
            rows = self.conn.execute(sql, params).fetchall()
        except apsw.Error as err:
            if isinstance(err, apsw.ConstraintError | apsw.SQLError):
                raise
            raise _wrap(err, self.path) from err
        return rows[0] if rows else None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except apsw.Error as err:
            if isinstance(err, apsw.ConstraintError | apsw.SQLError):
                raise
            raise _wrap(err, self.path) from err

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 2000
               ) -> Iterator[Row]:
        """The rows of a query as SQLite steps to them (never all in memory at once)."""
        try:
            yield from self.conn.execute(sql, params)
        except apsw.Error as err:
            if isinstance(err, apsw.ConstraintError | apsw.SQLError):
                raise
            raise _wrap(err, self.path) from err

    def lock_workflow_id(self, workflow_id: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already holds every other writer back."""

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A SAVEPOINT inside the open transaction. When SQLite rolled the whole
        transaction back (a full disk, an I/O error), the failure is the store's: it is
        raised as StoreError, so that nobody goes on writing outside a transaction."""
        try:
            with self.conn:  # APSW: a SAVEPOINT inside an open transaction
                yield
        except BaseException as err:
            if self.conn.in_transaction:
                raise
            cause: BaseException | None = err
            while cause is not None and not isinstance(cause, StoreError):
                cause = cause.__context__
            if cause is not None:
                raise cause from None
            raise StoreError(f"{self.path}: SQLite rolled the transaction back: "
                             f"{err}") from err


class _Writing:
    """A write transaction on ``conn`` holding ``lock`` (every write of the process takes
    it): ``BEGIN IMMEDIATE`` on entry, COMMIT on a clean exit, ROLLBACK on an exception.

    A plain class rather than two nested ``@contextmanager`` generators: it is entered
    once per transaction, several times per workflow step."""

    __slots__ = ("conn", "lock", "path", "read_only")

    def __init__(self, store: SqliteStore, conn: apsw.Connection, lock: threading.Lock
                 ) -> None:
        self.conn = conn
        self.lock = lock
        self.path = store.path
        self.read_only = store.read_only

    def __enter__(self) -> Tx:
        self.lock.acquire()
        try:
            if self.read_only:
                raise StoreError(f"{self.path} is read-only for this user: this needs write "
                                 "access to the file and its folder (reading works)")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except apsw.Error as err:
                raise _wrap(err, self.path) from err
        except BaseException:
            self.lock.release()
            raise
        return SqliteTx(self.conn, self.path)

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 _tb: object) -> None:
        try:
            conn = self.conn
            if kind is not None:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except apsw.Error:
                        pass
                return  # the exception goes on
            try:
                conn.execute("COMMIT")
            except apsw.Error as failed:
                try:
                    conn.execute("ROLLBACK")
                except apsw.Error:
                    pass
                raise _wrap(failed, self.path) from failed
        finally:
            self.lock.release()


class SqliteStore(Store):
    """An Onward database in one SQLite file."""

    schema_types = SchemaTypes(real="REAL", rowid_key="INTEGER PRIMARY KEY",
                               clustered=" WITHOUT ROWID")
    """Queue tables keyed by (run_id, ref) keep their rows in that one B-tree; the
    provider log's key is the rowid."""
    batch_isolation = "redo"
    """One writer connection: no job of a batch can conflict with another transaction,
    so batches go without savepoints (two statements per job) unless a job raises."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True,
                 synchronous: str = "FULL") -> None:
        text = str(path)
        if text.startswith("sqlite:///"):
            text = text[len("sqlite:///"):]
        self.path = text
        self.url = text
        self.synchronous = synchronous.upper()
        if self.synchronous not in SYNCHRONOUS_MODES:
            raise StoreError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        self.commits = 0
        self._pool: list[apsw.Connection] = []
        self._lock = threading.Lock()
        self._writer_lock = threading.Lock()
        self._watch: apsw.Connection | None = None
        self._watch_lock = threading.Lock()
        """One thread at a time on ``_watch`` (apsw refuses concurrent use of a connection)."""
        file = Path(self.path)
        if not file.exists():
            if not create:
                raise DatabaseMissing(f"no database at {self.path}: start a worker or the "
                                      "console to create one, or give --db")
            if not file.parent.exists():
                raise StoreError(f"cannot create {self.path}: folder {file.parent} "
                                 "does not exist")
            # No O_EXCL: another process may create the same file at this moment, and
            # that is fine (the schema is set up inside one BEGIN IMMEDIATE below).
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_RDONLY, 0o600))
            except OSError as err:
                raise StoreError(f"cannot create {self.path}: {err.strerror}") from None
        elif file.is_dir():
            raise DatabaseCorrupt(f"{self.path} is a folder, not a database file")
        self._name = self.path
        self._flags = apsw.SQLITE_OPEN_READWRITE
        self.read_only = False
        """True when the operating system lets this process only read the file: reads
        work, every write raises StoreError."""
        self.snapshot = False
        """True when the file could only be opened as immutable (a WAL database whose
        shared-memory file this process can neither use nor create): reads see the file as
        it was when opened."""
        conn = self._connect(configure=False)  # look before changing anything in the file
        try:
            if conn.readonly("main"):
                conn = self._open_read_only(conn)
            self._migrate(conn, create)
            self._configure(conn)
        except apsw.Error as err:
            conn.close()
            raise _wrap(err, self.path) from err
        except BaseException:
            conn.close()
            raise
        self._writer = conn
        """Every write of this process goes through this one connection: its page cache
        stays valid from one transaction to the next (another connection's commit would
        make SQLite drop it)."""

    # -- connections ------------------------------------------------------------------
    def _connect(self, *, configure: bool = True) -> apsw.Connection:
        try:
            conn = apsw.Connection(self._name, flags=self._flags)
            conn.set_busy_timeout(BUSY_TIMEOUT_MS)
            if configure:
                self._configure(conn)
        except apsw.Error as err:
            raise _wrap(err, self.path) from err
        return conn

    def _open_read_only(self, conn: apsw.Connection) -> apsw.Connection:
        """Switch to read-only opening for a file this process may not write.

        A WAL database needs its shared-memory file (``-shm``): SQLite reads one that
        exists, or creates it if the folder allows. When it can do neither (the last
        writer closed cleanly and the folder is not writable) the file is opened
        ``immutable``, a snapshot as of now (no writer can be using it at that moment).
        """
        self.read_only = True
        self._flags = apsw.SQLITE_OPEN_READONLY
        conn.close()
        conn = self._connect(configure=False)
        try:
            conn.execute("PRAGMA user_version").fetchall()
            return conn
        except (apsw.ReadOnlyError, apsw.CantOpenError):
            conn.close()
        self.snapshot = True
        self._name = "file:" + quote(str(Path(self.path).resolve())) + "?immutable=1"
        self._flags = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        return self._connect(configure=False)

    def _configure(self, conn: apsw.Connection) -> None:
        """WAL, the chosen ``synchronous``, foreign keys, a large page cache, commit count."""
        if not self.read_only:
            self._use_wal(conn)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        conn.set_commit_hook(self._count_commit)

    def _use_wal(self, conn: apsw.Connection) -> None:
        """Put the file in WAL mode (once per file; later openers find it so).

        The switch needs the file to itself and SQLite does not wait for that through the
        busy handler, so when other processes are opening the same new file at this
        moment it is tried again until the busy timeout.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchall()[0][0]
                if mode == "wal":
                    return
                conn.execute("PRAGMA journal_mode=WAL").fetchall()
            except apsw.BusyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _count_commit(self) -> bool:
        self.commits += 1
        return False  # False lets the commit proceed

    def _migrate(self, conn: apsw.Connection, create: bool) -> None:
        try:
            # One read transaction: another process may be setting up this very file, and
            # three separate reads could see its schema without its application id.
            conn.execute("BEGIN")
            try:
                version = _pragma_int(conn, "PRAGMA user_version")
                app_id = _pragma_int(conn, "PRAGMA application_id")
                tables = _pragma_int(conn, "SELECT count(*) FROM sqlite_master")
            finally:
                conn.execute("COMMIT")
        except apsw.Error as err:
            raise _wrap(err, self.path) from err
        if tables and app_id != APPLICATION_ID:
            raise DatabaseCorrupt(f"{self.path} is an SQLite database but not an Onward one; "
                                  "point --db at an Onward database or a new file")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}, newer than this "
                             f"Onward ({SCHEMA_VERSION}); upgrade Onward")
        if version == SCHEMA_VERSION:
            return
        if (not create or self.read_only) and version == 0:
            raise DatabaseMissing(f"{self.path} is empty: start a worker or the console "
                                  "to set it up")
        if self.read_only:
            raise StoreError(f"{self.path} has schema version {version} and this user may "
                             f"only read it; open it once with write access to upgrade it "
                             f"to version {SCHEMA_VERSION}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = _pragma_int(conn, "PRAGMA user_version")
                for step in self.migrations()[version:]:
                    for statement in step:
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except apsw.Error as err:
            raise _wrap(err, self.path) from err

    @contextmanager
    def _connection(self, pinned: apsw.Connection | None = None
                    ) -> Iterator[apsw.Connection]:
        if pinned is not None:
            yield pinned
            return
        with self._lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._lock:
                self._pool.append(conn)

    # -- transactions -------------------------------------------------------------------
    def write(self) -> AbstractContextManager[Tx]:
        return _Writing(self, self._writer, self._writer_lock)

    @contextmanager
    def read(self, _pinned: apsw.Connection | None = None) -> Iterator[Tx]:
        with self._connection(_pinned) as conn:
            try:
                conn.execute("BEGIN")
            except apsw.Error as err:
                raise _wrap(err, self.path) from err
            try:
                yield SqliteTx(conn, self.path)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def change_token(self) -> Any:
        with self._watch_lock:
            if self._watch is None:
                self._watch = self._connect()
            try:
                return self._watch.execute("PRAGMA data_version").fetchall()[0][0]
            except apsw.Error as err:
                raise _wrap(err, self.path) from err

    def wait_for_change(self, timeout: float) -> None:
        token = self.change_token()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.005)
            if self.change_token() != token:
                return

    def session(self) -> SqliteSession:
        """The process's writer connection for a worker: its change token ignores the
        commits of this process (which wake the worker directly) and sees all others."""
        return SqliteSession(self)

    def check_integrity(self) -> str:
        with self.read() as tx:
            rows = tx.execute("PRAGMA quick_check")
        return "ok" if rows == [("ok",)] else "; ".join(r[0] for r in rows[:5])

    def close(self) -> None:
        with self._lock:
            for conn in self._pool:
                conn.close()
            self._pool.clear()
        with self._writer_lock:
            self._writer.close()
        with self._watch_lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None


class SqliteSession:
    """A worker's view of the store: ``write``/``read``/``change_token`` on the writer.

    ``PRAGMA data_version`` on a connection changes only when *other* connections commit,
    so a worker polling its session wakes for other processes' work, never for this
    process's own writes (which wake it directly).
    """

    shares_writer = True
    """Its writes are on the store's one writer connection, as every write of the process
    (so a worker's turns join the engine's group commit)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.conn = store._writer
        self._lock = store._writer_lock

    def write(self) -> AbstractContextManager[Tx]:
        return _Writing(self.store, self.conn, self._lock)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._lock, self.store.read(self.conn) as tx:
            yield tx

    def change_token(self) -> Any:
        with self._lock:
            try:
                return self.conn.execute("PRAGMA data_version").fetchall()[0][0]
            except apsw.Error as err:
                raise _wrap(err, self.store.path) from err

    def close(self) -> None:
        """Nothing to release: the connection belongs to the store."""
