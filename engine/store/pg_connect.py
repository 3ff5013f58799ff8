"""Opening a PostgreSQL database: URL defaults, error wording, schema setup, server clock.

engine/store/postgres.py opens its connections with :func:`with_defaults` (keepalives, a
TCP user timeout and a server-side idle-in-transaction timeout, unless the URL sets them),
sets the schema up with :func:`migrate` and keeps time by :func:`server_offset`. psycopg's
errors become the engine's through :func:`wrap` and :func:`raise_for` (:func:`primary`
finds the error that aborted a pipeline); each names the database as :func:`describe`
does, never with the password. :func:`idle_and_alive` tells, without a round trip, that an
idle connection has been closed by the server.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any, NoReturn

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import DatabaseCorrupt, DatabaseMissing, StoreConflict, StoreError
from .schema import APPLICATION_ID, SCHEMA_VERSION

# libpq settings added to the URL unless it sets them: fail fast on a dead network.
CONNECTION_DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",  # ms unacknowledged before the kernel gives up
    "application_name": "onward",
}
# Server settings (``-c`` in ``options``) added unless the URL sets them: a client that
# vanished inside a transaction must not hold its row locks for long.
SESSION_DEFAULTS = {"idle_in_transaction_session_timeout": "10000"}
CLOCK_SAMPLES = 3  # readings of the server's clock per measurement of its offset
OUR_TABLES = ("runs", "events", "activity_tasks", "timers", "manual_tasks", "workers",
              "workflow_types", "provider_log", "rate_limits")


def first_line(err: BaseException) -> str:
    """The first line of an error's message (its type if it has none)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def raise_for(err: psycopg.Error, where: str) -> NoReturn:
    """Raise the engine's error for ``err`` (a programming error is raised unchanged)."""
    wrapped = wrap(err, where)
    if wrapped is err:
        raise err
    raise wrapped from err


def wrap(err: psycopg.Error, where: str) -> BaseException:
    """The engine's error for a psycopg error; programming errors are returned unchanged."""
    if isinstance(err, psycopg.errors.ReadOnlySqlTransaction):
        return err  # a write inside read(): a bug to fix, not a condition to retry
    if isinstance(err, psycopg.errors.TransactionRollback | psycopg.errors.DeadlockDetected):
        return StoreConflict(f"{where}: rolled back because a concurrent transaction got in "
                             f"the way ({first_line(err)}); nothing changed, try again")
    if isinstance(err, psycopg.IntegrityError):
        return StoreConflict(f"{where}: a concurrent change conflicts with this one "
                             f"({first_line(err)}); try again")
    if isinstance(err, psycopg.errors.DiskFull):
        return StoreError(f"{where}: the server's disk is full; free space and the work "
                          "resumes")
    if isinstance(err, psycopg.OperationalError | psycopg.InterfaceError |
                  psycopg.InternalError):
        return StoreError(f"{where}: {first_line(err)}")
    return err


def idle_and_alive(conn: psycopg.Connection[Any]) -> bool:
    """False for an idle connection the server has closed or is closing (it has sent
    something unasked: an idle connection of ours is sent nothing else), without a round
    trip. Checked before ``BEGIN`` is queued, since a queued ``BEGIN`` reports a dead
    connection only once the caller's statements have run."""
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


def primary(err: psycopg.Error) -> psycopg.Error:
    """The error that aborted a pipeline, for the ``PipelineAborted`` of a statement queued
    after it (psycopg raises the latter when it fetches the rest while the first is being
    raised: the first is its context)."""
    while isinstance(err, psycopg.errors.PipelineAborted) and \
            isinstance(err.__context__, psycopg.Error):
        err = err.__context__
    return err


def migrate(conn: psycopg.Connection[Any], *, url: str, where: str, create: bool,
            migrations: list[list[str]]) -> str:
    """Bring the Onward schema in the first schema of ``search_path`` to this version,
    step by step in one transaction under an advisory lock (racing starters wait); its
    name. DatabaseMissing when there is none and ``create`` is false; DatabaseCorrupt
    for a schema with tables like Onward's that Onward did not write; StoreError for a
    newer schema or when it cannot be set up (``where`` names the database)."""
    try:
        target = first_schema(conn)
        schema = conn.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
        version = schema_version(conn, target) if schema == target else None
        if version == SCHEMA_VERSION:
            return target
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(f"{where} has schema version {version}, newer than "
                             f"this Onward ({SCHEMA_VERSION}); upgrade Onward")
        if not create and not version:
            raise DatabaseMissing(f"{describe(conninfo_to_dict(url), target)} "
                                  "holds no Onward database: start a worker or the "
                                  "console to set it up")
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                         (APPLICATION_ID, target))
            if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                (target,)).fetchone():
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(target)))
            version = schema_version(conn, target)
            if version is None:
                clash = conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE "
                    "table_schema = %s AND table_name = ANY(%s) ORDER BY 1",
                    (target, list(OUR_TABLES))).fetchall()
                if clash:
                    raise DatabaseCorrupt(
                        f"schema {target} already has tables named like Onward's "
                        f"({', '.join(r[0] for r in clash)}) but is not an Onward "
                        "database; point --db at another schema "
                        "(?options=-csearch_path%3Dname)")
                conn.execute("CREATE TABLE onward_schema (version INTEGER NOT NULL, "
                             "application BIGINT NOT NULL)")
                conn.execute("INSERT INTO onward_schema VALUES (0, %s)",
                             (APPLICATION_ID,))
                version = 0
            for step in migrations[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute("UPDATE onward_schema SET version = %s", (SCHEMA_VERSION,))
        return target
    except psycopg.Error as err:
        if wrap(err, where) is err:
            raise StoreError(f"{where}: cannot set up the schema: "
                             f"{first_line(err)}") from err
        raise_for(err, where)


def describe(params: dict[str, Any], schema: str | None = None) -> str:
    """``PostgreSQL user@host:port/db (schema s)``, never with the password."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    text = (f"PostgreSQL {params.get('user') or os.environ.get('PGUSER') or 'default user'}@"
            f"{host}:{params.get('port') or 5432}/{params.get('dbname') or '?'}")
    return f"{text} (schema {schema})" if schema and schema != "public" else text


def with_defaults(url: str, params: dict[str, Any]) -> str:
    """``url`` with the connection and session defaults it does not set itself."""
    extra = {k: v for k, v in CONNECTION_DEFAULTS.items() if k not in params}
    options = str(params.get("options") or "")
    added = " ".join(f"-c {k}={v}" for k, v in SESSION_DEFAULTS.items() if k not in options)
    if added:
        extra["options"] = f"{options} {added}".strip()
    return make_conninfo(url, **extra)


def open_error(err: psycopg.OperationalError, params: dict[str, Any]) -> StoreError:
    """What to tell the operator when the database cannot be opened (one line)."""
    text = first_line(err)
    where = describe(params)
    dbname = params.get("dbname") or "?"
    if "does not exist" in text and "database" in text:
        return DatabaseMissing(f"{where}: database {dbname} does not exist; create it "
                               f"(createdb {dbname}) or fix --db")
    if "password" in text or "authentication" in text or "role" in text:
        return DatabaseMissing(f"{where}: the server refused the login ({text}); fix the "
                               "user or password in --db, or pg_hba.conf")
    return DatabaseMissing(f"{where}: the server is not reachable ({text}); start it "
                           "(e.g. `pg_ctlcluster 15 main start`) or fix the --db URL")


def server_offset(conn: psycopg.Connection[Any]) -> float:
    """The server's clock minus ``time.time()``: the best of a few readings, each taken
    at the midpoint of its round trip (the shortest round trip is the surest)."""
    best: tuple[float, float] | None = None
    for _ in range(CLOCK_SAMPLES):
        before = time.time()
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        after = time.time()
        if row is not None and (best is None or after - before < best[0]):
            best = (after - before, float(row[0]) - (before + after) / 2)
    return 0.0 if best is None else best[1]


def first_schema(conn: psycopg.Connection[Any]) -> str:
    """The schema ``search_path`` names first, which need not exist yet (``"$user"``
    counts only when a schema of the user's name exists, as in PostgreSQL)."""
    path, user = conn.execute("SELECT current_setting('search_path'), current_user"
                              ).fetchone()  # type: ignore[misc]
    for item in str(path).split(","):
        name = item.strip()
        if name in ('"$user"', "$user"):
            if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                            (user,)).fetchone():
                return str(user)
            continue
        if name:
            return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
    return "public"


def schema_version(conn: psycopg.Connection[Any], schema: str) -> int | None:
    """The Onward schema version in ``schema``, None when it holds no version table."""
    found = conn.execute("SELECT to_regclass(format('%%I.onward_schema', %s::text))",
                         (schema,)).fetchone()
    if found is None or found[0] is None:
        return None
    row = conn.execute(sql.SQL("SELECT version, application FROM {}.onward_schema")
                       .format(sql.Identifier(schema))).fetchone()
    if row is None or row[1] != APPLICATION_ID:
        raise DatabaseCorrupt(f"schema {schema} has an onward_schema table that Onward did "
                              "not write; point --db at another schema")
    return int(row[0])
