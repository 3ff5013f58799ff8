"""Activity cancellation reaches the running attempt; start_activity handles; heartbeat
details carried to the next attempt (issue 17, one part).

Real worker processes run the activities; the test process starts, signals and cancels
runs through its own engine (no worker of its own), so every cancel the worker acts on
was recorded by a workflow task and found in the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from onward import Engine, WorkflowFailed
from tests.helpers import REPO, WorkerProcess, gated_env, wait_until

FLOWS = REPO / "tests" / "flows" / "cancel.py"
FIXTURES = REPO / "tests" / "fixtures" / "histories"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return gated_env(tmp_path)


@pytest.fixture
def client(db: Path | str) -> Iterator[Engine]:
    eng = Engine(db, flows=[str(FLOWS)])
    yield eng
    eng.close()


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """An SQLite file; a PostgreSQL schema where a test is parametrized so."""
    if getattr(request, "param", "sqlite") == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return tmp_path / "onward.db"


def worker(db: Path | str, env: dict[str, str], *extra: str) -> WorkerProcess:
    return WorkerProcess(db, flows=[FLOWS], env=env, extra=list(extra)).wait_ready()


def events(env: dict[str, str]) -> list[dict[str, Any]]:
    path = Path(env["ONWARD_TEST_LOG"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def logged(env: dict[str, str], name: str) -> list[dict[str, Any]]:
    return [e for e in events(env) if e["event"] == name]


def order(env: dict[str, str]) -> list[str]:
    return [e["event"] for e in events(env)]


def history(client: Engine, ident: str) -> list[dict[str, Any]]:
    return list(client.show(ident)["history"])


def types(client: Engine, ident: str) -> list[str]:
    return [e["type"] for e in history(client, ident)]


def pending(client: Engine, ident: str) -> list[dict[str, Any]]:
    return list(client.show(ident, history=False)["pending"]["activities"])


# -- the saga: a run cancel reaches the deposit's running attempt ------------------------------
@pytest.mark.parametrize(("db", "mode"), [("sqlite", "try_cancel"),
                                         ("postgres", "wait_cancellation_completed")],
                         indirect=["db"])
def test_a_canceled_transfer_stops_the_deposit_and_refunds_once(
        client: Engine, db: Path | str, env: dict[str, str], mode: str) -> None:
    with worker(db, env):
        client.start("transfer", "acct-1", 500, mode, id="t1")
        wait_until(lambda: logged(env, "deposit.start"), message="the deposit is running")
        assert "asked" in client.cancel("t1")
        with pytest.raises(WorkflowFailed) as failed:
            client.handle("t1").result(timeout=30)
        # the running attempt is told: its heartbeat raises CancelledError
        wait_until(lambda: logged(env, "deposit.cancelled"), message="the deposit told")
    assert failed.value.status == "canceled"
    assert sorted(order(env)) == sorted(["withdraw", "deposit.start", "deposit.cancelled",
                                         "refund"])  # the compensation ran once
    if mode == "wait_cancellation_completed":  # the refund waited for the deposit to end
        assert order(env) == ["withdraw", "deposit.start", "deposit.cancelled", "refund"]
    seen = history(client, "t1")
    canceled = [e for e in seen if e["type"] == "ActivityCanceled"]
    assert [(e["attrs"]["name"], e["attrs"]["cancellation_type"]) for e in canceled] == [
        ("bank.deposit", mode)]
    kinds = [e["type"] for e in seen]
    assert kinds.index("CancelRequested") < kinds.index("ActivityCanceled") < \
        kinds.index("WorkflowCanceled")
    deposit_ref = canceled[0]["attrs"]["ref"]
    ends = [e for e in seen if e["type"] in ("ActivityCompleted", "ActivityFailed")
            and e["attrs"]["ref"] == deposit_ref]
    if mode == "try_cancel":
        assert ends == []  # nobody waited for the deposit's end: nothing recorded
    else:
        assert [e["attrs"]["error"]["type"] for e in ends] == ["CancelledError"]
    assert pending(client, "t1") == []
    assert client.replay(["t1"])[0]["ok"] is True


# -- handles: each cancellation type ------------------------------------------------------
def lingering(client: Engine, ident: str) -> list[dict[str, Any]]:
    """The run's pending ``linger`` activity (the ``note`` may be pending beside it)."""
    return [a for a in pending(client, ident) if a["name"] == "linger"]


def start_and_cancel(client: Engine, env: dict[str, str], ident: str, mode: str,
                     name: str = "linger") -> None:
    client.start("cancel_handle", mode, ident, name, id=ident)
    start = "async.start" if name == "async_linger" else "linger.start"
    wait_until(lambda: logged(env, start), message=f"{name} running")
    client.signal(ident, "cancel")


def test_try_cancel_goes_on_at_once_and_tells_the_attempt(
        client: Engine, db: Path, env: dict[str, str]) -> None:
    cleanup = Path(env["ONWARD_TEST_GATES"]) / "h.cleanup"
    cleanup.touch()  # the told attempt holds its cleanup open until the test lets go
    with worker(db, env):
        start_and_cancel(client, env, "h", "try_cancel")
        noted = wait_until(lambda: logged(env, "note"), message="the workflow went on")
        assert noted[0]["outcome"] == "cancelled"
        assert not logged(env, "linger.ended")  # the attempt has not ended: no waiting
        wait_until(lambda: logged(env, "linger.cancelled"), message="the attempt was told")
        assert [a["canceled"] for a in lingering(client, "h")] == ["try"]
        cleanup.unlink()
        wait_until(lambda: lingering(client, "h") == [], message="the attempt's row went")
        client.signal("h", "finish")
        assert client.handle("h").result(timeout=30) == "cancelled"
    kinds = types(client, "h")
    assert kinds.count("ActivityCanceled") == 1
    assert "ActivityFailed" not in kinds and "ActivityCompleted" in kinds  # the note only


def test_wait_cancellation_completed_waits_for_the_attempt_to_end(
        client: Engine, db: Path, env: dict[str, str]) -> None:
    cleanup = Path(env["ONWARD_TEST_GATES"]) / "w.cleanup"
    cleanup.touch()
    with worker(db, env):
        start_and_cancel(client, env, "w", "wait_cancellation_completed")
        wait_until(lambda: (Path(env["ONWARD_TEST_GATES"]) / "w.cleanup.entered").exists(),
                   message="the told attempt cleaning up")
        # the cancel is recorded, yet the code still waits: nothing after it
        assert types(client, "w")[-1] == "ActivityCanceled"
        assert not logged(env, "note")
        cleanup.unlink()
        wait_until(lambda: logged(env, "note"), message="the workflow went on")
        client.signal("w", "finish")
        assert client.handle("w").result(timeout=30) == "cancelled"
    assert order(env) == ["linger.start", "linger.cancelled", "linger.ended", "note"]
    seen = history(client, "w")
    kinds = [e["type"] for e in seen]
    assert kinds.index("ActivityCanceled") < kinds.index("ActivityFailed")
    ended = seen[kinds.index("ActivityFailed")]["attrs"]
    assert ended["canceled"] is True and ended["error"]["type"] == "CancelledError"


def test_abandon_leaves_the_attempt_running_untold(
        client: Engine, db: Path, env: dict[str, str]) -> None:
    gates = Path(env["ONWARD_TEST_GATES"])
    with worker(db, env):
        start_and_cancel(client, env, "a", "abandon")
        noted = wait_until(lambda: logged(env, "note"), message="the workflow went on")
        assert noted[0]["outcome"] == "cancelled"
        assert "ActivityCanceled" in types(client, "a")
        beats = lingering(client, "a")[0]["heartbeat_details"]
        # heartbeats recorded after the cancel: each would have told a try_cancel attempt
        wait_until(lambda: (lingering(client, "a")[0]["heartbeat_details"] or 0) > beats + 10,
                   message="the abandoned attempt heartbeating on")
        assert lingering(client, "a")[0]["canceled"] == "abandon"
        assert not logged(env, "linger.cancelled")
        (gates / "a.done").touch()
        wait_until(lambda: logged(env, "linger.completed"), message="the attempt finished")
        wait_until(lambda: lingering(client, "a") == [], message="its row went")
        client.signal("a", "finish")
        assert client.handle("a").result(timeout=30) == "cancelled"
    assert not logged(env, "linger.cancelled")
    completed = [e for e in history(client, "a") if e["type"] == "ActivityCompleted"]
    assert [e["attrs"]["name"] for e in completed] == ["note"]  # its result was dropped


def test_an_async_activity_s_task_is_cancelled(
        client: Engine, db: Path, env: dict[str, str]) -> None:
    with worker(db, env):
        start_and_cancel(client, env, "as", "wait_cancellation_completed", "async_linger")
        wait_until(lambda: logged(env, "note"), message="the workflow went on")
        client.signal("as", "finish")
        assert client.handle("as").result(timeout=30) == "cancelled"
    assert order(env) == ["async.start", "async.cancelled", "note"]
    failed = [e for e in history(client, "as") if e["type"] == "ActivityFailed"]
    assert failed[0]["attrs"]["error"]["type"] == "CancelledError"


# -- heartbeat details carried across a kill -9 -------------------------------------------
def test_heartbeat_details_resume_after_the_worker_is_killed(
        client: Engine, db: Path, env: dict[str, str]) -> None:
    (Path(env["ONWARD_TEST_GATES"]) / "stall").touch()
    first = worker(db, env, "--lease-ttl", "1")
    client.start("counting", 5, 3, id="c")
    wait_until(lambda: (pending(client, "c") or [{}])[0].get("heartbeat_details") == 3,
               message="attempt 1 heartbeat 3")
    first.kill()
    with worker(db, env, "--lease-ttl", "1"):
        assert client.handle("c").result(timeout=30) == {"attempt": 2, "resumed_from": 3}
    assert [(e["attempt"], e["start"]) for e in logged(env, "count.start")] == [(1, 0), (2, 3)]


# -- replay: TimerCanceled and ActivityCanceled in recorded histories ------------------------
def test_a_recorded_history_with_cancels_replays(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "replay.db", flows=[str(FLOWS)])
    try:
        for fixture in sorted(FIXTURES.glob("cancel-*.json")):
            recorded = json.loads(fixture.read_text())
            kinds = [e["type"] for e in recorded["history"]]
            assert "ActivityCanceled" in kinds or "TimerCanceled" in kinds, fixture.name
            report = eng.replay_history(recorded)
            assert report["ok"] is True, f"{fixture.name}: {report['error']}"
    finally:
        eng.close()


def test_a_history_recorded_before_cancels_were_recorded_still_replays(
        tmp_path: Path) -> None:
    """The same run without its TimerCanceled events (as an older engine recorded it)."""
    recorded = json.loads((FIXTURES / "cancel-timers.json").read_text())
    kept = [e for e in recorded["history"] if e["type"] != "TimerCanceled"]
    assert len(kept) < len(recorded["history"])
    new_seq = {e["seq"]: n for n, e in enumerate(kept, 1)}
    for e in kept:
        e["seq"] = new_seq[e["seq"]]
        if "ref" in e["attrs"]:
            e["attrs"]["ref"] = new_seq[e["attrs"]["ref"]]
    eng = Engine(tmp_path / "replay.db", flows=[str(FLOWS)])
    try:
        report = eng.replay_history({**recorded, "history": kept})
        assert report["ok"] is True, report["error"]
        changed = [{**e, "attrs": {**e["attrs"], "ref": 999}} if e["type"] == "TimerCanceled"
                   else e for e in recorded["history"]]
        report = eng.replay_history({**recorded, "history": changed})
        assert report["ok"] is False  # a cancel of another timer is caught
    finally:
        eng.close()
