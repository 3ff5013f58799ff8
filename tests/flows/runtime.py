"""Workflows for the runtime guarantees: cancel as a state, signals carried across
continue-as-new, and workflow code that never yields.

Activities append one line per execution to ``$ONWARD_TEST_LOG``; ``gated`` blocks while the
file ``$ONWARD_TEST_GATES/<label>`` exists, so a test can hold a compensation open.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from onward import activity, workflow


def _log(label: str, **extra: object) -> None:
    path = os.environ.get("ONWARD_TEST_LOG")
    if not path:
        return
    info = activity.info()
    line = json.dumps({"label": label, "key": info.idempotency_key,
                       "attempt": info.attempt, "pid": os.getpid(), **extra}) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


@activity.defn(name="gated")
def gated(label: str) -> str:
    """Announces itself (``<label>.entered``), waits while its gate file exists, logs."""
    gates = os.environ.get("ONWARD_TEST_GATES")
    if gates:
        Path(gates, f"{label}.entered").touch()
        while Path(gates, label).exists():
            time.sleep(0.01)
    _log(label)
    return label


@activity.defn(name="record")
def record(value: object) -> object:
    """Logs that ``value`` was handled."""
    _log("record", value=value)
    return value


@workflow.defn(name="gated_saga")
async def gated_saga() -> str:
    """Books, then waits; a cancel runs the (gated) compensation in ``except``."""
    await workflow.execute_activity("gated", "book")
    try:
        await workflow.sleep(3600)
    except asyncio.CancelledError:
        await workflow.execute_activity("gated", "compensate")
        raise
    return "finished"


@workflow.defn(name="gated_saga_finally")
async def gated_saga_finally() -> str:
    """The same saga with its compensation in a ``finally`` block."""
    await workflow.execute_activity("gated", "book")
    done = False
    try:
        await workflow.sleep(3600)
        done = True
    finally:
        if not done:
            await workflow.execute_activity("gated", "compensate")
    return "finished"


@workflow.defn(name="gated_saga_parent")
async def gated_saga_parent() -> str:
    """Waits on a gated_saga child (canceling the parent asks the child to cancel)."""
    return str(await workflow.execute_child("gated_saga", id="saga-child"))


@workflow.defn(name="one_signal_per_run")
async def one_signal_per_run(handled: int, total: int) -> int:
    """Handles one ``item`` signal (an activity records it), then continues as new."""
    if handled >= total:
        return handled
    value = await workflow.wait_signal("item")
    await workflow.execute_activity("record", value)
    workflow.continue_as_new(handled + 1, total)
    return -1  # not reached


@workflow.defn(name="collect_signals")
async def collect_signals(got: list[object], total: int) -> list[object]:
    """Takes one ``item`` signal per run (no activity), continuing as new until ``total``."""
    got = [*got, await workflow.wait_signal("item")]
    if len(got) < total:
        workflow.continue_as_new(got, total)
    return got


@workflow.defn(name="spin")
async def spin() -> None:
    """Workflow code that never yields (announcing the spin in ``$ONWARD_TEST_GATES``)."""
    gates = os.environ.get("ONWARD_TEST_GATES")
    if gates:
        Path(gates, "spinning").touch()  # noqa: ASYNC240 - the test watches for it
    while True:
        pass


@workflow.defn(name="spin_after_signal")
async def spin_after_signal() -> None:
    """Waits for ``go``, then never yields."""
    await workflow.wait_signal("go")
    while True:
        pass


@workflow.defn(name="quick")
async def quick(n: int) -> int:
    """One recorded step."""
    return int(await workflow.execute_activity("record", n))


@workflow.defn(name="waits")
async def waits() -> object:
    """Waits for a ``go`` signal (something an operator can terminate)."""
    return await workflow.wait_signal("go")


@workflow.defn(name="spin_swallowing")
async def spin_swallowing(seconds: float) -> None:
    """Never yields for ``seconds``, swallowing whatever is raised in it to stop it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            while time.monotonic() < end:
                pass
        except BaseException:  # noqa: BLE001, S110 - the point of this workflow
            pass


@workflow.defn(name="busy_steps")
async def busy_steps(n: int, work: int) -> int:
    """``n`` recorded steps, with ``work`` iterations of pure-Python arithmetic before each
    (a short deadline then stops the code at arbitrary points)."""
    total = 0
    for i in range(n):
        total += sum(j * j for j in range(work)) % 7
        total += int(await workflow.execute_activity("record", i))
    return total
