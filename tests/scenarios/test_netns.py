"""Workers on several "hosts" sharing one PostgreSQL database: network namespaces.

Each host is a network namespace joined to this machine's root namespace by a veth pair
(10.200.x.0/24, used only between these veths). PostgreSQL keeps listening on localhost
only: a small TCP forwarder on each host-side veth address carries the hosts' connections
to it, so nothing global changes. Workers run inside the namespaces with their own host
identity (``$ONWARD_HOST_ID``), so they notice each other's deaths by lease expiry
(``--lease-ttl 2``), as on real machines. Then a host is killed outright, and another is
cut off while it holds leases; its late results must be fenced when the link returns.
Executions are counted in the ``$ONWARD_TEST_LOG`` file that tests/flows/basic.py writes.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from onward import Engine
from tests.helpers import REPO, WorkerProcess, env_for, executions, wait_until
from tests.pg import BASE_URL, pg_url, unavailable  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FLOWS = str(REPO / "tests" / "flows" / "basic.py")
HOSTS = 3
LEASE = 2.0


def _ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    cmd = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=15)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


class Forwarder:
    """Accepts on ``listen`` and relays each connection to ``target`` (PostgreSQL)."""

    def __init__(self, listen: str, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server((listen, 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        for sock in [self.server, *self.sockets]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class Host:
    """One network namespace with a veth to the root namespace and a forwarder."""

    def __init__(self, tag: str, index: int, subnet: int) -> None:
        self.ns = f"onw{tag}h{index}"
        self.outer = f"ovh{tag}{index}"  # the root namespace's end: cut it to isolate
        self.inner = f"ovn{tag}{index}"
        self.gateway = f"10.200.{subnet}.1"
        self.address = f"10.200.{subnet}.2"
        self.host_id = f"netns-host-{index}"
        self.forwarder: Forwarder | None = None

    def create(self, target: tuple[str, int]) -> None:
        _ip("netns", "add", self.ns)
        _ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        _ip("link", "set", self.inner, "netns", self.ns)
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.outer)
        _ip("link", "set", self.outer, "up")
        _ip("addr", "add", f"{self.address}/24", "dev", self.inner, ns=self.ns)
        _ip("link", "set", self.inner, "up", ns=self.ns)
        _ip("link", "set", "lo", "up", ns=self.ns)
        self.forwarder = Forwarder(self.gateway, target)

    def url(self, schema: str, user: str, password: str, dbname: str) -> str:
        assert self.forwarder is not None
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        return (f"postgresql://{auth}@{self.gateway}:{self.forwarder.port}/{dbname}"
                f"?options=-csearch_path%3D{schema}&application_name={schema}")

    def link(self, up: bool) -> None:
        _ip("link", "set", self.outer, "up" if up else "down")

    def kill_everything(self) -> None:
        """SIGKILL every process in the namespace (the whole host dies)."""
        out = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True,
                             text=True, timeout=15).stdout
        for pid in out.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    def destroy(self) -> None:
        self.kill_everything()
        if self.forwarder is not None:
            self.forwarder.close()
        _ip("link", "del", self.outer, check=False)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=15)


class NsWorker(WorkerProcess):
    """``onward worker`` inside a host's namespace (``ip netns exec``), registered."""

    def __init__(self, host: Host, url: str, env: dict[str, str], log: Path) -> None:
        self.host = host
        super().__init__(url, flows=[FLOWS], concurrency=4, log=log,
                         env=dict(env, ONWARD_HOST_ID=host.host_id),
                         extra=["--lease-ttl", str(LEASE), "--no-watch"],
                         prefix=["ip", "netns", "exec", host.ns])
        self.wait_ready()


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[Host]]:
    """Three namespaces reaching PostgreSQL through forwarders; removed afterwards."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (`ip`); skipping")
    from psycopg.conninfo import conninfo_to_dict
    params = conninfo_to_dict(BASE_URL)
    target = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    used = _ip("-o", "addr")
    tag = f"{os.getpid() % 100000}"
    start = 1 + (os.getpid() % 80) * 3
    subnets = [s for s in range(start, 250) if f"10.200.{s}." not in used][:HOSTS]
    made = [Host(tag, i + 1, subnet) for i, subnet in enumerate(subnets)]
    try:
        for host in made:
            try:
                host.create(target)
            except (RuntimeError, OSError) as err:
                pytest.skip(f"cannot make network namespaces here ({err}); skipping")
        yield made
    finally:
        for host in made:
            host.destroy()


@pytest.fixture
def cluster(hosts: list[Host], pg_url: str, tmp_path: Path  # noqa: F811
            ) -> Iterator[dict[str, object]]:
    """An engine in the root namespace plus a way to start workers on the hosts."""
    from psycopg.conninfo import conninfo_to_dict
    params = conninfo_to_dict(BASE_URL)
    schema = pg_url.split("%3D")[1].split("&")[0]
    log = tmp_path / "executions.jsonl"
    env = env_for(ONWARD_TEST_LOG=str(log), ONWARD_TEST_STEP_DELAY="0.4")
    client = Engine(pg_url, flows=[FLOWS])
    workers: list[NsWorker] = []

    def start(host: Host) -> NsWorker:
        url = host.url(schema, str(params.get("user") or "postgres"),
                       str(params.get("password") or ""), str(params.get("dbname") or ""))
        worker = NsWorker(host, url, env, tmp_path / f"{host.ns}.log")
        workers.append(worker)
        return worker

    try:
        yield {"client": client, "start": start, "log": log}
    finally:
        for host in hosts:
            host.link(True)
        for worker in workers:
            worker.kill()
        client.close()


def owned_by(client: Engine, worker_id: str) -> int:
    with client.store.read() as tx:
        return int(tx.scalar("SELECT count(*) FROM activity_tasks WHERE owner = ?",
                             (worker_id,)))


def registered(client: Engine, worker_id: str) -> bool:
    with client.store.read() as tx:
        return tx.one("SELECT 1 FROM workers WHERE worker_id = ?", (worker_id,)) is not None


def lost_attempts(lost: dict[str, list[dict[str, object]]], client: Engine, worker_id: str
                  ) -> set[tuple[str, int]]:
    """(idempotency key, attempt) of the attempts taken away from ``worker_id``."""
    found = set()
    for ident, events in lost.items():
        run_id = client.show(ident, history=False)["run_id"]
        for e in events:
            attrs = e["attrs"]
            if worker_id in attrs["error"]["message"]:  # type: ignore[index, operator]
                found.add((f"{run_id}-{attrs['ref']}", int(attrs["attempt"])))  # type: ignore[index, call-overload]
    return found


def check_nothing_lost_or_done_twice(client: Engine, log: Path, ids: list[str],
                                     first: int) -> dict[str, list[dict[str, object]]]:
    """Each run completed right; each activity completed once; no attempt ran twice and
    nothing ran after its activity completed. Returns the WorkerLost failures by run."""
    for n, ident in enumerate(ids):
        assert client.handle(ident).result(timeout=60) == first + n + 3, ident
    ran: dict[str, list[int]] = collections.defaultdict(list)
    for line in executions(log):
        ran[str(line["key"])].append(int(line["attempt"]))  # type: ignore[call-overload]
    lost: dict[str, list[dict[str, object]]] = {}
    for ident in ids:
        shown = client.show(ident)
        done = [e for e in shown["history"] if e["type"] == "ActivityCompleted"]
        assert len(done) == 3 and len({e["attrs"]["ref"] for e in done}) == 3, ident
        for event in done:
            attempts = ran[f"{shown['run_id']}-{event['attrs']['ref']}"]
            assert attempts and len(attempts) == len(set(attempts)), \
                f"{ident}: an attempt ran twice: {attempts}"
            assert max(attempts) == event["attrs"]["attempt"], \
                f"{ident}: ran after completing: {attempts}"
        lost[ident] = [e for e in shown["history"] if e["type"] == "ActivityAttemptFailed"]
        assert all(e["attrs"]["error"]["type"] == "WorkerLost" for e in lost[ident])
    return lost


def start_and_wait_for_leases(hosts: list[Host], cluster: dict[str, object], prefix: str,
                              first: int, chosen: int) -> tuple[Engine, Path, list[Any], list[str]]:
    """A worker on every host, 12 three_steps runs started, and host ``chosen`` holding
    leases on some of their attempts. Returns the client, the log, the workers, the ids."""
    client: Engine = cluster["client"]  # type: ignore[assignment]
    log: Path = cluster["log"]  # type: ignore[assignment]
    workers = [cluster["start"](host) for host in hosts]  # type: ignore[operator]
    ids = [f"{prefix}{i}" for i in range(12)]
    for n, ident in enumerate(ids):
        client.start("three_steps", first + n, id=ident)
    worker = workers[chosen]
    wait_until(lambda: owned_by(client, worker.worker_id), timeout=20,
               message=f"{worker.host.ns} holding leases")
    return client, log, workers, ids


def test_a_host_that_dies_is_taken_over_after_its_lease(hosts: list[Host],
                                                       cluster: dict[str, object]) -> None:
    client, log, workers, ids = start_and_wait_for_leases(hosts, cluster, "die", 100, 0)
    victim = workers[0]
    victim.host.kill_everything()
    killed_at = time.monotonic()
    lost = check_nothing_lost_or_done_twice(client, log, ids, 100)
    assert time.monotonic() - killed_at < 30
    taken = lost_attempts(lost, client, victim.worker_id)
    assert taken, "the killed host held attempts that the others must have retried"
    assert sum(len(events) for events in lost.values()) == len(taken)
    survivors = {w.proc.pid for w in workers[1:]}
    retried = [line for line in executions(log) if (line["key"], line["attempt"] - 1) in taken]
    assert retried and {line["pid"] for line in retried} <= survivors


def test_a_cut_off_host_is_fenced_and_rejoins(hosts: list[Host],
                                             cluster: dict[str, object]) -> None:
    client, log, workers, ids = start_and_wait_for_leases(hosts, cluster, "cut", 200, 1)
    island = workers[1]
    island.host.link(False)
    cut_at = time.monotonic()
    try:
        lost = check_nothing_lost_or_done_twice(client, log, ids, 200)
        assert time.monotonic() - cut_at < 40
    finally:
        island.host.link(True)
    fenced = lost_attempts(lost, client, island.worker_id)
    assert fenced, "the cut-off host held attempts that the others must have retried"
    # Those attempts still ran on the island, but their results did not count.
    on_island = {(line["key"], line["attempt"]) for line in executions(log)
                 if line["pid"] == island.proc.pid}
    assert fenced & on_island, "the island should have run its attempts to the end"
    # Back on the network, it learns it was presumed dead, its late results are fenced,
    # and it rejoins.
    wait_until(lambda: registered(client, island.worker_id), timeout=40,
               message="the cut-off worker rejoins")
    assert "presumed dead" in island.log_path.read_text()
    check_nothing_lost_or_done_twice(client, log, ids, 200)
    more = [f"after{i}" for i in range(6)]
    for n, ident in enumerate(more):
        client.start("three_steps", 300 + n, id=ident)
    check_nothing_lost_or_done_twice(client, log, more, 300)
