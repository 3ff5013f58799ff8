"""A commit whose acknowledgement is lost strands no claimed work (PostgreSQL).

A small relay between the worker and PostgreSQL loses the server's reply to COMMIT: the
server has committed, the worker sees its connection die. Attempts claimed in that
transaction are durably the worker's, but it never heard so. Each payment is allowed one
attempt with a start-to-close timeout of a minute, so an attempt left claimed and never
started would make the test time out (or the run fail) instead of pass.
"""

from __future__ import annotations

import collections
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from onward import Engine
from onward.errors import StoreError
from tests.helpers import REPO, executions, wait_until
from tests.pg import BASE_URL

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FLOWS = str(REPO / "tests" / "flows" / "once.py")
COMMIT = b"C\x00\x00\x00\x0bCOMMIT\x00"  # CommandComplete "COMMIT"


class CommitDropper:
    """Relays TCP connections to PostgreSQL; when armed, it loses the server's reply to the
    COMMIT of a transaction that inserted rows (a workflow step, not upkeep) and closes
    that connection, after the server has committed."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._to_drop = 0
        self._every = 1
        self._seen = 0
        self.dropped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, times: int = 1, every: int = 1) -> None:
        """Lose the next ``times`` replies, to every ``every``-th inserting transaction."""
        with self._lock:
            self._to_drop, self._every, self._seen = times, every, 0

    def _drop_now(self) -> bool:
        with self._lock:
            if self._to_drop <= 0:
                return False
            self._seen += 1
            if self._seen % self._every:
                return False
            self._to_drop -= 1
            self.dropped += 1
            return True

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client),
                             daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        CommitDropper._close(src, dst)

    def _replies(self, server: socket.socket, client: socket.socket) -> None:
        """Forward the server's messages one by one, watching for the COMMIT reply."""
        buffer, inserted = b"", False
        try:
            while data := server.recv(65536):
                buffer += data
                out = bytearray()
                while len(buffer) >= 5:
                    size = struct.unpack("!I", buffer[1:5])[0] + 1
                    if len(buffer) < size:
                        break
                    message, buffer = buffer[:size], buffer[size:]
                    if message[:1] == b"C" and message[5:12] == b"INSERT ":
                        inserted = True
                    elif message == COMMIT:
                        was, inserted = inserted, False
                        if was and self._drop_now():
                            client.sendall(out)
                            self._close(server, client)
                            return
                    out += message
                client.sendall(out)
        except OSError:
            pass
        self._close(server, client)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._close(self.server, *self.sockets)
        for sock in [self.server, *self.sockets]:
            sock.close()


@pytest.fixture
def relay() -> Iterator[CommitDropper]:
    from psycopg.conninfo import conninfo_to_dict
    params = conninfo_to_dict(BASE_URL)
    dropper = CommitDropper((str(params.get("host") or "127.0.0.1"),
                             int(params.get("port") or 5432)))
    yield dropper
    dropper.close()


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "pay.jsonl"
    monkeypatch.setenv("ONWARD_TEST_LOG", str(path))
    monkeypatch.setenv("ONWARD_TEST_GATES", str(tmp_path))
    return path


@pytest.fixture
def direct(pg_url: str) -> Iterator[Engine]:
    """An engine straight on the database (its commits are never lost)."""
    with Engine(pg_url, flows=[FLOWS]) as eng:
        yield eng


@pytest.fixture
def relayed(pg_url: str, relay: CommitDropper, direct: Engine) -> Iterator[Engine]:
    """An engine whose connections go through the relay (set up after ``direct``)."""
    from psycopg.conninfo import conninfo_to_dict
    params = conninfo_to_dict(BASE_URL)
    where = f"{params.get('host') or '127.0.0.1'}:{params.get('port') or 5432}"
    url = pg_url.replace(where, f"127.0.0.1:{relay.port}", 1)
    with Engine(url + "&sslmode=disable&gssencmode=disable", flows=[FLOWS]) as eng:
        yield eng


def paid_once_each(direct: Engine, log: Path, ids: list[str]) -> None:
    """Every run completed without a failed attempt, each payment made exactly once."""
    for ident in ids:
        direct.handle(ident).result(timeout=30)
        failed = [e for e in direct.show(ident)["history"]
                  if e["type"] == "ActivityAttemptFailed"]
        assert failed == [], failed
    made = collections.Counter(str(line["key"]) for line in executions(log))
    assert made and set(made.values()) == {1}, made


def test_a_lost_commit_of_a_dispatcher_turn_starts_what_it_claimed(
        direct: Engine, relayed: Engine, relay: CommitDropper, log: Path) -> None:
    with relayed.worker():
        relay.arm()
        direct.start("pay_thrice", 1, id="turn")  # the worker's dispatcher takes it up
        paid_once_each(direct, log, ["turn"])
    assert relay.dropped == 1
    assert direct.handle("turn").result(timeout=1) == 4


def test_a_lost_commit_of_a_step_recorded_inline_starts_what_it_claimed(
        direct: Engine, relayed: Engine, relay: CommitDropper, log: Path) -> None:
    gate = log.parent / "first"
    gate.touch()
    with relayed.worker():
        direct.start("pay_thrice", 1, id="inline")
        wait_until((log.parent / "first.entered").exists, message="first payment running")
        relay.arm()
        gate.unlink()  # its completion is recorded in its own thread, claiming the next
        paid_once_each(direct, log, ["inline"])
    assert relay.dropped == 1


def test_a_lost_commit_of_an_eager_start_starts_what_it_claimed(
        direct: Engine, relayed: Engine, relay: CommitDropper, log: Path) -> None:
    with relayed.worker():
        relay.arm()
        with pytest.raises(StoreError):  # the start committed, but nobody heard so
            relayed.start("pay_once_each", 3, id="eager")
        paid_once_each(direct, log, ["eager"])
    assert relay.dropped == 1


def test_many_lost_commits_strand_nothing_and_repeat_nothing(
        direct: Engine, relayed: Engine, relay: CommitDropper, log: Path) -> None:
    scale = int(os.environ.get("ONWARD_LOST_COMMIT_SCALE", "1"))  # longer runs by hand
    ids = [f"many{i}" for i in range(12 * scale)]
    with relayed.worker(concurrency=4):
        relay.arm(times=6 * scale, every=2)
        for n, ident in enumerate(ids):
            if n % 2:
                direct.start("pay_thrice", n, id=ident)
            else:
                direct.start("pay_once_each", 3, id=ident)
        paid_once_each(direct, log, ids)
    assert relay.dropped >= 4, relay.dropped
    print(f"{relay.dropped} COMMIT replies lost over {len(ids)} runs")
