"""The shared test tooling keeps its word: bounded waits end at their deadline, and worker
logs stay inside the test that made them."""

from __future__ import annotations

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
