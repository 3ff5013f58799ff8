"""Opening an SQLite database: many processes at once (guarantee 5), and read-only files."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from onward.errors import DatabaseMissing
from onward.store.schema import APPLICATION_ID, SCHEMA_VERSION
from onward.store.sqlite import SqliteStore
from tests.helpers import WorkerProcess, cli, env_for, wait_until
from tests.unit.test_migrations import make_v1_database

OPENERS = 8


def _open_at_once(path: str, barrier: Any, results: Any, create: bool = True) -> None:
    """In a child process: wait for every sibling, then open (and maybe create) ``path``;
    a reader (``create`` False) may find it missing or empty, and says so."""
    try:
        barrier.wait(timeout=60)
        try:
            store = SqliteStore(path, create=create)
        except DatabaseMissing:
            results.put("missing")
            return
        try:
            with (store.write() if create else store.read()) as tx:
                tx.execute("SELECT count(*) FROM runs")
        finally:
            store.close()
        results.put("ok")
    except BaseException:  # noqa: BLE001 - the parent reports what each child hit
        results.put(traceback.format_exc())


def _race(path: Path, openers: int = OPENERS, readers: int = 0) -> list[str]:
    """``openers`` real processes released together onto one file (the first ``readers``
    of them as read commands, which create nothing); what each reported."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(openers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_open_at_once, args=(str(path), barrier, results,
                                                     n >= readers))
             for n in range(openers)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return outcomes


def _schema_is_current(path: Path) -> None:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert conn.execute("PRAGMA user_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("PRAGMA application_id").fetchall() == [(APPLICATION_ID,)]
        assert conn.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "events", "timers"} <= tables
    finally:
        conn.close()


def test_many_processes_creating_one_new_database_at_once_all_succeed(tmp_path: Path
                                                                       ) -> None:
    path = tmp_path / "new.db"
    outcomes = _race(path)
    assert outcomes == ["ok"] * OPENERS, "\n".join(o for o in outcomes if o != "ok")
    _schema_is_current(path)


def test_read_commands_racing_the_creators_of_a_new_database_see_it_or_miss_it(
        tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    outcomes = _race(path, readers=OPENERS // 2)
    assert set(outcomes) <= {"ok", "missing"}, "\n".join(
        o for o in outcomes if o not in ("ok", "missing"))
    assert outcomes.count("ok") >= OPENERS // 2  # every creator
    _schema_is_current(path)


@pytest.mark.parametrize("state", ["an empty file", "a version 1 database"])
def test_many_processes_setting_up_or_upgrading_one_file_at_once_all_succeed(
        state: str, tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    if state == "an empty file":
        path.touch()  # what a creator leaves when it dies before setting the schema up
    else:
        make_v1_database(path)
    outcomes = _race(path)
    assert outcomes == ["ok"] * OPENERS, "\n".join(o for o in outcomes if o != "ok")
    _schema_is_current(path)
    if state == "a version 1 database":
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            assert conn.execute("SELECT workflow_id FROM runs").fetchall() == [("old",)]
        finally:
            conn.close()


# -- a database this user may only read (tests run as root, so the reader is `nobody`) ----

BASIC = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _as_nobody(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AS_NOBODY, *argv], capture_output=True, text=True,
                          env=env_for(), timeout=120, cwd=cwd)


def _nobody_can_run_onward() -> str:
    """Why these tests cannot run here ('' when they can)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return "needs root and setpriv to read as an unprivileged user"
    probe = _as_nobody(sys.executable, "-c", "import onward.cli")
    return "" if probe.returncode == 0 else f"nobody cannot import the repo: {probe.stderr}"


@pytest.fixture
def locked_folder() -> Iterator[Path]:
    """A folder everyone may read (pytest's tmp folders are private to root); made
    read-only for others by the test, cleaned up after."""
    reason = _nobody_can_run_onward()
    if reason:
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="onward-ro-"))
    folder.chmod(0o755)
    yield folder
    folder.chmod(0o755)
    shutil.rmtree(folder)


def _written_by_a_worker(folder: Path) -> Path:
    """A WAL database that a real worker process wrote and then closed cleanly."""
    db = folder / "onward.db"
    start = cli("start", "signals", "--db", str(db), "--flows", BASIC, "--input", "[2]",
                "--id", "sig-1")
    assert start.returncode == 0, start.stderr
    assert cli("start", "three_steps", "--db", str(db), "--flows", BASIC, "--input", "[1]",
               "--id", "done-1").returncode == 0
    with WorkerProcess(db, flows=[BASIC]) as worker:
        wait_until(lambda: cli("result", "done-1", "--db", str(db)).returncode == 0,
                   message="done-1 to complete")
        assert cli("signal", "sig-1", "item", "--payload", '"one"', "--db", str(db)
                   ).returncode == 0
        wait_until(lambda: '"one"' in cli("query", "sig-1", "received", "--db", str(db),
                                          "--flows", BASIC).stdout,
                   message="the signal to be handled")
        assert worker.stop() == 0
    assert not (folder / "onward.db-wal").exists()  # a clean close leaves only the file
    return db


def _lock(folder: Path, db: Path) -> str:
    db.chmod(0o444)
    folder.chmod(0o555)
    return hashlib.sha256(db.read_bytes()).hexdigest()


READ_COMMANDS = [["list"], ["show", "sig-1"], ["result", "done-1"], ["tasks"],
                 ["query", "sig-1", "received", "--flows", BASIC],
                 ["replay", "--flows", BASIC, "done-1"]]


def test_read_commands_work_on_a_database_this_user_may_only_read(locked_folder: Path
                                                                   ) -> None:
    db = _written_by_a_worker(locked_folder)
    digest = _lock(locked_folder, db)
    for command in READ_COMMANDS:
        done = _as_nobody(sys.executable, "-m", "onward.cli", *command, "--db", str(db))
        assert done.returncode == 0, f"onward {' '.join(command)}: {done.stderr}"
    listed = _as_nobody(sys.executable, "-m", "onward.cli", "list", "--json", "--db", str(db))
    assert {r["id"] for r in json.loads(listed.stdout)} == {"sig-1", "done-1"}
    assert _as_nobody(sys.executable, "-m", "onward.cli", "result", "done-1", "--db",
                      str(db)).stdout.strip() == "4"
    assert sorted(p.name for p in locked_folder.iterdir()) == ["onward.db"]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_a_write_to_a_database_this_user_may_only_read_is_one_clear_line(
        locked_folder: Path) -> None:
    db = _written_by_a_worker(locked_folder)
    digest = _lock(locked_folder, db)
    for command in (["terminate", "sig-1"], ["signal", "sig-1", "item"],
                    ["start", "three_steps", "--flows", BASIC, "--input", "[1]"]):
        done = _as_nobody(sys.executable, "-m", "onward.cli", *command, "--db", str(db))
        assert done.returncode in (1, 2), done
        assert len(done.stderr.strip().splitlines()) == 1 and "read-only" in done.stderr, \
            done.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_reads_see_a_live_worker_on_a_database_this_user_may_only_read(
        locked_folder: Path) -> None:
    """While a worker holds the database open its -shm file exists: a reader uses it (not a
    snapshot) and sees runs that start after it opened."""
    db = _written_by_a_worker(locked_folder)
    db.chmod(0o444)  # before the worker opens it: SQLite gives -shm and -wal the same mode
    with WorkerProcess(db, flows=[BASIC]):
        _lock(locked_folder, db)
        script = (
            "import sys; from onward import Engine\n"
            "eng = Engine(sys.argv[1], create=False)\n"
            "before = {r['id'] for r in eng.list()}\n"
            "print(sorted(before), eng.store.snapshot, flush=True)\n"
            "sys.stdin.readline()\n"
            "print(sorted({r['id'] for r in eng.list()}), flush=True)\n")
        reader = subprocess.Popen([*AS_NOBODY, sys.executable, "-c", script, str(db)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env_for())
        assert reader.stdout is not None and reader.stdin is not None
        first = reader.stdout.readline()
        assert first.strip() == "['done-1', 'sig-1'] False", reader.stderr.read() \
            if reader.poll() is not None else first
        assert cli("start", "three_steps", "--db", str(db), "--flows", BASIC, "--input",
                   "[2]", "--id", "later-1").returncode == 0
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "['done-1', 'later-1', 'sig-1']"
        assert reader.wait(timeout=30) == 0


CONSOLE_SCRIPT = """
import asyncio, sys
from onward import Engine
from onward.console.app import OnwardApp

async def main() -> None:
    eng = Engine(sys.argv[1])  # as `onward console` opens it (a writer command)
    app = OnwardApp(eng, worker=False)
    async with app.run_test(size=(120, 30)) as pilot:
        for _ in range(400):
            table = app.screen.query("RunsTable")
            if table and table.first()._ids:
                break
            await pilot.pause(0.05)
        print(sorted(app.screen.query_one("RunsTable")._ids))
        await pilot.press("enter")
        for _ in range(400):
            if getattr(app.screen, "run", None):
                break
            await pilot.pause(0.05)
        print(app.screen.run.get("id"), app.screen.run.get("status"))
    eng.close()

asyncio.run(main())
"""


def test_console_without_worker_browses_a_database_this_user_may_only_read(
        locked_folder: Path) -> None:
    db = _written_by_a_worker(locked_folder)
    digest = _lock(locked_folder, db)
    done = _as_nobody(sys.executable, "-c", CONSOLE_SCRIPT, str(db), cwd=Path("/"))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "['done-1', 'sig-1']"
    assert lines[1].split()[1] in ("completed", "running")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_creating_a_database_in_a_folder_this_user_may_not_write_is_one_clear_line(
        locked_folder: Path) -> None:
    locked_folder.chmod(0o555)
    db = locked_folder / "new.db"
    done = _as_nobody(sys.executable, "-m", "onward.cli", "start", "three_steps", "--flows",
                      BASIC, "--input", "[1]", "--db", str(db))
    assert done.returncode in (1, 2)
    assert done.stderr.strip() == f"onward: cannot create {db}: Permission denied"
    assert list(locked_folder.iterdir()) == []


def test_change_token_is_safe_from_many_threads_at_once(tmp_path: Path) -> None:
    """Result waiters on many threads read the store's change token at the same moment;
    one shared connection used concurrently raised apsw's ThreadingViolationError."""
    import sys
    import threading

    from onward.store.sqlite import SqliteStore
    store = SqliteStore(tmp_path / "tokens.db")
    errors: list[BaseException] = []
    go = threading.Barrier(16)

    def read() -> None:
        go.wait()
        try:
            for _ in range(2000):
                store.change_token()
        except BaseException as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=read) for _ in range(16)]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads change places often enough to overlap in apsw
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switching)
        store.close()
    assert errors == []
