"""Workflows and activities of the activity-cancellation tests (issue 17).

Activities append one JSON line per thing they do to ``$ONWARD_TEST_LOG`` ({"event": ...}),
so a test can see, across processes, what ran, in which order, and whether an attempt was
told to stop. Files in ``$ONWARD_TEST_GATES`` hold steps open while they exist.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from onward import activity, workflow

PATIENCE = 60.0
"""How long a lingering activity waits for the test before giving up on its own."""


def log(event: str, **extra: Any) -> None:
    """Append one line to ``$ONWARD_TEST_LOG`` (durably: another process reads it)."""
    path = os.environ.get("ONWARD_TEST_LOG")
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"event": event, "pid": os.getpid(), **extra}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def gates() -> Path:
    return Path(os.environ.get("ONWARD_TEST_GATES", "."))


def hold(name: str) -> None:
    """Wait while the gate file ``name`` exists (at most ``PATIENCE`` s)."""
    end = time.monotonic() + PATIENCE
    while (gates() / name).exists() and time.monotonic() < end:
        time.sleep(0.01)


# -- a money transfer whose deposit can be canceled: the saga refunds the withdrawal ----------
@activity.defn(name="bank.withdraw")
def withdraw(account: str, cents: int) -> int:
    log("withdraw", account=account, cents=cents)
    return cents


@activity.defn(name="bank.deposit")
def deposit(account: str, cents: int) -> str:
    """A slow deposit that heartbeats until it is told to stop (or ``PATIENCE`` passes)."""
    info = activity.info()
    log("deposit.start", attempt=info.attempt)
    beats = 0
    end = time.monotonic() + PATIENCE
    try:
        while time.monotonic() < end:
            beats += 1
            activity.heartbeat(beats)
            time.sleep(0.01)
    except asyncio.CancelledError:
        log("deposit.cancelled", attempt=info.attempt, beats=beats)
        raise
    log("deposit.done", attempt=info.attempt)
    return "deposited"


@activity.defn(name="bank.refund")
def refund(account: str, cents: int) -> int:
    log("refund", account=account, cents=cents)
    return cents


@workflow.defn(name="transfer")
async def transfer(account: str, cents: int, mode: str = "try_cancel") -> str:
    """Withdraw, then deposit; canceled meanwhile, refund the withdrawal. Under
    wait_cancellation_completed the refund waits until the deposit attempt has ended."""
    await workflow.execute_activity(withdraw, account, cents)
    try:
        await workflow.execute_activity(deposit, account, cents, heartbeat_timeout=30,
                                        cancellation_type=mode)
    except asyncio.CancelledError:
        await workflow.execute_activity(refund, account, cents)  # compensate, then go
        raise
    return "transferred"


# -- start_activity handles canceled under each cancellation type ---------------------------
@activity.defn(name="linger")
def linger(label: str) -> int:
    """Heartbeats (counting) until the gate ``LABEL.done`` appears; told to stop, it
    cleans up while the gate ``LABEL.cleanup`` exists, then lets the cancel propagate."""
    log("linger.start", label=label)
    beats = 0
    try:
        end = time.monotonic() + PATIENCE
        while not (gates() / f"{label}.done").exists() and time.monotonic() < end:
            beats += 1
            activity.heartbeat(beats)
            time.sleep(0.01)
    except asyncio.CancelledError:
        log("linger.cancelled", label=label, beats=beats)
        (gates() / f"{label}.cleanup.entered").touch()
        hold(f"{label}.cleanup")
        log("linger.ended", label=label)
        raise
    log("linger.completed", label=label, beats=beats)
    return beats


@activity.defn(name="async_linger")
async def async_linger(label: str) -> str:
    """An async activity that never heartbeats: only a cancelled task stops it early."""
    log("async.start", label=label)
    try:
        await asyncio.sleep(PATIENCE)
    except asyncio.CancelledError:
        log("async.cancelled", label=label)
        raise
    log("async.completed", label=label)
    return "slept"


@activity.defn(name="note")
def note(label: str, outcome: str) -> str:
    log("note", label=label, outcome=outcome)
    return outcome


@workflow.defn(name="cancel_handle")
async def cancel_handle(mode: str, label: str, name: str = "linger") -> str:
    """Start ``name`` under cancellation type ``mode``; on signal "cancel" cancel its handle,
    note how the await ended (activity "note"), then finish on signal "finish"."""
    handle = workflow.start_activity(name, label, cancellation_type=mode,
                                     heartbeat_timeout=30)
    await workflow.wait_signal("cancel")
    handle.cancel("asked by the test")
    try:
        outcome = f"result {await handle}"
    except asyncio.CancelledError:
        outcome = "cancelled"
    await workflow.execute_activity(note, label, outcome)
    await workflow.wait_signal("finish")
    return outcome


# -- heartbeat details carried to the next attempt --------------------------------------------
@activity.defn(name="count_to")
def count_to(target: int, stall_at: int) -> dict[str, int]:
    """Counts to ``target``, heartbeating each number; the first attempt stalls once it has
    heartbeaten ``stall_at`` (for the test to kill its worker); a later one resumes from
    its heartbeat details."""
    info = activity.info()
    start = int(info.heartbeat_details or 0)
    log("count.start", attempt=info.attempt, start=start)
    for n in range(start + 1, target + 1):
        activity.heartbeat(n)
        if n == stall_at and info.attempt == 1:
            hold("stall")
    return {"attempt": info.attempt, "resumed_from": start}


@workflow.defn(name="counting")
async def counting(target: int, stall_at: int) -> dict[str, int]:
    result: dict[str, int] = await workflow.execute_activity(
        count_to, target, stall_at, heartbeat_timeout=30)
    return result


# -- timers the code stopped waiting for ------------------------------------------------------
@workflow.defn(name="timer_cancels")
async def timer_cancels() -> str:
    """A signal beats a wait_signal timeout, and a sleep is canceled: two TimerCanceled."""
    got = await workflow.wait_signal("go", timeout=3600)
    nap = asyncio.ensure_future(workflow.sleep(3600))
    await asyncio.sleep(0)
    nap.cancel()
    try:
        await nap
    except asyncio.CancelledError:
        pass
    return f"got {got}"
