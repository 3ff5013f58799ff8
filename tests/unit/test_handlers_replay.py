"""Recorded histories with handlers replay against today's code, and catch changed code;
errors keep their cause chain; activity.logger carries the attempt's context."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from onward import ApplicationError, Engine, WorkflowFailed
from onward.errors import error_from_json, error_json

FLOWS = Path(__file__).resolve().parent.parent / "flows" / "handlers.py"
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "histories" / \
    "handlers-approval.json"


def test_a_recorded_history_with_signals_and_updates_replays(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(flows=[str(FLOWS)])
    recorded = json.loads(FIXTURE.read_text())
    types = [e["type"] for e in recorded["history"]]
    assert {"UpdateAccepted", "UpdateCompleted", "SignalReceived"} <= set(types)
    report = eng.replay_history(recorded)
    assert report["ok"] is True, report["error"]


def test_an_update_handler_that_changed_is_non_deterministic(make_engine, tmp_path: Path  # type: ignore[no-untyped-def]
                                                             ) -> None:
    changed = tmp_path / "handlers.py"
    changed.write_text(FLOWS.read_text().replace(
        "self.notes.append(await workflow.execute_activity(record, text))\n        return len",
        "self.notes.append(await workflow.execute_activity(\"handlers.gate\", text))\n"
        "        return len"))
    eng = make_engine(flows=[str(changed)])
    report = eng.replay_history(json.loads(FIXTURE.read_text()))
    assert report["ok"] is False
    assert "ActivityScheduled 'handlers.record'" in report["error"]
    assert "'handlers.gate'" in report["error"]


def test_error_json_keeps_the_cause_chain_and_rebuilds_it() -> None:
    try:
        try:
            raise KeyError("account 7")
        except KeyError as inner:
            raise ApplicationError("deposit refused", "7", type="BankError") from inner
    except ApplicationError as err:
        recorded = error_json(err)
    assert recorded["type"] == "BankError" and recorded["cause"]["type"] == "KeyError"
    rebuilt = error_from_json(json.loads(json.dumps(recorded)))
    assert rebuilt.type == "BankError" and rebuilt.details == ["7"]
    assert isinstance(rebuilt.cause, ApplicationError)
    assert rebuilt.cause.type == "KeyError" and "account 7" in rebuilt.cause.message
    assert "raise KeyError" in rebuilt.cause.traceback_text


def test_activity_error_cause_reaches_workflow_code_and_the_caller(
        db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="onward.activity")
    with Engine(db_path, flows=[str(FLOWS)]) as eng:
        with eng.worker():
            run = eng.start("chain", id="ch")
            with pytest.raises(WorkflowFailed) as failed:
                run.result(timeout=20)
    assert failed.value.error["message"] == "caught BankError: insufficient funds"
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "Refused"
    assert cause.cause is not None and cause.cause.type == "ActivityError"
    assert cause.cause.cause is not None and cause.cause.cause.type == "BankError"
    said = [r for r in caplog.records if r.getMessage() == "the bank said no"]
    assert said and said[0].activity == "chain.fail" and said[0].attempt == 1  # type: ignore[attr-defined]
    assert said[0].workflow_id == "ch"  # type: ignore[attr-defined]
