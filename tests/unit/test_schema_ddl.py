"""The schema each backend builds, version by version, is the one recorded before the DDL
stopped being rewritten with regular expressions: existing databases keep upgrading.

``tests/unit/data/schema_sqlite.txt`` and ``schema_postgresql.txt`` were written from the
schema as it stood (sqlite_master; information_schema and pg_indexes), at every version.
"""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from onward.store.schema import APPLICATION_ID, SCHEMA_VERSION
from tests.pg import pg_url  # noqa: F401 - a fixture

DATA = Path(__file__).resolve().parent / "data"


def sqlite_steps() -> list[list[str]]:
    """The SQLite migrations, as the store applies them."""
    from onward.store.sqlite import SqliteStore
    return SqliteStore.migrations()


def postgres_steps() -> list[list[str]]:
    """The PostgreSQL migrations, as the store applies them."""
    from onward.store.postgres import PostgresStore
    return PostgresStore.migrations()


def sqlite_schema(conn: apsw.Connection) -> list[str]:
    """Every object of an SQLite database with the SQL that created it."""
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                        "ORDER BY type, name")
    return "\n".join(" | ".join(str(v) for v in row) for row in rows).splitlines()


def postgres_schema(conn: object, schema: str) -> list[str]:
    """Every column, index and constraint of ``schema`` (its name replaced by ``S``)."""
    queries = [
        "SELECT 'column', table_name, column_name, data_type, is_nullable, "
        "coalesce(column_default, ''), ordinal_position FROM information_schema.columns "
        "WHERE table_schema = %s ORDER BY table_name, ordinal_position",
        "SELECT 'index', tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s "
        "ORDER BY tablename, indexname",
        "SELECT 'constraint', tc.table_name, tc.constraint_type, "
        "string_agg(kcu.column_name, ',' ORDER BY kcu.ordinal_position) "
        "FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage "
        "kcu ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema "
        "WHERE tc.table_schema = %s GROUP BY tc.table_name, tc.constraint_name, "
        "tc.constraint_type ORDER BY 2, 3, 4",
        "SELECT 'sequence', sequence_name, data_type FROM information_schema.sequences "
        "WHERE sequence_schema = %s ORDER BY 2",
    ]
    lines = []
    for query in queries:
        for row in conn.execute(query, (schema,)).fetchall():  # type: ignore[attr-defined]
            lines.append(" | ".join(str(v) for v in row).replace(schema, "S"))
    return lines


def sqlite_versions(tmp_path: Path) -> list[str]:
    """The schema after each migration, applied to a new file one step at a time."""
    conn = apsw.Connection(str(tmp_path / "steps.db"))
    lines: list[str] = []
    for version, step in enumerate(sqlite_steps(), 1):
        with conn:
            for statement in step:
                conn.execute(statement)
        lines.append(f"-- version {version}")
        lines += sqlite_schema(conn)
    conn.close()
    return lines


def postgres_versions(url: str) -> list[str]:
    """The schema after each migration, applied to a new schema one step at a time."""
    import psycopg
    schema = url.split("search_path%3D", 1)[1].split("&", 1)[0]
    lines: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        for version, step in enumerate(postgres_steps(), 1):
            with conn.transaction():
                for statement in step:
                    conn.execute(statement)
            lines.append(f"-- version {version}")
            lines += postgres_schema(conn, schema)
    return lines


def recorded(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def test_sqlite_migrations_build_the_recorded_schema_at_every_version(tmp_path: Path) -> None:
    assert sqlite_versions(tmp_path) == recorded("schema_sqlite.txt")


def test_a_new_sqlite_store_and_an_upgraded_one_have_the_recorded_schema(
        tmp_path: Path) -> None:
    from onward.store.sqlite import SqliteStore
    final = recorded("schema_sqlite.txt")
    final = final[final.index(f"-- version {SCHEMA_VERSION}") + 1:]
    SqliteStore(tmp_path / "new.db").close()
    for version in range(1, SCHEMA_VERSION):
        old = tmp_path / f"v{version}.db"
        conn = apsw.Connection(str(old))
        with conn:
            for step in sqlite_steps()[:version]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={version}")
        conn.close()
        SqliteStore(old).close()
    for name in ["new.db", *(f"v{v}.db" for v in range(1, SCHEMA_VERSION))]:
        conn = apsw.Connection(str(tmp_path / name))
        assert sqlite_schema(conn) == final, name
        conn.close()


@pytest.mark.postgres
def test_postgres_migrations_build_the_recorded_schema_at_every_version(
        pg_url: str) -> None:  # noqa: F811
    assert postgres_versions(pg_url) == recorded("schema_postgresql.txt")


@pytest.mark.postgres
def test_a_new_postgres_store_has_the_recorded_schema(pg_url: str) -> None:  # noqa: F811
    import psycopg

    from onward.store.postgres import PostgresStore
    PostgresStore(pg_url).close()
    schema = pg_url.split("search_path%3D", 1)[1].split("&", 1)[0]
    final = recorded("schema_postgresql.txt")
    final = final[final.index(f"-- version {SCHEMA_VERSION}") + 1:]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        found = [line for line in postgres_schema(conn, schema) if "onward_schema" not in line]
    assert found == final


@pytest.mark.postgres
@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_an_older_postgres_schema_is_upgraded_to_the_recorded_schema(
        pg_url: str, version: int) -> None:  # noqa: F811
    import psycopg

    from onward.store.postgres import PostgresStore
    schema = pg_url.split("search_path%3D", 1)[1].split("&", 1)[0]
    with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute("CREATE TABLE onward_schema (version INTEGER NOT NULL, "
                     "application BIGINT NOT NULL)")
        conn.execute("INSERT INTO onward_schema VALUES (%s, %s)", (version, APPLICATION_ID))
        for step in postgres_steps()[:version]:
            for statement in step:
                conn.execute(statement)
    PostgresStore(pg_url).close()
    final = recorded("schema_postgresql.txt")
    final = final[final.index(f"-- version {SCHEMA_VERSION}") + 1:]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        found = [line for line in postgres_schema(conn, schema) if "onward_schema" not in line]
    assert found == final
