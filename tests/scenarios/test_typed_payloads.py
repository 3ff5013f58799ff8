"""Typed payloads end to end: dataclasses through the CLI and a real worker process,
pydantic models in process, bad fields refused where they are passed, and a recorded
history with typed payloads replayed."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pydantic
import pytest

from onward import Engine, activity, workflow
from onward.errors import PayloadError
from tests.flows import typed
from tests.helpers import REPO, WorkerProcess, cli, cli_json, executions, wait_until

pytestmark = pytest.mark.slow

TYPED = str(REPO / "tests" / "flows" / "typed.py")
FIXTURE = REPO / "tests" / "fixtures" / "histories" / "typed-reimburse.json"

CLAIM = typed.CLAIM

RECEIPT = {
    "claim": {"employee": "dana", "amount": 12.5, "currency": "EUR",
              "submitted": "2026-12-01T09:30:00Z",
              "lines": [{"what": "train", "cost": "12.50", "day": "2026-11-30"},
                        {"what": "lunch", "cost": "8"}]},  # (day: at its default)
    "number": "00000000-0000-0000-0000-000000000004", "total": "20.50", "checked_by": "dana"}
"""The receipt the worker computes for CLAIM, as the stored JSON."""


def test_a_dataclass_goes_in_and_comes_out_through_the_cli(tmp_path: Path, log: Path) -> None:
    db = str(tmp_path / "onward.db")
    with WorkerProcess(db, flows=[TYPED]):
        started = cli_json("start", "reimburse", "--db", db, "--flows", TYPED, "--id", "c1",
                           "--input", json.dumps([CLAIM]))
        assert started["created"]
        done = cli("result", "c1", "--db", db, "--wait", "30")
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == RECEIPT
    seen = {line["kind"]: line for line in executions(log)}
    # the activity in the worker process received real objects, not dicts and strings
    assert seen["typed.check"]["claim"] == "Claim"
    assert seen["typed.check"]["currency"] == "Currency"
    assert seen["typed.check"]["submitted"] == "datetime"
    assert seen["typed.check"]["lines"] == [["Line", "Decimal", "date"],
                                            ["Line", "Decimal", "NoneType"]]
    assert seen["typed.archive"] == {"kind": "typed.archive", "receipt": "Receipt",
                                     "number": "UUID"}


def test_a_bad_field_in_start_is_refused_with_its_path_and_no_run(tmp_path: Path) -> None:
    db = str(tmp_path / "onward.db")
    lines = [{"what": "train", "cost": "12.50"}, {"what": "taxi", "cost": "a lot"}]
    refused = cli("start", "reimburse", "--db", db, "--flows", TYPED,
                  "--input", json.dumps([{**CLAIM, "lines": lines}]))
    assert refused.returncode == 2, refused.stderr
    message = refused.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "input of workflow reimburse" in message, message
    assert "at $[0].lines[1].cost" in message, message
    assert cli_json("list", "--db", db) == []


@pytest.mark.parametrize(("field", "value", "path"), [
    ("amount", "12.5", r"Expected `float`, got `str` at \$\[0\]\.amount"),
    ("employee", 7, r"Expected `str`, got `int` at \$\[0\]\.employee"),
    ("currency", "GBP", r"Invalid enum value 'GBP' at \$\[0\]\.currency"),
    ("submitted", "2026-12-01", r"at \$\[0\]\.submitted"),
    ("lines", [{"what": "taxi"}], r"missing required field `cost` at \$\[0\]\.lines\[0\]"),
])
def test_each_bad_field_is_refused_in_process_before_anything_is_written(
        tmp_path: Path, field: str, value: Any, path: str) -> None:
    with Engine(tmp_path / "onward.db", flows=[TYPED]) as eng:
        with pytest.raises(PayloadError, match=path):
            eng.start("reimburse", {**CLAIM, field: value}, id="never")
        assert eng.list(all_runs=True) == []


def test_a_bad_field_reaching_a_worker_holds_the_run_naming_the_path(tmp_path: Path) -> None:
    """A client without the code cannot check the input; the worker refuses it, holding
    the run (a fix of the code or a new run can follow)."""
    db = str(tmp_path / "onward.db")
    with WorkerProcess(db, flows=[TYPED]):
        started = cli_json("start", "reimburse", "--db", db, "--id", "c2",
                           "--input", json.dumps([{**CLAIM, "submitted": "yesterday"}]))
        assert started["created"]
        shown = wait_until(lambda: (s := cli_json("show", "c2", "--db", db))["stuck"] and s,
                           timeout=20, message="run c2 held")
    assert "PayloadError" in shown["stuck_reason"]
    assert "at $[0].submitted" in shown["stuck_reason"]


def test_a_result_with_no_json_form_fails_the_attempt_naming_the_path(tmp_path: Path) -> None:
    with Engine(tmp_path / "onward.db", flows=[TYPED]) as eng, eng.worker():
        handle = eng.start(typed.reimburse_badly, typed.Claim(
            "dana", 1.0, typed.Currency.USD, typed.datetime(2026, 12, 1)), id="bad")
        with pytest.raises(Exception, match="activity typed.bad_result failed"):
            handle.result(timeout=10)
        failed = [e for e in eng.show("bad")["history"] if e["type"] == "ActivityAttemptFailed"]
    assert len(failed) == 1
    error = failed[0]["attrs"]["error"]
    assert error["type"] == "PayloadError"
    assert "the result of activity typed.bad_result is not JSON" in error["message"]
    assert "at $.amount" in error["message"]


# -- pydantic models, in process (workflows beside the test) ---------------------------------

class Money(pydantic.BaseModel):
    amount: Decimal
    currency: str = "EUR"


class Invoice(pydantic.BaseModel):
    number: UUID
    due: date
    lines: list[Money]


@activity.defn(name="pyd.total")
def total(invoice: Invoice) -> Money:
    assert isinstance(invoice, Invoice) and isinstance(invoice.lines[0], Money), invoice
    return Money(amount=sum((m.amount for m in invoice.lines), Decimal(0)))


@workflow.defn(name="pyd.invoice")
async def invoice_flow(invoice: Invoice) -> Money:
    assert isinstance(invoice, Invoice), invoice
    money = await workflow.execute_activity(total, invoice)
    assert isinstance(money, Money), money
    return money  # type: ignore[no-any-return]


@workflow.defn(name="pyd.parent")
async def parent(invoice: Invoice) -> list[str]:
    money = await workflow.execute_child(invoice_flow, invoice)  # by function: typed
    raw = await workflow.execute_child("pyd.invoice", invoice)  # by name: JSON
    return [type(money).__name__, type(raw).__name__]


def test_a_child_result_is_typed_when_the_child_is_called_by_function(tmp_path: Path) -> None:
    invoice = Invoice(number=UUID(int=8), due=date(2027, 2, 1), lines=[Money(amount=1)])
    with Engine(tmp_path / "onward.db", flows=[__name__]) as eng, eng.worker():
        assert eng.start(parent, invoice).result(timeout=10) == ["Money", "dict"]


def test_a_pydantic_model_goes_in_and_comes_out(tmp_path: Path) -> None:
    invoice = Invoice(number=UUID(int=7), due=date(2027, 1, 31),
                      lines=[Money(amount=Decimal("1.25")), Money(amount=Decimal("2.50"))])
    with Engine(tmp_path / "onward.db", flows=[__name__]) as eng, eng.worker():
        handle = eng.start(invoice_flow, invoice, id="inv")
        assert handle.result(timeout=10) == Money(amount=Decimal("3.75"))
        # by name the handle knows no function: JSON, unless a type is asked for
        by_name = eng.handle("inv")
        assert by_name.result(timeout=10) == {"amount": "3.75", "currency": "EUR"}
        assert by_name.result(timeout=10, result_type=Money) == Money(amount=Decimal("3.75"))
        assert eng.show("inv")["input"] == [{"number": str(UUID(int=7)), "due": "2027-01-31",
                                             "lines": [{"amount": "1.25", "currency": "EUR"},
                                                       {"amount": "2.50", "currency": "EUR"}]}]
        with pytest.raises(PayloadError, match=r"at \$\[0\]\.lines\[1\]\.amount"):
            eng.start(invoice_flow, {**invoice.model_dump(mode="json"),
                                     "lines": [{"amount": 1}, {"amount": "many"}]})
        assert [r["id"] for r in eng.list()] == ["inv"]


@activity.defn(name="pyd.beats")
def beats(amount: Decimal) -> str:
    activity.heartbeat(Money(amount=amount))  # a model has a JSON form
    try:
        activity.heartbeat({"bad": [float("nan")]})
    except PayloadError as err:
        return str(err)
    return "accepted"


@workflow.defn(name="pyd.beating")
async def beating() -> str:
    return await workflow.execute_activity(beats, Decimal("1.5"))  # type: ignore[no-any-return]


def test_heartbeat_details_are_json_and_refused_where_given_naming_the_path(
        tmp_path: Path) -> None:
    with Engine(tmp_path / "onward.db", flows=[__name__]) as eng, eng.worker():
        said = eng.start(beating).result(timeout=10)
    assert said.startswith("heartbeat details is not JSON") and said.endswith("at $.bad[0]")


# -- replay ----------------------------------------------------------------------------------

def test_a_recorded_history_with_typed_payloads_replays(tmp_path: Path) -> None:
    """The fixture was recorded by tests/fixtures/record_histories.py; its workflow asserts
    at every step that the payloads arrived typed, so a replay that lost a type fails."""
    recorded = json.loads(FIXTURE.read_text())
    assert recorded["input"] == [CLAIM] and recorded["result"] == RECEIPT
    with Engine(tmp_path / "onward.db", flows=[TYPED]) as eng:
        report = eng.replay_history(recorded)
    assert report["ok"] is True, report
