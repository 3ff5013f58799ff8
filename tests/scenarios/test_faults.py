"""Faults around real worker processes: a full disk, lock contention, hung activities.

* The disk fills up (a small tmpfs, when this test may mount one): writes fail with a clear
  message, the worker backs off instead of spinning, nothing is corrupted or run twice,
  and the work resumes once space returns.
* Four processes hammer one database with starts and signals while a worker runs: every
  lock wait is absorbed, nobody crashes, every run finishes.
* An activity hangs past its start-to-close or heartbeat timeout: the timeout fires while
  it is still hung, the next attempt completes the activity, and the abandoned attempt's
  late result is ignored, even when it reaches the store from a worker that was frozen
  (SIGSTOP) while another worker timed its attempt out.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from onward import Engine
from tests.helpers import REPO, WorkerProcess, cli, env_for, wait_until
from tests.helpers import executions as read_log

pytestmark = pytest.mark.slow

FLOWS = REPO / "tests" / "flows" / "soak.py"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return env_for(ONWARD_TEST_LOG=str(tmp_path / "executions.jsonl"),
                   ONWARD_SOAK_DELAY="0.01")


def executions(env: dict[str, str], kind: str | None = None) -> list[dict[str, Any]]:
    lines = read_log(Path(env["ONWARD_TEST_LOG"]))
    return [line for line in lines if kind is None or line["kind"] == kind]


def worker(db: Path, env: dict[str, str], log: Path, **kw: Any) -> WorkerProcess:
    return WorkerProcess(db, flows=[FLOWS], env=env, log=log, extra=["--no-watch"],
                         **kw).wait_ready()


def history(eng: Engine, ident: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in eng.show(ident)["history"] if e["type"] == kind]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (skipped where this process may not mount one)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; tests/unit/test_store_faults.py "
                    "covers a full disk with a VFS shim instead")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of ``folder`` up, then free ``leave`` bytes; the filler file."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def test_full_disk_fails_writes_clearly_backs_off_and_resumes(small_disk: Path,
                                                              tmp_path: Path,
                                                              env: dict[str, str]) -> None:
    db = small_disk / "onward.db"
    eng = Engine(db, flows=[str(FLOWS)])
    w = worker(db, env, tmp_path / "worker.log", concurrency=2)
    try:
        assert eng.start("quick", 1, id="warm-up").result(timeout=20) == 2
        conn = apsw.Connection(str(db))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the next writes must grow files
        conn.close()
        filler = fill(small_disk, leave=0)
        done = cli("start", "quick", "--db", str(db), "--flows", str(FLOWS), "--input", "[1]",
                   "--id", "while-full", env=env)
        assert done.returncode == 1, done.stderr
        assert done.stderr.count("\n") == 1 and "disk or database is full" in done.stderr
        assert "Traceback" not in done.stderr

        os.truncate(filler, filler.stat().st_size - 256 * 1024)  # room to start, not to finish
        handles = [eng.start("big_steps", 4, 300, id=f"big{i}") for i in range(3)]
        wait_until(lambda: "disk or database is full" in (tmp_path / "worker.log").read_text(),
                   timeout=20, message="the worker reports the full disk")

        cpu, started = cpu_seconds(w.pid), time.monotonic()
        time.sleep(3.0)  # the disk stays full: the worker must not spin meanwhile
        used, elapsed = cpu_seconds(w.pid) - cpu, time.monotonic() - started
        assert used < 0.3 * elapsed, f"worker used {used:.2f}s CPU in {elapsed:.1f}s"
        assert w.proc.poll() is None, "the worker must survive a full disk"

        filler.unlink()  # space returns
        for handle in handles:
            assert handle.result(timeout=30) == 4 * 300 * 1024
        assert eng.start("quick", 2, id="after").result(timeout=20) == 3
        assert w.stop() == 0
    finally:
        w.kill()
    for handle in handles:
        completed = history(eng, handle.id, "ActivityCompleted")
        assert sorted(e["attrs"]["ref"] for e in completed) == sorted(
            {e["attrs"]["ref"] for e in completed}) and len(completed) == 4
    runs = collections.Counter((x["key"], x["attempt"]) for x in executions(env, "soak.big"))
    assert runs and set(runs.values()) == {1}, "a result that could not be saved was re-run"
    assert eng.list("running") == [] and eng.list("stuck") == []
    assert "while-full" not in {r["id"] for r in eng.list(all_runs=True)}
    eng.close()
    conn = apsw.Connection(str(db))
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log


# --------------------------------------------------------------------------- contention

HAMMER = """
import sys
from onward import Engine
db, flows, who, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
eng = Engine(db, flows=[flows])
for i in range(count):
    ident = f"h{who}-{i}"
    eng.start("soak_signal", i, id=ident)
    eng.signal(ident, "go", 1)
    again = eng.start("soak_signal", i, id=ident)   # a retried start starts nothing
    assert not again.created
    eng.list(limit=20)
eng.close()
"""


def test_four_processes_hammering_one_database_all_get_through(db_path: Path, tmp_path: Path,
                                                               env: dict[str, str]) -> None:
    Engine(db_path, flows=[str(FLOWS)]).close()
    count = 40
    with worker(db_path, env, tmp_path / "worker.log", concurrency=4):
        hammers = [subprocess.Popen([sys.executable, "-c", HAMMER, str(db_path), str(FLOWS),
                                     str(k), str(count)], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for k in range(4)]
        for proc in hammers:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and err == "", err[-2000:]
        eng = Engine(db_path, flows=[str(FLOWS)])
        try:
            for k in range(4):
                for i in range(count):
                    assert eng.handle(f"h{k}-{i}").result(timeout=60) == i + 2
            assert len(eng.list(all_runs=True)) == 4 * count
            assert all(len(history(eng, f"h{k}-0", "SignalReceived")) == 1 for k in range(4))
        finally:
            eng.close()
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


# --------------------------------------------------------------------------- hung activities


def attempt_lines(env: dict[str, str], phase: str, attempt: int) -> list[dict[str, Any]]:
    return [x for x in executions(env, "soak.late")
            if x["phase"] == phase and x["attempt"] == attempt]


@pytest.mark.parametrize("heartbeat", [False, True], ids=["start-to-close", "heartbeat"])
def test_timeout_fires_while_hung_and_the_late_result_is_ignored(
        heartbeat: bool, db_path: Path, env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONWARD_TEST_LOG", env["ONWARD_TEST_LOG"])
    eng = Engine(db_path, flows=[str(FLOWS)])
    try:
        with eng.worker(concurrency=2):
            handle = eng.start("late_result", 1.5, 0.3, heartbeat, id="late")
            assert handle.result(timeout=20) == "fresh"
            late_end = wait_until(lambda: attempt_lines(env, "end", 1), timeout=10,
                                  message="the hung attempt returns after all")
        failed = history(eng, "late", "ActivityAttemptFailed")
        completed = history(eng, "late", "ActivityCompleted")
        which = "HeartbeatTimeout" if heartbeat else "StartToCloseTimeout"
        assert [e["attrs"]["error"]["type"] for e in failed] == [which]
        assert failed[0]["attrs"]["attempt"] == 1
        assert len(completed) == 1
        assert completed[0]["attrs"]["attempt"] == 2 and completed[0]["attrs"]["result"] == \
            "fresh"
        timed_out_at = _epoch(failed[0]["time"])
        assert timed_out_at < late_end[0]["t"], "the timeout fired only after the hang ended"
        assert timed_out_at - attempt_lines(env, "start", 1)[0]["t"] < 1.2
    finally:
        eng.close()


def test_late_result_from_a_frozen_worker_is_fenced(db_path: Path, tmp_path: Path,
                                                    env: dict[str, str]) -> None:
    eng = Engine(db_path, flows=[str(FLOWS)])
    frozen = worker(db_path, env, tmp_path / "frozen.log", concurrency=2)
    other: WorkerProcess | None = None
    try:
        handle = eng.start("late_result", 2.0, 0.5, id="frozen")
        first = wait_until(lambda: attempt_lines(env, "start", 1), timeout=20,
                           message="attempt 1 running")
        assert first[0]["pid"] == frozen.pid
        os.kill(frozen.pid, signal.SIGSTOP)  # a frozen VM, a debugger, a swap storm
        other = worker(db_path, env, tmp_path / "other.log", concurrency=2)
        assert handle.result(timeout=20) == "fresh"
        os.kill(frozen.pid, signal.SIGCONT)
        wait_until(lambda: attempt_lines(env, "end", 1), timeout=20,
                   message="the frozen attempt returns its late result")
        assert frozen.stop() == 0  # a graceful stop records what it still holds: fenced
        assert other.stop() == 0
    finally:
        if frozen.proc.poll() is None:
            os.kill(frozen.pid, signal.SIGCONT)
        frozen.kill()
        if other is not None:
            other.kill()
    completed = history(eng, "frozen", "ActivityCompleted")
    assert len(completed) == 1 and completed[0]["attrs"]["attempt"] == 2
    assert completed[0]["attrs"]["result"] == "fresh"
    failed = history(eng, "frozen", "ActivityAttemptFailed")
    assert [(e["attrs"]["attempt"], e["attrs"]["error"]["type"]) for e in failed] == [
        (1, "StartToCloseTimeout")]
    assert eng.show("frozen")["status"] == "completed"
    assert attempt_lines(env, "end", 2)[0]["pid"] == other.pid
    for log in ("frozen.log", "other.log"):
        assert "Traceback" not in (tmp_path / log).read_text()
    eng.close()


def _epoch(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso).timestamp()
