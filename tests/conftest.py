"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import onward
from onward import Engine
from tests.helpers import REPO, kill_leftover_workers, worker_logs_in
from tests.pg import any_db, more_dbs, pg_url  # noqa: F401 - fixtures: a database of each kind

if Path(onward.__file__).resolve().parent != REPO / "engine":
    pytest.exit(f"onward is imported from {Path(onward.__file__).parent}, not from this "
                f"checkout ({REPO}): run `pip install -e .` here (or `make test`)", returncode=4)


@pytest.fixture(autouse=True)
def _no_leftover_workers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Worker subprocesses never outlive the test that started them; their logs go to its
    ``tmp_path`` (made only when a worker is started without a log path of its own)."""
    worker_logs_in(lambda: Path(request.getfixturevalue("tmp_path")))
    yield
    worker_logs_in(None)
    kill_leftover_workers()


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file test activities log each execution to (``$ONWARD_TEST_LOG``)."""
    path = tmp_path / "executions.jsonl"
    monkeypatch.setenv("ONWARD_TEST_LOG", str(path))
    return path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private folder for the sample providers' state (bank ledger, printer, outbox)."""
    folder = tmp_path / "provider-data"
    folder.mkdir()
    monkeypatch.setenv("ONWARD_DATA", str(folder))
    return folder


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh database file path."""
    return tmp_path / "onward.db"


@pytest.fixture
def make_engine(db_path: Path) -> Iterator[object]:
    """Build engines on the test's database; all are closed at the end."""
    engines: list[Engine] = []

    def make(**kwargs: object) -> Engine:
        kwargs.setdefault("db", db_path)
        db = kwargs.pop("db")
        eng = Engine(db, **kwargs)  # type: ignore[arg-type]
        engines.append(eng)
        return eng

    yield make
    for eng in engines:
        eng.close()
