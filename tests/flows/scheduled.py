"""Workflows that schedules start in the schedule tests."""

from __future__ import annotations

from onward import workflow


@workflow.defn(name="tick")
async def tick(tag: str = "") -> str:
    """Returns at once: the shape a fast schedule fires many times."""
    return f"tick {tag}"


@workflow.defn(name="held")
async def held() -> str:
    """Stays open until signalled ``go`` (an open previous run for the overlap policies)."""
    await workflow.wait_signal("go")
    return "released"
