"""What one activation costs in loop steps: a workflow instance fed a 3-step history the
way the worker feeds it, counting the callbacks its deterministic loop runs. Counts, not
timings: each callback is a handle made and a loop step taken on every workflow step."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from onward import workflow
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
