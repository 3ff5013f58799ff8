"""PostgreSQL for tests: a fresh schema per test, skipped cleanly where there is no server.

``$ONWARD_PG_URL`` names the server (default ``postgresql://postgres@127.0.0.1:5432/test``).
Each test gets ``onward_test_<random>`` in its ``search_path`` and ``application_name``; the
schema is dropped afterwards, after ending any connection a worker process left behind.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BASE_URL = os.environ.get("ONWARD_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _where(url: str) -> str:
    rest = url.split("@", 1)[-1].split("/", 1)[0]
    return rest if ":" in rest else f"{rest or 'localhost'}:5432"


SKIP_MESSAGE = (f"PostgreSQL not reachable at {_where(BASE_URL)} (start it, or set "
                "ONWARD_PG_URL); skipping")


@functools.cache
def unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'onward[postgres]'); skipping"
    try:
        with psycopg.connect(BASE_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return SKIP_MESSAGE
    return None


def url_for(schema: str, base: str = BASE_URL) -> str:
    """``base`` with ``schema`` as its search path (and as the connections' name)."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}&application_name={schema}"


def drop_schema(schema: str, base: str = BASE_URL) -> None:
    """End the connections that used ``schema`` and drop it."""
    import psycopg
    with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL URL on a fresh, private schema (created by the first store opened)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    schema = f"onward_test_{uuid.uuid4().hex[:12]}"
    try:
        yield url_for(schema)
    finally:
        drop_schema(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Each test twice: on an SQLite file, then on a PostgreSQL schema."""
    if request.param == "sqlite":
        return tmp_path / "onward.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def more_dbs(any_db: str | Path, tmp_path: Path) -> Iterator[Callable[[str], str | Path]]:
    """More databases of ``any_db``'s kind: ``more_dbs("name")`` is a fresh SQLite file or
    PostgreSQL schema (dropped afterwards), for tests that compare two databases."""
    schemas: list[str] = []

    def make(name: str) -> str | Path:
        if isinstance(any_db, Path):
            return tmp_path / f"{name}.db"
        schemas.append(f"onward_test_{uuid.uuid4().hex[:12]}")
        return url_for(schemas[-1])

    try:
        yield make
    finally:
        for schema in schemas:
            drop_schema(schema)
