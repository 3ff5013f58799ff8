"""Live workers are never taken for dead: other PID namespaces, skewed clocks.

Workers judge each other's liveness: on the same host by their process, elsewhere by their
lease. These tests put two real worker processes side by side where that judgement went
wrong: in two PID namespaces of one host (containers with host networking), and on "hosts"
whose clocks are seconds apart. Every payment is allowed a single attempt, so a live worker
wrongly reaped shows up as a failed run ("worker lost") and as a payment made twice.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from onward import Engine
from tests.helpers import REPO, WorkerProcess, env_for, executions, wait_until

pytestmark = pytest.mark.slow

FLOWS = REPO / "tests" / "flows" / "once.py"
LEASE = "2"


def start_worker(db: Path | str, env: dict[str, str], log: Path, lease: str = LEASE,
                 pid_namespace: bool = False) -> WorkerProcess:
    """A registered ``onward worker`` on the payment flows, with a lease of ``lease`` s;
    in a PID namespace of its own with ``pid_namespace``."""
    return WorkerProcess(db, flows=[FLOWS], concurrency=2, env=env, log=log,
                         extra=["--lease-ttl", lease, "--no-watch"],
                         pid_namespace=pid_namespace).wait_ready()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return env_for(ONWARD_TEST_LOG=str(tmp_path / "pay.jsonl"), ONWARD_TEST_STEP_DELAY="0.3")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "onward.db", flows=[str(FLOWS)])
    yield eng
    eng.close()


@pytest.fixture
def any_client(any_db: Path | str) -> Iterator[Engine]:
    eng = Engine(any_db, flows=[str(FLOWS)])
    yield eng
    eng.close()


def worker_lost(client: Engine, ids: list[str]) -> list[str]:
    """The messages of every attempt recorded as lost with its worker."""
    return [str(e["attrs"]["error"]["message"]) for ident in ids
            for e in client.show(ident)["history"] if e["type"] == "ActivityAttemptFailed"]


def run_payments(client: Engine, log: Path, prefix: str, runs: int = 8, each: int = 3
                 ) -> list[str]:
    """Start ``runs`` runs of ``each`` at-most-once payments and check they all completed,
    with each payment executed exactly once; their ids."""
    ids = [f"{prefix}{i}" for i in range(runs)]
    for ident in ids:
        client.start("pay_once_each", each, id=ident)
    for ident in ids:
        assert client.handle(ident).result(timeout=60) == [i + 1 for i in range(each)], \
            (ident, worker_lost(client, [ident]))
    assert worker_lost(client, ids) == []
    made = collections.Counter(str(line["key"]) for line in executions(log))
    assert len(made) == runs * each and set(made.values()) == {1}, made
    return ids


def test_workers_in_two_pid_namespaces_of_one_host_never_reap_each_other(
        tmp_path: Path, client: Engine, env: dict[str, str]) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a second PID namespace needs root and unshare(1); skipping")
    db = tmp_path / "onward.db"
    here = start_worker(db, env, tmp_path / "here.log")
    there = start_worker(db, env, tmp_path / "there.log", pid_namespace=True)
    log = Path(env["ONWARD_TEST_LOG"])
    run_payments(client, log, "ns")
    pids = {line["pid"] for line in executions(log)}
    assert len(pids) == 2, f"both workers should have paid: {pids}"
    for worker in (here, there):
        assert "taking over" not in worker.log_path.read_text()
    # A worker that really dies in the other namespace is still taken over (by lease).
    there.kill()
    wait_until(lambda: workers(client) == 1, timeout=30,
               message="the killed worker's lease to expire")


def workers(client: Engine) -> int:
    """How many workers are registered."""
    with client.store.read() as tx:
        return int(tx.scalar("SELECT count(*) FROM workers"))


@pytest.mark.parametrize("shift", ["6", "-6"])
def test_hosts_whose_clocks_are_seconds_apart_never_take_over_live_workers(
        tmp_path: Path, any_db: Path | str, any_client: Engine, env: dict[str, str],
        shift: str) -> None:
    """Two "hosts" (their own host ids, so judged by lease), one clock ``shift`` seconds
    off, a lease of 5 s: neither takes the other's work, and each payment runs once."""
    right = start_worker(any_db, dict(env, ONWARD_HOST_ID="host-right"),
                         tmp_path / "right.log", lease="5")
    skewed = start_worker(any_db, dict(env, ONWARD_HOST_ID="host-skewed",
                                       ONWARD_TIME_SHIFT=shift),
                          tmp_path / "skewed.log", lease="5")
    log = Path(env["ONWARD_TEST_LOG"])
    ids = run_payments(any_client, log, "skew")
    if isinstance(any_db, str):  # On PostgreSQL the server's clock decides what is due;
        # on SQLite (one machine, one clock in real life) a worker whose clock is behind
        # sees the work as not yet due, so it may not get to pay at all.
        assert len({line["pid"] for line in executions(log)}) == 2, "both hosts should pay"
        for ident in ids:  # both hosts wrote the server's time into the history
            times = [datetime.fromisoformat(e["time"]).timestamp()
                     for e in any_client.show(ident)["history"]]
            assert all(b - a > -0.5 for a, b in pairwise(times)), (ident, times)
    for worker in (right, skewed):
        assert "taking over" not in worker.log_path.read_text()


@pytest.mark.parametrize("own_proc", [True, False])
def test_each_pid_namespace_is_a_host_of_its_own(own_proc: bool) -> None:
    """Another PID namespace never shares this one's host identity; and a process whose
    ``/proc`` shows another namespace (no fresh proc mount) shares it with nobody."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a second PID namespace needs root and unshare(1); skipping")
    from onward.liveness import HOST
    command = ["unshare", "--pid", "--fork", *(["--mount-proc"] if own_proc else []),
               sys.executable, "-c", "from onward.liveness import HOST; print(HOST)"]
    hosts = [subprocess.run(command, capture_output=True, text=True, env=env_for(),
                            timeout=30, check=True).stdout.strip() for _ in range(2)]
    assert HOST not in hosts and all(hosts)
    assert all(h.split(":")[:2] == HOST.split(":")[:2] for h in hosts)  # same machine
    if not own_proc:
        assert hosts[0] != hosts[1]
