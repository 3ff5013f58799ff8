"""Signals received but not yet handled are carried into the run that continue-as-new
starts, in order: every signal is handled exactly once across runs (issue 14, item 8).

Real worker processes, on SQLite and PostgreSQL, also with a ``kill -9`` mid-way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from onward import Engine
from tests.helpers import REPO, WorkerProcess, env_for, executions, wait_until

pytestmark = pytest.mark.slow

FLOWS = REPO / "tests" / "flows" / "runtime.py"
N = 6


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return env_for(ONWARD_TEST_LOG=str(tmp_path / "log.jsonl"))


@pytest.fixture
def client(any_db: Path | str) -> Engine:
    eng = Engine(any_db, flows=[str(FLOWS)])
    yield eng
    eng.close()


def handled(env: dict[str, str]) -> list[dict[str, object]]:
    return [line for line in executions(Path(env["ONWARD_TEST_LOG"]))
            if line["label"] == "record"]


def assert_each_handled_once_in_order(client: Engine, env: dict[str, str]) -> None:
    assert client.handle("inbox").result(timeout=30) == N
    lines = handled(env)
    by_key: dict[str, object] = {}
    for line in lines:  # an attempt cut by a kill runs again under the same key
        assert by_key.setdefault(str(line["key"]), line["value"]) == line["value"]
    assert list(by_key.values()) == list(range(N))


def test_signals_sent_before_the_worker_starts_reach_later_runs(
        client: Engine, any_db: Path | str, env: dict[str, str]) -> None:
    """All signals arrive in the first workflow task, with the continue-as-new."""
    client.start("collect_signals", [], N, id="collect")
    for i in range(N):
        client.signal("collect", "item", i)
    with WorkerProcess(any_db, flows=[FLOWS], env=env):
        assert client.handle("collect").result(timeout=30) == list(range(N))
    runs = client.show("collect")["runs"]
    assert len(runs) == N


def test_signals_sent_at_once_are_each_handled_once_in_order(
        client: Engine, any_db: Path | str, env: dict[str, str]) -> None:
    with WorkerProcess(any_db, flows=[FLOWS], env=env):
        client.start("one_signal_per_run", 0, N, id="inbox")
        for i in range(N):
            client.signal("inbox", "item", i)
        assert_each_handled_once_in_order(client, env)
    assert len(handled(env)) == N


def test_signals_survive_continue_as_new_across_a_kill(
        client: Engine, any_db: Path | str, env: dict[str, str]) -> None:
    first = WorkerProcess(any_db, flows=[FLOWS], env=env).wait_ready()
    client.start("one_signal_per_run", 0, N, id="inbox")
    for i in range(N):
        client.signal("inbox", "item", i)
    wait_until(lambda: len(handled(env)) >= 2, message="two signals handled")
    first.kill()
    with WorkerProcess(any_db, flows=[FLOWS], env=env):
        assert_each_handled_once_in_order(client, env)
