"""Crash recovery with real worker processes and SIGKILL.

Activities append a line per execution to a log file, so each test can compare what
really ran with what the history recorded: a completed activity never runs again, and an
attempt cut by a crash is recorded as "worker lost" and retried under the same key.
"""

from __future__ import annotations

import collections
import random
from pathlib import Path

import pytest

from onward import Engine
from tests.helpers import REPO, WorkerProcess, env_for, wait_until
from tests.helpers import executions as read_log

pytestmark = pytest.mark.slow

FLOWS = REPO / "tests" / "flows" / "basic.py"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    gates = tmp_path / "gates"
    gates.mkdir()
    return env_for(ONWARD_TEST_LOG=str(tmp_path / "log.jsonl"),
                   ONWARD_TEST_GATES=str(gates))


@pytest.fixture
def db_path(any_db: Path | str) -> Path | str:
    """Every crash test on an SQLite file and on a PostgreSQL schema."""
    return any_db


@pytest.fixture
def client(db_path: Path | str) -> Engine:
    eng = Engine(db_path, flows=[str(FLOWS)])
    yield eng
    eng.close()


def executions(env: dict[str, str]) -> list[dict[str, object]]:
    return read_log(Path(env["ONWARD_TEST_LOG"]))


def worker(db: Path | str, env: dict[str, str], **kw: object) -> WorkerProcess:
    return WorkerProcess(db, flows=[FLOWS], env=env, **kw).wait_ready()  # type: ignore[arg-type]


def attempts_by_key(client: Engine, ident: str) -> dict[str, list[dict[str, object]]]:
    shown = client.show(ident)
    lineage = shown["run_id"]
    found: dict[str, list[dict[str, object]]] = collections.defaultdict(list)
    for e in shown["history"]:
        if e["type"] in ("ActivityAttemptFailed", "ActivityCompleted"):
            found[f"{lineage}-{e['attrs']['ref']}"].append(e)
    return found


def assert_nothing_repeated(client: Engine, env: dict[str, str], ids: list[str]) -> None:
    """Per activity: no attempt number ran twice, and nothing ran after its completion."""
    log = executions(env)
    ran: dict[str, list[int]] = collections.defaultdict(list)
    for line in log:
        ran[str(line["key"])].append(int(line["attempt"]))  # type: ignore[arg-type]
    for ident in ids:
        for key, events in attempts_by_key(client, ident).items():
            attempts = ran.get(key, [])
            assert len(attempts) == len(set(attempts)), f"{ident}: an attempt of {key} ran twice"
            completed = [e for e in events if e["type"] == "ActivityCompleted"]
            assert len(completed) <= 1, f"{ident}: {key} completed twice"
            if completed:
                done_at = completed[0]["attrs"]["attempt"]
                assert all(a <= done_at for a in attempts), f"{key} ran after completing"
            assert len(attempts) <= len(events), f"{key}: unrecorded executions"


def test_kill_during_an_activity_resumes_without_repeating(client: Engine, db_path: Path | str,
                                                           env: dict[str, str]) -> None:
    gates = Path(env["ONWARD_TEST_GATES"])
    (gates / "gate2").touch()
    w = worker(db_path, env)
    client.start("gated", 1, id="g")
    wait_until(lambda: (gates / "gate2.entered").exists(), message="second step running")
    w.kill()
    (gates / "gate2").unlink()
    with worker(db_path, env):
        assert client.handle("g").result(timeout=30) == 4
    labels = [line["label"] for line in executions(env)]
    assert labels.count("gate1") == 1 and labels.count("gate3") == 1
    lost = [e for e in client.show("g")["history"] if e["type"] == "ActivityAttemptFailed"]
    assert len(lost) == 1 and lost[0]["attrs"]["error"]["type"] == "WorkerLost"
    assert_nothing_repeated(client, env, ["g"])


def test_kill_at_random_moments_many_times(client: Engine, db_path: Path | str,
                                           env: dict[str, str]) -> None:
    rng = random.Random(7)
    env = dict(env, ONWARD_TEST_STEP_DELAY="0.02")
    ids = [f"r{i}" for i in range(40)]
    for i, ident in enumerate(ids):
        client.start("three_steps" if i % 2 else "fan_out", i if i % 2 else 3, id=ident)
    kills = 0
    for _ in range(8):
        w = worker(db_path, env, concurrency=4)
        target = len(executions(env)) + rng.randint(1, 8)
        wait_until(lambda t=target: len(executions(env)) >= t or not client.list("running"),
                   timeout=30, message="some progress before the kill")
        w.kill()
        kills += 1
    with worker(db_path, env, concurrency=4):
        for i, ident in enumerate(ids):
            expected = i + 3 if i % 2 else [1, 2, 3]
            assert client.handle(ident).result(timeout=60) == expected, ident
    assert kills == 8
    lost = sum(1 for ident in ids for e in client.show(ident)["history"]
               if e["type"] == "ActivityAttemptFailed")
    assert lost >= 1, "the kills should have cut some attempts"
    assert_nothing_repeated(client, env, ids)


def timer_due(client: Engine) -> bool:
    """Whether some timer is due by the engine's clock."""
    with client.store.read() as tx:
        return bool(tx.one("SELECT 1 FROM timers WHERE fire_at <= ?", (client.clock(),)))


def test_timer_due_while_down_fires_once(client: Engine, db_path: Path | str,
                                         env: dict[str, str]) -> None:
    w = worker(db_path, env)
    client.start("sleeper", 1, id="nap")
    wait_until(lambda: "TimerStarted" in [e["type"] for e in client.show("nap")["history"]],
               message="timer started")
    w.kill()
    # (A worker whose clock runs ahead no longer makes it due sooner on PostgreSQL, where
    # the server's clock decides: wait until it is due.)
    wait_until(lambda: timer_due(client), message="the timer to come due while down")
    with worker(db_path, env):
        assert client.handle("nap").result(timeout=30) == "slept True"
    fired = [e for e in client.show("nap")["history"] if e["type"] == "TimerFired"]
    assert len(fired) == 1


def test_two_and_three_workers_share_one_database(client: Engine, db_path: Path | str,
                                                  env: dict[str, str]) -> None:
    env = dict(env, ONWARD_TEST_STEP_DELAY="0.01")
    ids = [f"m{i}" for i in range(60)]
    workers = [worker(db_path, env, concurrency=4) for _ in range(3)]
    for i, ident in enumerate(ids):
        client.start("three_steps", i, id=ident)
    try:
        for i, ident in enumerate(ids):
            assert client.handle(ident).result(timeout=60) == i + 3
    finally:
        for w in workers:
            w.stop()
    keys = collections.Counter(str(line["key"]) for line in executions(env))
    assert len(keys) == 180 and set(keys.values()) == {1}
    pids = {line["pid"] for line in executions(env)}
    assert len(pids) >= 2, "work should spread over the workers"


def test_running_worker_takes_over_from_a_killed_one(client: Engine, db_path: Path | str,
                                                     env: dict[str, str]) -> None:
    gates = Path(env["ONWARD_TEST_GATES"])
    (gates / "gate1").touch()
    a = worker(db_path, env)
    b = worker(db_path, env)
    try:
        client.start("gated", 1, id="t")
        wait_until(lambda: (gates / "gate1.entered").exists(), message="first step running")
        owner = wait_until(lambda: client.show("t")["pending"]["activities"][0]["worker"],
                           message="owner recorded")
        with client.store.read() as tx:
            pid = tx.scalar("SELECT pid FROM workers WHERE worker_id = ?", (owner,))
        victim, survivor = (a, b) if pid == a.pid else (b, a)
        victim.kill()
        (gates / "gate1").unlink()
        assert client.handle("t").result(timeout=30) == 4
        survivor_pids = {line["pid"] for line in executions(env)}
        assert survivor_pids == {survivor.pid}
    finally:
        a.kill()
        b.kill()
    lost = [e for e in client.show("t")["history"] if e["type"] == "ActivityAttemptFailed"]
    assert lost[0]["attrs"]["error"]["type"] == "WorkerLost"
    assert "exited" in lost[0]["attrs"]["error"]["message"]


def test_sigterm_lets_running_attempts_finish(client: Engine, db_path: Path | str,
                                              env: dict[str, str]) -> None:
    gates = Path(env["ONWARD_TEST_GATES"])
    (gates / "gate1").touch()
    w = worker(db_path, env)
    client.start("gated", 1, id="graceful")
    wait_until(lambda: (gates / "gate1.entered").exists(), message="first step running")
    w.proc.send_signal(15)
    (gates / "gate1").unlink()
    assert w.proc.wait(timeout=20) == 0
    history = [e["type"] for e in client.show("graceful")["history"]]
    assert "ActivityCompleted" in history and "ActivityAttemptFailed" not in history
