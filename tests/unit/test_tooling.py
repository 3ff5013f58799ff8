"""The shared test tooling keeps its word: bounded waits end at their deadline, and worker
logs stay inside the test that made them."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import WorkerProcess

SLOW_IMPORT = """\
import time
time.sleep(600)  # the worker loads this before it registers: it never prints its line
"""


def test_waiting_for_a_worker_that_never_prints_gives_up_at_the_deadline(
        tmp_path: Path) -> None:
    flows = tmp_path / "slow_flows.py"
    flows.write_text(SLOW_IMPORT)
    worker = WorkerProcess(tmp_path / "onward.db", flows=[flows], log=tmp_path / "w.log")
    failures: list[BaseException] = []

    def wait() -> None:
        try:
            worker.wait_ready(timeout=1.0)
        except AssertionError as err:
            failures.append(err)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(timeout=30)  # a bound on the test, far below the worker's 600 s silence
    try:
        assert not waiter.is_alive(), "wait_ready blocked in readline past its deadline"
        assert len(failures) == 1 and "did not start" in str(failures[0])
    finally:
        worker.kill()


def test_a_worker_started_without_a_log_path_logs_into_the_tests_tmp_path(
        tmp_path: Path) -> None:
    flows = Path(__file__).parents[1] / "flows" / "basic.py"
    with WorkerProcess(tmp_path / "onward.db", flows=[flows]) as worker:
        assert worker.log_path.resolve().is_relative_to(tmp_path.resolve())


def test_a_worker_that_exits_at_once_is_reported_with_its_log(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_flows.py"
    worker = WorkerProcess(tmp_path / "onward.db", flows=[missing], log=tmp_path / "w.log")
    with pytest.raises(AssertionError, match="did not start"):
        worker.wait_ready(timeout=60)


# ------------------------------------------------- one worker helper, one bounded wait

ROOT = Path(__file__).parents[2]
SHARED = ROOT / "tests" / "helpers.py"


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _builds_worker_command(tree: ast.AST) -> list[int]:
    """Lines of list displays holding both "onward.cli" and "worker": a worker command."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple):
            words = {e.value for e in node.elts if isinstance(e, ast.Constant)}
            if {"onward.cli", "worker"} <= words:
                hits.append(node.lineno)
    return hits


def _polling_loops(tree: ast.AST) -> list[int]:
    """Lines of ``while`` loops that sleep between checks: a hand-made bounded wait."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.While):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) \
                        and inner.func.attr == "sleep":
                    hits.append(node.lineno)
                    break
    return hits


POLLING_LOOP_ALLOWED = {
    "bench/console_bench.py": "awaits the console's table inside Textual's event loop "
                              "(asyncio.sleep); wait_until is synchronous",
    "bench/console_open.py": "awaits the console's table inside Textual's event loop "
                             "(asyncio.sleep); wait_until is synchronous",
    "bench/console_keys.py": "spins Textual's event loop until a key's result is on screen "
                             "(asyncio.sleep(0)); wait_until is synchronous",
}


def test_only_the_shared_helper_builds_a_worker_command_line() -> None:
    """Every worker a test, the soak or a benchmark starts is a tests.helpers.WorkerProcess
    (``prefix=``, ``pid_namespace=``, ``cwd=``, ``env=``, ``extra=`` cover the variants)."""
    found = {}
    for path in _modules("tests", "bench"):
        rel = path.relative_to(ROOT).as_posix()
        if path != SHARED:
            lines = _builds_worker_command(ast.parse(path.read_text(), str(path)))
            if lines:
                found[rel] = lines
    assert found == {}, f"use tests.helpers.WorkerProcess instead: {found}"


def test_bench_and_soak_wait_only_through_wait_until() -> None:
    found = {}
    for path in _modules("bench", "tests/soak"):
        rel = path.relative_to(ROOT).as_posix()
        lines = _polling_loops(ast.parse(path.read_text(), str(path)))
        if lines and rel not in POLLING_LOOP_ALLOWED:
            found[rel] = lines
    assert found == {}, f"use tests.helpers.wait_until instead of a sleeping loop: {found}"


def test_the_soak_runs_from_the_command_line_as_tests_soak() -> None:
    done = subprocess.run([sys.executable, "-m", "tests.soak", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage: python -m tests.soak" in done.stdout and "--pid-namespaces" in done.stdout
    assert not (ROOT / "bench" / "soak.py").exists()
