"""Flows for tests/unit/test_sqlite_finish.py: a run that signals another right after a
step, and one that takes a step and then waits for that signal."""

from __future__ import annotations

from onward import workflow


@workflow.defn(name="step_then_signal")
async def step_then_signal(target: str) -> str:
    """One step, then signals ``target`` with "item"."""
    await workflow.execute_activity("step", "s", 0)
    await workflow.get_external_workflow_handle(target).signal("item", "item")
    return "sent"


@workflow.defn(name="step_then_wait")
async def step_then_wait() -> list[object]:
    """One step, then waits for the "item" signal; both values."""
    first = await workflow.execute_activity("step", "w", 0)
    return [first, await workflow.wait_signal("item")]
