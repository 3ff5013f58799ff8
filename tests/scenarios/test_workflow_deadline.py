"""No run can stall the others (guarantee 6, issue 14 item 12).

Workflow code that never yields is stopped at its deadline and its run held stuck with the
reason, while other runs, ``onward start`` and ``onward terminate`` go on; the same after a
``kill -9`` moved the spinning run to the next worker. An observer plugin that blocks
forever does not stop runs from completing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from onward import Engine
from tests.helpers import REPO, WorkerProcess, cli, env_for, wait_until

pytestmark = pytest.mark.slow

FLOWS = REPO / "tests" / "flows" / "runtime.py"
DEADLINE = ["--workflow-deadline", "1"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    gates = tmp_path / "gates"
    gates.mkdir()
    return env_for(ONWARD_TEST_GATES=str(gates))


@pytest.fixture
def client(any_db: Path | str) -> Engine:
    eng = Engine(any_db, flows=[str(FLOWS)])
    yield eng
    eng.close()


def worker(db: Path | str, env: dict[str, str], extra: list[str]) -> WorkerProcess:
    return WorkerProcess(db, flows=[FLOWS], env=env, extra=extra).wait_ready()


def operate(db: Path | str, env: dict[str, str], *args: str) -> str:
    """An operator command from another process: it must succeed (no "stayed locked")."""
    done = cli(*args, "--db", str(db), env=env, timeout=60)
    assert done.returncode == 0, f"onward {' '.join(args)}: {done.stderr}"
    return done.stdout


def assert_held_at_deadline(client: Engine, ident: str) -> None:
    def held() -> bool:
        return bool(client.show(ident, history=False)["stuck"])
    wait_until(held, timeout=30, message=f"{ident} held stuck")
    reason = client.show(ident, history=False)["stuck_reason"]
    assert "did not yield within 1 s" in reason and "runtime.py" in reason, reason


def others_go_on(client: Engine, db: Path | str, env: dict[str, str], tag: str) -> None:
    """Starts and a terminate from other processes succeed; the started runs complete."""
    operate(db, env, "start", "waits", "--id", f"victim-{tag}")
    for i in range(2):
        operate(db, env, "start", "quick", "--id", f"q-{tag}-{i}", "--input", f"[{i}]")
    operate(db, env, "terminate", f"victim-{tag}", "--reason", "not needed")
    for i in range(2):
        assert client.handle(f"q-{tag}-{i}").result(timeout=30) == i
    assert client.show(f"victim-{tag}", history=False)["status"] == "terminated"


def test_a_spinning_workflow_is_held_and_the_others_go_on(
        client: Engine, any_db: Path | str, env: dict[str, str]) -> None:
    with worker(any_db, env, DEADLINE):
        operate(any_db, env, "start", "spin", "--id", "spin")
        wait_until(lambda: Path(env["ONWARD_TEST_GATES"], "spinning").exists(),
                   message="the worker runs the spinning code")
        others_go_on(client, any_db, env, "a")
        assert_held_at_deadline(client, "spin")
        assert client.show("spin", history=False)["status"] == "running"


def test_a_spin_moved_by_kill_9_is_held_by_the_next_worker(
        client: Engine, any_db: Path | str, env: dict[str, str]) -> None:
    spins = ["spin", "spin2"]
    for ident in spins:  # started before any worker: the first one runs into them
        client.start("spin", id=ident)
    first = worker(any_db, env, ["--workflow-deadline", "600"])
    wait_until(lambda: Path(env["ONWARD_TEST_GATES"], "spinning").exists(),
               message="the first worker runs the spinning code")
    first.kill()
    second = worker(any_db, env, DEADLINE)
    for ident in spins:
        assert_held_at_deadline(client, ident)
    others_go_on(client, any_db, env, "b")
    second.kill()
    with worker(any_db, env, DEADLINE):  # retries stuck runs once at start, holds them again
        others_go_on(client, any_db, env, "c")
        for ident in spins:
            assert_held_at_deadline(client, ident)
    for ident in spins:
        failed = [e for e in client.show(ident)["history"]
                  if e["type"] == "WorkflowTaskFailed"]
        assert failed and all(e["attrs"]["kind"] == "deadline" for e in failed)


def test_a_signal_that_sets_code_spinning_holds_only_that_run(
        client: Engine, any_db: Path | str, env: dict[str, str]) -> None:
    with worker(any_db, env, DEADLINE):
        operate(any_db, env, "start", "spin_after_signal", "--id", "later")
        operate(any_db, env, "signal", "later", "go")
        others_go_on(client, any_db, env, "d")
        assert_held_at_deadline(client, "later")


OBSERVER = '''
import threading

from onward import hookimpl

@hookimpl
def onward_event(event):
    threading.Event().wait()  # an observer that never returns
'''


def test_an_observer_that_blocks_forever_does_not_stall_the_worker(
        client: Engine, any_db: Path | str, env: dict[str, str], tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "stuck_observer.py").write_text(OBSERVER)
    with WorkerProcess(any_db, flows=[FLOWS], plugins=[plugins], env=env):
        for i in range(5):
            client.start("quick", i, id=f"o{i}")
        for i in range(5):
            assert client.handle(f"o{i}").result(timeout=30) == i
