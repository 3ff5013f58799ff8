"""How failures are recorded in history: one serialiser (engine.errors.error_json) for
workflow failures and activity attempts alike, surviving exceptions that cannot print."""

from __future__ import annotations

import ast
import json
import queue
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onward.activity import ActivityDefinition
from onward.attempts import Attempt
from onward.errors import ApplicationError, error_json
from onward.executor import ActivityExecutor, Outcome


class _Typed(Exception):
    """Not an ApplicationError, but carries a ``type`` attribute (as some libraries' do)."""

    type = "not-a-kind"


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("broken __str__")


def _attempt_error(exc: BaseException) -> dict[str, Any]:
    """What the executor records for an activity attempt that raised ``exc``."""
    def fails() -> None:
        raise exc

    outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    executor = ActivityExecutor(1, {"fails": ActivityDefinition("fails", fails, False)}.get,
                                outcomes, lambda: None, lambda attempt, details: None)
    try:
        executor.submit(Attempt("run-1", 1, "fails", [], {}, 1, None, "wf", ""))
        outcome = outcomes.get(timeout=30)
    finally:
        executor.shutdown(wait=True)
    assert not outcome.ok
    return outcome.error


def _without_traceback(err: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in err.items() if k != "traceback"}


def test_an_exception_with_a_type_attribute_is_recorded_under_its_class_name() -> None:
    """Only ApplicationError's ``type`` names an error kind; any other attribute is data."""
    assert error_json(_Typed("x"))["type"] == "_Typed"
    assert _attempt_error(_Typed("x"))["type"] == "_Typed"


def test_activity_attempts_and_workflows_record_an_error_the_same_way() -> None:
    """The executor keeps no serialiser of its own: details and kind come out the same."""
    exc = ApplicationError("card declined", {"code": 51}, type="Declined", non_retryable=True)
    assert _without_traceback(_attempt_error(exc)) == _without_traceback(error_json(exc))
    assert _attempt_error(exc)["details"] == [{"code": 51}]


def test_an_exception_that_cannot_print_itself_is_still_recorded() -> None:
    err = error_json(_Unprintable())
    assert err["type"] == "_Unprintable"
    assert "cannot be printed" in err["message"]
    assert _attempt_error(_Unprintable())["type"] == "_Unprintable"


@settings(max_examples=60, deadline=None)
@given(message=st.text(max_size=12_000), kind=st.none() | st.text(min_size=1, max_size=20),
       non_retryable=st.booleans(),
       details=st.lists(st.integers() | st.text(max_size=5) | st.just(object()), max_size=3))
def test_every_recorded_error_is_bounded_json(message: str, kind: str | None,
                                              non_retryable: bool, details: list[Any]) -> None:
    """Whatever an ApplicationError holds, its record is JSON with bounded text, and
    details that are not JSON are left out rather than failing the recording."""
    exc = ApplicationError(message, *details, type=kind, non_retryable=non_retryable)
    err = error_json(exc)
    json.dumps(err)
    assert err["type"] == (kind or "ApplicationError")
    assert len(err["message"]) <= 10_000 and len(err["traceback"]) <= 20_000
    assert err.get("non_retryable", False) is non_retryable
    jsonable = not any(type(d) is object for d in details)
    assert ("details" in err) == (bool(details) and jsonable)


def test_no_engine_module_but_errors_builds_an_error_record() -> None:
    """The family: any dict with a message and a traceback is an error record, and only
    errors.py makes those (a second serialiser drifts, as the executor's did)."""
    engine = Path(__file__).resolve().parents[2] / "engine"
    wrong = []
    for path in sorted(engine.rglob("*.py")):
        if path.name == "errors.py" and path.parent == engine:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if {"message", "traceback"} <= keys:
                    wrong.append(f"{path.relative_to(engine)}:{node.lineno}")
            elif isinstance(node, ast.Name) and node.id == "safe_traceback":
                wrong.append(f"{path.relative_to(engine)}:{node.lineno} safe_traceback")
    assert not wrong, "error records built outside errors.py: " + ", ".join(wrong)
