"""Provider limits hold across every worker process sharing the database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onward import Engine
from tests.helpers import WorkerProcess, env_for, wait_until

pytestmark = pytest.mark.slow

PROVIDER = '''
import json, os, time
from pathlib import Path
from onward import activity, hookimpl

@activity.defn(name="limited.call", max_concurrent=2)
def call(i):
    folder = Path(os.environ["LIMIT_DIR"])
    mark = folder / f"{os.getpid()}-{i}"
    mark.touch()
    running = len(list(folder.iterdir()))
    with open(os.environ["LIMIT_LOG"], "a") as f:
        f.write(json.dumps({"running": running, "at": time.time()}) + "\\n")
    time.sleep(0.15)
    mark.unlink()
    return i

@activity.defn(name="limited.rate", max_per_second=4)
def rate(i):
    with open(os.environ["LIMIT_LOG"], "a") as f:
        f.write(json.dumps({"rate": i, "at": time.time()}) + "\\n")
    return i

@hookimpl
def onward_activities():
    return [call, rate]
'''

FLOW = '''
from onward import workflow

@workflow.defn(name="limited")
async def limited(i: int, which: str) -> int:
    return await workflow.execute_activity(which, i)
'''


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, str]]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "limited.py").write_text(PROVIDER)
    flows = tmp_path / "flows.py"
    flows.write_text(FLOW)
    running = tmp_path / "running"
    running.mkdir()
    log = tmp_path / "log.jsonl"
    env = env_for(LIMIT_DIR=str(running), LIMIT_LOG=str(log))
    return plugins, flows, log, env


def test_max_concurrent_across_two_workers(setup, any_db: Path | str) -> None:  # type: ignore[no-untyped-def]
    plugins, flows, log, env = setup
    db = any_db
    eng = Engine(db, flows=[str(flows)])
    with WorkerProcess(db, flows=[flows], plugins=[plugins], env=env, concurrency=4), \
            WorkerProcess(db, flows=[flows], plugins=[plugins], env=env, concurrency=4):
        for i in range(12):
            eng.start("limited", i, "limited.call", id=f"c{i}")

        def held() -> bool:
            return any(a["state"].startswith("queued")
                       for i in range(12)
                       for a in eng.show(f"c{i}", history=False)["pending"]["activities"])
        wait_until(held, message="attempts held back by the limit show as queued")
        for i in range(12):
            assert eng.handle(f"c{i}").result(timeout=60) == i
    seen = [json.loads(line)["running"] for line in log.read_text().splitlines()]
    assert len(seen) == 12
    assert max(seen) <= 2, f"more than 2 attempts ran at once: {seen}"
    eng.close()


def test_max_per_second_spreads_starts(setup, any_db: Path | str) -> None:  # type: ignore[no-untyped-def]
    plugins, flows, log, env = setup
    db = any_db
    eng = Engine(db, flows=[str(flows)])
    for i in range(10):
        eng.start("limited", i, "limited.rate", id=f"r{i}")
    with WorkerProcess(db, flows=[flows], plugins=[plugins], env=env, concurrency=8), \
            WorkerProcess(db, flows=[flows], plugins=[plugins], env=env, concurrency=8):
        for i in range(10):
            assert eng.handle(f"r{i}").result(timeout=60) == i
    starts = sorted(json.loads(line)["at"] for line in log.read_text().splitlines())
    for i, t in enumerate(starts):
        in_window = [s for s in starts[i:] if s - t < 1.0 - 0.05]
        assert len(in_window) <= 4, f"more than 4 starts within a second: {starts}"
    failures = [e for i in range(10) for e in eng.show(f"r{i}")["history"]
                if e["type"] == "ActivityAttemptFailed"]
    assert failures == [], "held attempts wait in the queue; they do not fail"
    eng.close()
