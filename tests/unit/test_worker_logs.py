"""Workers say what went wrong: failed and timed-out attempts, failed and stuck runs are
logged at WARNING on ``onward.*`` loggers, naming the workflow id, run id, activity and
attempt in the message and as fields of the record (for structured log handlers)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from onward import Engine, WorkflowFailed

FLOWS = str(Path(__file__).parents[1] / "flows" / "basic.py")


def warnings_about(caplog: pytest.LogCaptureFixture, workflow_id: str
                   ) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING
            and r.name.startswith("onward") and getattr(r, "workflow_id", None) == workflow_id]


@pytest.fixture
def eng(make_engine) -> Engine:  # type: ignore[no-untyped-def]
    return make_engine(flows=[FLOWS])  # type: ignore[no-any-return]


def test_a_failed_attempt_that_will_retry_is_logged_with_its_retry(
        eng: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onward")
    with eng.worker():
        handle = eng.start("retrying", 1, id="flaky-one")
        assert handle.result(timeout=10) == "ok after 2"
    [record] = warnings_about(caplog, "flaky-one")
    message = record.getMessage()
    assert "flaky" in message and "flaky-one" in message and handle.run_id in message
    assert "attempt 1" in message and "retry" in message and "flaky failure 1" in message
    assert (record.run_id, record.activity, record.attempt) == (  # type: ignore[attr-defined]
        handle.run_id, "flaky", 1)


def test_a_failed_run_and_its_last_attempt_are_logged(
        eng: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onward")
    with eng.worker():
        handle = eng.start("refused", "non_retryable", id="refused-one")
        with pytest.raises(WorkflowFailed):
            handle.result(timeout=10)
    records = warnings_about(caplog, "refused-one")
    attempt, run = records
    assert attempt.activity == "refuse" and attempt.attempt == 1  # type: ignore[attr-defined]
    assert "no retry" in attempt.getMessage() and "refused for good" in attempt.getMessage()
    assert "failed" in run.getMessage() and handle.run_id in run.getMessage()
    assert run.run_id == handle.run_id  # type: ignore[attr-defined]


def test_a_stuck_run_is_logged(eng: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onward")
    with eng.worker():
        handle = eng.start("buggy", id="buggy-one")
        eng.wait_for_close(0.05)
        from tests.helpers import wait_until
        wait_until(lambda: warnings_about(caplog, "buggy-one"), message="a stuck run logged")
    [record] = warnings_about(caplog, "buggy-one")
    assert "stuck" in record.getMessage() and "KeyError" in record.getMessage()
    assert record.run_id == handle.run_id  # type: ignore[attr-defined]


def test_a_timed_out_attempt_is_logged(eng: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onward")
    with eng.worker():
        handle = eng.start("times_out", 5.0, 0.2, id="slow-one")
        with pytest.raises(WorkflowFailed):
            handle.result(timeout=20)
    timed_out = [r for r in warnings_about(caplog, "slow-one") if "timed out" in r.getMessage()]
    assert [r.attempt for r in timed_out] == [1, 2]  # type: ignore[attr-defined]
    assert all(r.activity == "hang" for r in timed_out)  # type: ignore[attr-defined]


def test_a_run_held_by_its_first_workflow_task_at_an_eager_start_is_logged(
        eng: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onward")
    with eng.worker():
        handle = eng.start("wall_clock", id="eager-stuck")  # its first task runs in start()
        [record] = warnings_about(caplog, "eager-stuck")
    assert "held stuck" in record.getMessage()
    assert record.run_id == handle.run_id  # type: ignore[attr-defined]


def test_a_refused_reload_is_logged_at_warning_and_a_taken_one_at_info(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from onward.reload import watch_code
    from tests.helpers import wait_until
    v1 = Path(__file__).parents[1] / "flows" / "v1" / "orders.py"
    flows = tmp_path / "orders.py"
    flows.write_text(v1.read_text())
    caplog.set_level(logging.INFO, logger="onward")
    with Engine(tmp_path / "onward.db", flows=[str(flows)]) as eng:
        watcher = watch_code(eng, None)
        try:
            def logged(text: str, word: str) -> list[logging.LogRecord]:
                """Write ``text`` (again: the watcher may not be watching yet) until the
                reload's outcome is logged."""
                flows.write_text(text)
                return [r for r in caplog.records
                        if r.name == "onward.reload" and word in r.getMessage()]

            refused = wait_until(lambda: logged("def broken(:\n", "kept"), interval=0.5,
                                 message="the refused reload logged")
            assert refused[0].levelno == logging.WARNING
            taken = wait_until(lambda: logged(v1.read_text(), "reloaded"), interval=0.5,
                               message="the reload logged")
            assert taken[0].levelno == logging.INFO
        finally:
            watcher.stop()


def test_a_timed_out_manual_task_is_logged(eng: Engine,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onward")
    with eng.worker():
        handle = eng.start("approval", 0.2, id="late-approval")
        assert handle.result(timeout=20) == "timed out"
    [record] = warnings_about(caplog, "late-approval")
    assert "manual task approve" in record.getMessage()
    assert "timed out" in record.getMessage() and handle.run_id in record.getMessage()
    assert record.run_id == handle.run_id  # type: ignore[attr-defined]


ABANDONS = '''
import asyncio
from onward import workflow


@workflow.defn(name="abandons")
async def abandons() -> str:
    asyncio.ensure_future(workflow.execute_child("saga", id="abandoned-child"))
    await workflow.sleep(0.05)
    return "left it"
'''


def test_a_child_terminated_as_its_parent_closes_is_logged(
        tmp_path: Path, make_engine, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="onward")
    (tmp_path / "abandons.py").write_text(ABANDONS)
    eng = make_engine(flows=[str(tmp_path / "abandons.py"), FLOWS])
    with eng.worker():
        assert eng.start("abandons", id="leaving-parent").result(timeout=20) == "left it"
    [record] = warnings_about(caplog, "abandoned-child")
    assert "terminated" in record.getMessage()
    assert "parent leaving-parent closed (completed)" in record.getMessage()
    assert record.run_id == eng.handle("abandoned-child").run_id  # type: ignore[attr-defined]
