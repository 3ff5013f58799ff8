"""What one workflow step costs: the callbacks a 3-step activation runs on its
deterministic loop (a workflow instance fed its history the way the worker feeds it), and
the activity options' JSON reused from the last activity scheduled. Counts and values, not
timings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onward import payloads, workflow
from onward.advance import _options_json
from onward.events import Event
from onward.instance import WorkflowInstance
from onward.loop import DeterministicLoop
from onward.workflow_runtime import WorkflowInfo


@workflow.defn(name="steps_unit")
async def steps_unit(start: int) -> int:
    a = await workflow.execute_activity("step", start)
    b = await workflow.execute_activity("step", a)
    return await workflow.execute_activity("step", b)


@workflow.defn(name="steps_waiting_unit")
async def steps_waiting_unit(start: int) -> int:
    return await workflow.execute_activity(  # type: ignore[no-any-return]
        "step", start, cancellation_type="wait_cancellation_completed")


def _run(fn: Any, results: list[int], monkeypatch: pytest.MonkeyPatch
         ) -> tuple[list[str], int]:
    """Feed ``fn`` its start and one completion per result; (command types, callbacks)."""
    scheduled = [0]
    real_call_soon = DeterministicLoop.call_soon

    def counting(self: DeterministicLoop, *args: Any, **kwargs: Any) -> asyncio.Handle:
        scheduled[0] += 1
        return real_call_soon(self, *args, **kwargs)

    monkeypatch.setattr(DeterministicLoop, "call_soon", counting)
    inst = WorkflowInstance(fn, WorkflowInfo("w", "r", "steps", 0.0))
    activation = inst.activate([Event(1, "WorkflowStarted", 0.0, {"input": [1]})])
    types = [c.type for c in activation.commands]
    for result in results:
        ref = activation.commands[-1].seq
        activation = inst.activate([Event(inst.cursor + 1, "ActivityCompleted", 1.0,
                                          {"ref": ref, "name": "step", "result": result})])
        types += [c.type for c in activation.commands]
    return types, scheduled[0]


def test_a_completed_activity_takes_one_loop_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The start runs the main task's first step; each completion wakes the task (one
    step: the activity's future keeps no done-callback once it is settled); the end runs
    the main task's done-callback. 1 + 3 + 1 (it was 8: a callback per settled future)."""
    types, callbacks = _run(steps_unit, [2, 3, 4], monkeypatch)
    assert types == ["ActivityScheduled"] * 3 + ["WorkflowCompleted"]
    assert callbacks == 5


def test_waiting_for_a_canceled_attempt_still_goes_through_the_handle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under wait_cancellation_completed execute_activity awaits the handle's shielded
    wait (a second task step per completion), and still returns the result."""
    types, callbacks = _run(steps_waiting_unit, [7], monkeypatch)
    assert types == ["ActivityScheduled", "WorkflowCompleted"]
    assert callbacks > 3


_durations = st.none() | st.floats(min_value=0.001, max_value=1e6) | st.integers(1, 10**6)
_options = st.fixed_dictionaries({
    "retry": st.fixed_dictionaries({
        "initial_interval": st.floats(0.001, 100), "backoff_coefficient": st.floats(1, 10),
        "maximum_interval": _durations, "maximum_attempts": st.integers(0, 100),
        "non_retryable_error_types": st.lists(st.text(max_size=5), max_size=2)}),
    "start_to_close": _durations, "schedule_to_close": _durations, "heartbeat": _durations})


@settings(max_examples=300, deadline=None)
@given(st.lists(_options, min_size=1, max_size=4))
def test_queued_options_read_back_as_their_own_json(sequence: list[dict[str, Any]]) -> None:
    """Each activity's stored options read back as encoding them would, whatever options
    came before (the same ones again, or others)."""
    for options in sequence + sequence[:1]:
        assert payloads.decode(_options_json(options)) == payloads.decode(
            payloads.encode(options))


def test_options_changed_after_queueing_are_encoded_as_they_are_now() -> None:
    """The JSON reused is keyed by a private copy: options changed in place after they
    were queued (the same dict) are encoded afresh, not given the old text."""
    options: dict[str, Any] = {"retry": {"maximum_attempts": 3}, "start_to_close": 300.0,
                               "schedule_to_close": None, "heartbeat": None}
    first = _options_json(options)
    options["retry"]["maximum_attempts"] = 5
    second = _options_json(options)
    assert payloads.decode(first)["retry"]["maximum_attempts"] == 3
    assert payloads.decode(second)["retry"]["maximum_attempts"] == 5
    assert _options_json(options) is second  # the same options again: not encoded again
