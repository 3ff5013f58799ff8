"""A flow whose activity holds its attempt until a gate file appears (Workers screen tests)."""

from __future__ import annotations

import time
from pathlib import Path

from onward import activity, workflow


@activity.defn(name="workers.hold")
def hold(gate: str) -> str:
    """Run until ``gate`` exists (bounded: a test that forgets the gate still ends)."""
    deadline = time.monotonic() + 30
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return "released"


@workflow.defn(name="held")
async def held(gate: str) -> str:
    """One activity that a worker holds until the gate opens."""
    result: str = await workflow.execute_activity("workers.hold", gate)
    return result
