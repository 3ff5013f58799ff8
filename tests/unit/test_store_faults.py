"""Storage faults in one process: a full disk, a locked database, a torn or corrupt file.

A full disk is simulated with an APSW VFS shim that makes every write fail with
SQLITE_FULL while a switch is on: unlike ``PRAGMA max_page_count`` (a per-connection
setting that another connection cannot impose on the engine's own connections) it reaches
every connection the engine opens, and unlike a tiny tmpfs it needs no root. The tmpfs
variant, with a real worker process, is in ``tests/scenarios/test_faults.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from onward import Engine, StoreError
from onward.cli import main
from onward.errors import BadInput, DatabaseCorrupt
from tests.helpers import wait_until

FLOWS = str(Path(__file__).resolve().parents[1] / "flows" / "soak.py")
PAGE = 4096


# --------------------------------------------------------------------------- a full disk


class FullSwitch:
    """Turns the shim's SQLITE_FULL on and off; counts the writes it refused."""

    def __init__(self) -> None:
        self.full = False
        self.refused = 0


class _FullFile(apsw.VFSFile):
    def __init__(self, switch: FullSwitch, name: Any, flags: list[int]) -> None:
        super().__init__("unix", name, flags)
        self.switch = switch

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802 - APSW's name
        if self.switch.full:
            self.switch.refused += 1
            raise apsw.FullError("injected: no space left on device")
        super().xWrite(data, offset)


class _FullVFS(apsw.VFS):
    def __init__(self, switch: FullSwitch) -> None:
        self.switch = switch
        super().__init__("onward-test-full", base="unix", makedefault=True)

    def xOpen(self, name: Any, flags: list[int]) -> apsw.VFSFile:  # noqa: N802
        return _FullFile(self.switch, name, flags)


@pytest.fixture
def disk() -> Iterator[FullSwitch]:
    """Every SQLite file opened during the test sits on a disk that can be made full."""
    switch = FullSwitch()
    vfs = _FullVFS(switch)
    try:
        yield switch
    finally:
        apsw.set_default_vfs("unix")
        vfs.unregister()


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1


def test_start_on_a_full_disk_fails_clearly_and_leaves_nothing(disk: FullSwitch,
                                                             db_path: Path) -> None:
    eng = Engine(db_path, flows=[FLOWS])
    try:
        disk.full = True
        with pytest.raises(StoreError, match="disk or database is full") as caught:
            eng.start("quick", 1, id="a")
        assert one_line(str(caught.value)) and str(db_path) in str(caught.value)
        assert disk.refused >= 1
        disk.full = False
        assert eng.list(all_runs=True) == []
        assert eng.start("quick", 1, id="a").created
        assert eng.store.check_integrity() == "ok"
    finally:
        eng.close()


def test_cli_on_a_full_disk_exits_1_with_one_line(disk: FullSwitch, db_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    Engine(db_path, flows=[FLOWS]).close()
    disk.full = True
    code = main(["start", "quick", "--db", str(db_path), "--flows", FLOWS, "--input", "[1]"])
    err = capsys.readouterr().err
    assert code == 1 and one_line(err) and "disk or database is full" in err
    assert "Traceback" not in err
    code = main(["worker", "--db", str(db_path), "--flows", FLOWS, "--no-watch"])
    err = capsys.readouterr().err
    assert code == 1 and "disk or database is full" in err and "Traceback" not in err
    disk.full = False
    assert main(["list", "--db", str(db_path)]) == 0
    assert "no runs" in capsys.readouterr().out


def test_worker_backs_off_while_the_disk_is_full_then_resumes(disk: FullSwitch,
                                                              db_path: Path) -> None:
    eng = Engine(db_path, flows=[FLOWS])
    try:
        with eng.worker(concurrency=4) as worker:
            handles = [eng.start("soak_timer", 0.4, i, id=f"t{i}") for i in range(4)]
            wait_until(lambda: all("TimerStarted" in kinds(eng, h.id) for h in handles),
                       message="every run waiting on its timer")
            disk.full = True
            ticks, started = worker.ticks, time.monotonic()
            cpu = time.process_time()
            wait_until(lambda: worker.error, timeout=10, message="the worker saw the full disk")
            time.sleep(2.0)  # the disk stays full for a while: count what the worker does
            busy_ticks = worker.ticks - ticks
            cpu_used = time.process_time() - cpu
            elapsed = time.monotonic() - started
            assert "disk or database is full" in str(worker.error)
            # a dispatcher polling every 20 ms would turn ~100 times in 2 s
            assert busy_ticks <= 8 * elapsed + 4, f"{busy_ticks} write attempts in {elapsed:.1f}s"
            assert cpu_used < 0.5 * elapsed, f"{cpu_used:.2f}s of CPU while the disk was full"
            assert all(r["status"] == "running" for r in eng.list())
            disk.full = False
            for i, handle in enumerate(handles):
                assert handle.result(timeout=20) == i + 2
            assert worker.error is None
        for h in handles:
            assert kinds(eng, h.id).count("TimerFired") == 1
            assert kinds(eng, h.id).count("ActivityCompleted") == 2
        assert eng.store.check_integrity() == "ok"
    finally:
        eng.close()


def kinds(eng: Engine, ident: str) -> list[str]:
    return [e["type"] for e in eng.show(ident)["history"]]


# --------------------------------------------------------------------------- a locked file


def hold_write_lock(db: Path, seconds: float) -> threading.Thread:
    """Another connection holds the write lock for ``seconds`` (started and held on return)."""
    held = threading.Event()

    def hold() -> None:
        conn = apsw.Connection(str(db))
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    held.wait(5)
    return thread


def test_a_short_lock_is_waited_out(db_path: Path) -> None:
    eng = Engine(db_path, flows=[FLOWS])
    try:
        holder = hold_write_lock(db_path, 0.6)
        started = time.monotonic()
        eng.start("quick", 1, id="waited")
        assert time.monotonic() - started >= 0.4
        holder.join()
        assert [r["id"] for r in eng.list()] == ["waited"]
    finally:
        eng.close()


def test_a_lock_held_past_the_busy_timeout_fails_clearly(db_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    import onward.store.sqlite as sqlite_store
    Engine(db_path, flows=[FLOWS]).close()
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 300)
    holder = hold_write_lock(db_path, 1.5)
    code = main(["start", "quick", "--db", str(db_path), "--flows", FLOWS, "--input", "[1]"])
    err = capsys.readouterr().err
    holder.join()
    assert code == 1 and one_line(err) and "locked" in err and "Traceback" not in err
    assert main(["list", "--db", str(db_path)]) == 0
    assert "no runs" in capsys.readouterr().out


# --------------------------------------------------------------------------- a damaged file


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Onward database with some history, checkpointed into the main file."""
    path = tmp_path_factory.mktemp("pristine") / "onward.db"
    eng = Engine(path, flows=[FLOWS])
    with eng.worker():
        for i in range(120):
            eng.start("quick", i, id=f"r{i}")
        wait_until(lambda: not eng.list("running"), timeout=30, message="all runs done")
    eng.close()
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


def damaged(pristine: Path, tmp_path: Path, damage: str) -> Path:
    path = tmp_path / f"{damage}.db"
    shutil.copy(pristine, path)
    size = path.stat().st_size
    assert size >= 16 * PAGE

    def overwrite(offset: int, data: bytes) -> None:
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(data)

    if damage == "truncated mid-page":
        os.truncate(path, size - 3 * PAGE - 1234)
    elif damage == "truncated to half":
        os.truncate(path, size // 2 + 77)
    elif damage == "truncated inside the header":
        os.truncate(path, 60)
    elif damage == "header magic overwritten":
        overwrite(0, b"garbage garbage!")
    elif damage == "impossible page size":
        overwrite(16, b"\x00\x03")
    elif damage == "schema page scrambled":
        overwrite(100, bytes(range(256)) * 2)
    elif damage == "runs table page scrambled":
        overwrite((root_page(pristine, "runs") - 1) * PAGE, b"\xa5" * PAGE)
    elif damage == "not a database":
        path.write_text("these are my notes, not a database\n" * 50)
    else:  # pragma: no cover
        raise ValueError(damage)
    return path


def root_page(db: Path, table: str) -> int:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                            (table,)).fetchall()
    finally:
        conn.close()
    return int(rows[0][0])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


AT_OPEN = ["truncated mid-page", "truncated to half", "truncated inside the header",
           "header magic overwritten", "impossible page size", "schema page scrambled",
           "not a database"]
READS_RUNS: list[list[str]] = [
    ["list"], ["show", "r1"], ["result", "r1"], ["signal", "r1", "go"], ["cancel", "r1"],
    ["start", "quick", "--flows", FLOWS, "--input", "[1]", "--id", "fresh"],
]
ALL_COMMANDS = [*READS_RUNS, ["tasks"], ["worker", "--flows", FLOWS, "--no-watch"]]


def assert_refused(path: Path, commands: list[list[str]], damage: str,
                   capsys: pytest.CaptureFixture[str]) -> None:
    before = sha256(path)
    for command in commands:
        code = main([*command, "--db", str(path)])
        out, err = capsys.readouterr()
        what = f"onward {command[0]} on a database with {damage}"
        assert code == 2, f"{what}: exit {code}, stderr {err!r}"
        assert one_line(err) and err.startswith("onward: "), f"{what}: {err!r}"
        assert str(path) in err and ("corrupt" in err or "not an" in err), f"{what}: {err!r}"
        assert "Traceback" not in err + out
        assert sha256(path) == before, f"{what} changed the file"
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0


@pytest.mark.parametrize("damage", AT_OPEN)
def test_damaged_database_is_refused_at_open_without_writing(
        damage: str, pristine: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = damaged(pristine, tmp_path, damage)
    before = sha256(path)
    assert_refused(path, ALL_COMMANDS, damage, capsys)
    with pytest.raises(DatabaseCorrupt):
        Engine(path, create=False)
    assert sha256(path) == before


def test_a_scrambled_table_page_is_refused_when_read(pristine: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = damaged(pristine, tmp_path, "runs table page scrambled")
    assert_refused(path, READS_RUNS, "runs table page scrambled", capsys)


def test_a_scrambled_table_page_is_found_when_a_worker_opens_it(pristine: Path,
                                                                tmp_path: Path) -> None:
    path = damaged(pristine, tmp_path, "runs table page scrambled")
    before = sha256(path)
    eng = Engine(path, flows=[FLOWS])  # a plain open checks the header and schema only
    try:
        with pytest.raises(DatabaseCorrupt, match="integrity check|corrupt"):
            with eng.worker():
                pass
    finally:
        eng.close()
    assert sha256(path) == before


def test_a_folder_or_a_missing_file_is_bad_input_and_nothing_is_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--db", str(tmp_path)]) == 2
    assert "folder" in capsys.readouterr().err
    missing = tmp_path / "missing.db"
    for command in (["list"], ["show", "x"], ["tasks"], ["result", "x"]):
        assert main([*command, "--db", str(missing)]) == 2
        err = capsys.readouterr().err
        assert one_line(err) and "no database" in err
    assert not missing.exists()
    assert main(["start", "quick", "--db", str(tmp_path / "no" / "such" / "x.db")]) in (1, 2)
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """Another application's SQLite database, in rollback-journal mode."""
    path = tmp_path / "other-app.db"
    conn = apsw.Connection(str(path))
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me as I am')")
    conn.close()
    return path


def test_another_applications_database_is_refused(foreign: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["list"], ["start", "quick", "--flows", FLOWS, "--input", "[1]"]):
        assert main([*command, "--db", str(foreign)]) == 2
        err = capsys.readouterr().err
        assert one_line(err) and "not an Onward one" in err


@pytest.mark.parametrize("kind", ["another application's database", "an empty file"])
def test_a_refused_file_is_left_byte_for_byte(kind: str, foreign: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = foreign if kind.startswith("another") else tmp_path / "empty.db"
    path.touch()
    before = sha256(path)
    assert main(["list", "--db", str(path)]) == 2
    capsys.readouterr()
    assert sha256(path) == before


def test_an_empty_file_is_not_set_up_by_a_read_command(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert main(["list", "--db", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    with pytest.raises(BadInput):
        Engine(empty, create=False)
    conn = apsw.Connection(str(empty), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchall() == [(0,)]
    finally:
        conn.close()
