"""The postgres section: the PostgreSQL store with 1, 2 and 4 worker processes, recovery.

Each measurement gets a fresh schema (``onward_bench_<random>`` in the URL's search_path,
as tests/pg.py does) that is dropped afterwards. ``$ONWARD_PG_URL`` names the server
(default ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import onward_bench

from .common import BASIC_FLOWS, BENCH_FLOWS, THROUGHPUT_WORKFLOW

BASE_URL = os.environ.get("ONWARD_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(BASE_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return f"PostgreSQL not reachable at {BASE_URL}: {str(err).strip().splitlines()[0]}"
    return None


def server_version() -> str:
    import psycopg
    with psycopg.connect(BASE_URL, connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
    return f"{row[0] if row else '?'} (synchronous_commit={sync[0] if sync else '?'}, " \
           f"fsync={fsync[0] if fsync else '?'})"


def _url_for(schema: str) -> str:
    joiner = "&" if "?" in BASE_URL else "?"
    return f"{BASE_URL}{joiner}options=-csearch_path%3D{schema}&application_name={schema}"


def _drop_schema(schema: str) -> None:
    import psycopg
    with psycopg.connect(BASE_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL on a new schema (created by the first store opened), dropped afterwards."""
    schema = f"onward_bench_{uuid.uuid4().hex[:12]}"
    try:
        yield _url_for(schema)
    finally:
        _drop_schema(schema)


def _engine(url: str) -> Any:
    from onward import Engine

    return Engine(url, flows=[str(BASIC_FLOWS), str(BENCH_FLOWS)])


def throughput(tmp: Path, n: int, processes: int, concurrency: int = 32) -> dict[str, Any]:
    """Start ``n`` three-step runs, then drain them with ``processes`` worker processes."""
    with fresh_schema() as url, _engine(url) as eng:
        t0 = time.perf_counter()
        for i in range(n):
            eng.start(THROUGHPUT_WORKFLOW, i)
        start_s = time.perf_counter() - t0
        drained = onward_bench.drain_by_processes(
            eng, url, tmp, f"pg-{processes}", n, processes, concurrency,
            timeout=max(180.0, n / 5), interval=0.05)
    return {**drained, "start_seconds": start_s, "starts_per_s": n / start_s}


def recovery_restart(tmp: Path) -> dict[str, Any]:
    """kill -9 a worker inside an activity; time a new worker process to finish the run."""
    with fresh_schema() as url:
        return onward_bench.recovery_restart(tmp, db=url, tag="pg-")


def recovery_takeover(tmp: Path) -> dict[str, Any]:
    """Two workers; kill -9 the one running the attempt; time until the other finishes it."""
    with fresh_schema() as url:
        return onward_bench.recovery_takeover(tmp, db=url, tag="pg-")


# -- DBOS on PostgreSQL -------------------------------------------------------------------
@contextmanager
def fresh_database() -> Iterator[str]:
    """A URL naming a new database on the same server (DBOS creates it), dropped after."""
    import psycopg
    name = f"onward_bench_dbos_{uuid.uuid4().hex[:10]}"
    base, _, query = BASE_URL.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")
    try:
        yield url
    finally:
        with psycopg.connect(BASE_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
