"""Providers swapped live under a running worker process, and flows reloaded after a check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onward import Engine
from tests.helpers import REPO, WorkerProcess, env_for, wait_until

pytestmark = pytest.mark.slow

FLOW = '''
from onward import RetryPolicy, workflow

@workflow.defn(name="uses_provider")
async def uses_provider(n: int) -> str:
    return await workflow.execute_activity(
        "swap.work", n, retry=RetryPolicy(initial_interval=0.05, maximum_interval=0.2))
'''

BROKEN_PROVIDER = '''
from onward import activity, hookimpl

@activity.defn(name="swap.work")
def work(n):
    raise RuntimeError("provider v1 is broken")

@hookimpl
def onward_activities():
    return [work]
'''

FIXED_PROVIDER = '''
from onward import activity, hookimpl

@activity.defn(name="swap.work")
def work(n):
    return f"v2 did {n}"

@hookimpl
def onward_activities():
    return [work]
'''

SLOW_PROVIDER = '''
import time
from pathlib import Path
from onward import activity, hookimpl

@activity.defn(name="swap.work")
def work(n):
    Path(__import__("os").environ["SWAP_MARK"]).touch()
    time.sleep(1.0)
    return f"slow v1 did {n}"

@hookimpl
def onward_activities():
    return [work]
'''


@pytest.fixture
def setup(tmp_path: Path, any_db: Path | str) -> tuple[Path, Path, Path | str]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    flows = tmp_path / "flows.py"
    flows.write_text(FLOW)
    return plugins, flows, any_db


def attempts(eng: Engine, ident: str) -> list[dict[str, object]]:
    return [e["attrs"] for e in eng.show(ident)["history"]
            if e["type"] in ("ActivityAttemptFailed", "ActivityCompleted")]


def test_a_fixed_provider_file_heals_retrying_runs_without_restart(
        setup: tuple[Path, Path, Path | str]) -> None:
    plugins, flows, db = setup
    (plugins / "swap.py").write_text(BROKEN_PROVIDER)
    eng = Engine(db, flows=[str(flows)])
    with WorkerProcess(db, flows=[flows], plugins=[plugins], env=env_for()) as worker:
        eng.start("uses_provider", 7, id="heal")
        wait_until(lambda: len(attempts(eng, "heal")) >= 2, message="failing attempts")
        (plugins / "swap.py").write_text("this is not python (")
        failed_before = len(attempts(eng, "heal"))
        wait_until(lambda: len(attempts(eng, "heal")) >= failed_before + 2,
                   message="the broken edit keeps the old version serving")
        assert {a["error"]["message"] for a in attempts(eng, "heal")} == {  # type: ignore[index]
            "provider v1 is broken"}
        (plugins / "swap.py").write_text(FIXED_PROVIDER)
        assert eng.handle("heal").result(timeout=30) == "v2 did 7"
        assert worker.proc.poll() is None
    seen = attempts(eng, "heal")
    versions = [a["provider_version"] for a in seen]
    assert seen[-1]["provider"] == "swap"
    assert len(set(versions)) == 2 and versions[0] != versions[-1]


def test_in_flight_attempt_finishes_on_the_old_code(setup: tuple[Path, Path, Path | str],
                                                    tmp_path: Path) -> None:
    plugins, flows, db = setup
    (plugins / "swap.py").write_text(SLOW_PROVIDER)
    mark = tmp_path / "started"
    eng = Engine(db, flows=[str(flows)])
    with WorkerProcess(db, flows=[flows], plugins=[plugins], env=env_for(SWAP_MARK=str(mark))):
        eng.start("uses_provider", 1, id="inflight")
        wait_until(mark.exists, message="slow attempt started")
        (plugins / "swap.py").write_text(FIXED_PROVIDER)
        assert eng.handle("inflight").result(timeout=30) == "slow v1 did 1"
        eng.start("uses_provider", 2, id="after")
        assert eng.handle("after").result(timeout=30) == "v2 did 2"
    assert len(attempts(eng, "inflight")) == 1


def test_deleting_a_provider_fails_attempts_until_one_appears(
        setup: tuple[Path, Path, Path | str]) -> None:
    plugins, flows, db = setup
    (plugins / "swap.py").write_text(FIXED_PROVIDER)
    eng = Engine(db, flows=[str(flows)])
    with WorkerProcess(db, flows=[flows], plugins=[plugins], env=env_for()) as worker:
        assert eng.start("uses_provider", 1, id="one").result(timeout=30) == "v2 did 1"
        (plugins / "swap.py").unlink()
        wait_until(lambda: any(e["action"] == "removed"
                               for e in eng.provider_log(stored=True)),
                   message="the worker noticed the provider is gone")
        eng.start("uses_provider", 2, id="two")
        wait_until(lambda: any("no provider for activity swap.work" in
                               json.dumps(a) for a in attempts(eng, "two")),
                   message="attempts fail with 'no provider'")
        (plugins / "swap2.py").write_text(FIXED_PROVIDER)
        assert eng.handle("two").result(timeout=30) == "v2 did 2"
        assert worker.proc.poll() is None


def test_event_observer_hook_sees_every_event_in_history_order(tmp_path: Path,
                                                               any_db: Path | str) -> None:
    """Observers see each run's whole history, WorkflowStarted first, in order: for a run
    started before a worker runs (the client records the start) and for one started
    beside an in-process worker (whose first workflow task rides in the start's commit)."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    seen = tmp_path / "seen.jsonl"
    (plugins / "observer.py").write_text(f'''
import json
from onward import hookimpl

@hookimpl
def onward_event(event):
    with open({str(seen)!r}, "a") as f:
        f.write(json.dumps({{"type": event["type"], "id": event["workflow_id"],
                            "seq": event["seq"]}}) + "\\n")
''')
    eng = Engine(any_db, flows=[str(REPO / "tests" / "flows" / "basic.py")],
                 plugins=[plugins])
    early = eng.start("three_steps", 1, id="started-early")
    with eng.worker():
        eng.start("three_steps", 1, id="watched").result(timeout=10)
        early.result(timeout=10)
        # events recorded by every kind of writer: a client's signal, task completion and
        # cancel, a worker's child start
        signalled = eng.start("signals", 2, id="signalled")
        eng.signal("signalled", "item", 1)
        eng.signal("signalled", "item", 2)
        signalled.result(timeout=10)
        approval = eng.start("approval", id="approved")
        wait_until(lambda: eng.tasks(), message="the approval task")
        eng.complete_task(eng.tasks()[0]["task_id"], True, by="alice")
        approval.result(timeout=10)
        eng.start("parent", False, id="parent").result(timeout=10)
        eng.start("saga", id="cancelled")
        wait_until(lambda: "TimerStarted" in [e["type"] for e in eng.history("cancelled")],
                   message="the saga's timer")
        eng.cancel("cancelled")
        wait_until(lambda: eng.show("cancelled", history=False)["status"] != "running",
                   message="the cancelled saga to close")
        idents = [r["id"] for r in eng.list(limit=100)]
    histories = {ident: [(e["seq"], e["type"]) for e in eng.show(ident)["history"]]
                 for ident in idents}
    eng.close()
    assert len(histories) == 7, sorted(histories)  # the child too
    lines = [json.loads(line) for line in seen.read_text().splitlines()]
    for ident, history in histories.items():
        observed = [(line["seq"], line["type"]) for line in lines if line["id"] == ident]
        assert observed == history, ident
        assert observed[0][1] == "WorkflowStarted", ident
