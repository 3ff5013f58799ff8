"""A cancel request is a state, not a stream: asking again changes nothing, and the
compensation that the first request started runs to completion (issue 14, item 7).

Real worker processes; the compensating activity waits on a gate file so the test can
cancel again while it runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from onward import Engine, WorkflowFailed, history
from tests.helpers import REPO, WorkerProcess, cli, executions, gated_env, wait_until

pytestmark = pytest.mark.slow

FLOWS = REPO / "tests" / "flows" / "runtime.py"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return gated_env(tmp_path)


@pytest.fixture
def client(any_db: Path | str) -> Engine:
    eng = Engine(any_db, flows=[str(FLOWS)])
    yield eng
    eng.close()


def types(client: Engine, ident: str) -> list[str]:
    return [e["type"] for e in client.show(ident)["history"]]


def labels(env: dict[str, str]) -> list[str]:
    return [str(line["label"]) for line in executions(Path(env["ONWARD_TEST_LOG"]))]


def workflow_task_due(client: Engine, ident: str) -> bool:
    with client.store.read() as tx:
        run = history.current_run(tx, ident)
    return run is not None and bool(run.wf_pending)


def start_saga_and_hold_its_compensation(client: Engine, env: dict[str, str],
                                         ident: str, saga: str = "gated_saga") -> Path:
    """Start a saga, cancel it, and wait until its compensation is running."""
    gates = Path(env["ONWARD_TEST_GATES"])
    (gates / "compensate").touch()
    client.start(saga, id=ident)
    wait_until(lambda: "TimerStarted" in types(client, ident), message="booked, sleeping")
    assert "asked" in client.cancel(ident)
    wait_until(lambda: (gates / "compensate.entered").exists(), message="compensating")
    return gates / "compensate"


@pytest.mark.parametrize("saga", ["gated_saga", "gated_saga_finally"])
def test_a_second_cancel_lets_the_compensation_complete(
        client: Engine, any_db: Path | str, env: dict[str, str], saga: str) -> None:
    with WorkerProcess(any_db, flows=[FLOWS], env=env):
        gate = start_saga_and_hold_its_compensation(client, env, "trip", saga)
        again = client.cancel("trip")
        assert "already" in again
        by_cli = cli("cancel", "trip", "--db", str(any_db), env=env)
        assert by_cli.returncode == 0 and "already" in by_cli.stdout, by_cli.stderr
        assert types(client, "trip").count("CancelRequested") == 1  # nothing more recorded
        gate.unlink()
        with pytest.raises(WorkflowFailed) as failed:
            client.handle("trip").result(timeout=30)
    assert failed.value.status == "canceled"
    assert labels(env) == ["book", "compensate"]
    ends = types(client, "trip")[-2:]
    assert ends == ["ActivityCompleted", "WorkflowCanceled"]


def test_a_history_with_two_cancel_requests_still_compensates(
        client: Engine, any_db: Path | str, env: dict[str, str]) -> None:
    """An older database may hold a second CancelRequested (recorded before cancels were
    refused): only the first raises CancelledError, so the compensation completes."""
    with WorkerProcess(any_db, flows=[FLOWS], env=env):
        gate = start_saga_and_hold_its_compensation(client, env, "old")
        with client.store.write() as tx:  # what an older `onward cancel` recorded
            run = history.current_run(tx, "old", lock=True)
            assert run is not None
            history.append(tx, run, "CancelRequested", {}, client.clock(), wake=True)
            history.save_run_state(tx, run)
        wait_until(lambda: not workflow_task_due(client, "old"), message="request seen")
        gate.unlink()
        with pytest.raises(WorkflowFailed) as failed:
            client.handle("old").result(timeout=30)
    assert failed.value.status == "canceled"
    assert labels(env) == ["book", "compensate"]
    assert types(client, "old").count("CancelRequested") == 2
    assert types(client, "old")[-2:] == ["ActivityCompleted", "WorkflowCanceled"]
    assert client.replay(["old"])[0]["ok"] is True


def test_cancelling_the_parent_of_a_canceling_child_asks_nothing_more(
        client: Engine, any_db: Path | str, env: dict[str, str]) -> None:
    gates = Path(env["ONWARD_TEST_GATES"])
    (gates / "compensate").touch()
    with WorkerProcess(any_db, flows=[FLOWS], env=env):
        client.start("gated_saga_parent", id="mom")
        wait_until(lambda: any(r["id"] == "saga-child" for r in client.list()) and
                   "TimerStarted" in types(client, "saga-child"), message="child booked")
        client.cancel("saga-child")
        wait_until(lambda: (gates / "compensate.entered").exists(), message="child compensating")
        client.cancel("mom")  # the parent stops waiting for its child and asks it to cancel
        wait_until(lambda: client.show("mom")["status"] != "running", message="parent closed")
        (gates / "compensate").unlink()
        with pytest.raises(WorkflowFailed) as failed:
            client.handle("mom").result(timeout=30)
        with pytest.raises(WorkflowFailed) as child_failed:
            client.handle("saga-child").result(timeout=30)
    assert (failed.value.status, child_failed.value.status) == ("canceled", "canceled")
    assert types(client, "saga-child").count("CancelRequested") == 1
    assert labels(env) == ["book", "compensate"]


def test_two_operators_cancelling_at_once_record_one_request(
        client: Engine, any_db: Path | str, env: dict[str, str]) -> None:
    client.start("gated_saga", id="race")  # no worker: the run just waits to begin
    args = [sys.executable, "-m", "onward.cli", "cancel", "race", "--db", str(any_db)]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, outputs
    said = sorted("already" in out for out, _ in outputs)
    assert said == [False, True, True, True]
    assert types(client, "race").count("CancelRequested") == 1
