"""Workflows and activities for the crash soak, the fault scenarios and the abuse tests.

Activities append one JSON line per execution to ``$ONWARD_TEST_LOG`` (kind, idempotency
key, attempt, pid), so a test can compare what really ran with what history recorded.
Nothing here is fsynced: a SIGKILLed worker's writes are already in the page cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from typing import Any

from onward import ApplicationError, RetryPolicy, activity, workflow

FAST_RETRY = RetryPolicy(initial_interval=0.02, backoff_coefficient=2.0,
                         maximum_interval=0.5, maximum_attempts=0)


def _log(kind: str, **extra: Any) -> None:
    path = os.environ.get("ONWARD_TEST_LOG")
    if not path:
        return
    info = activity.info()
    line = json.dumps({"kind": kind, "key": info.idempotency_key, "attempt": info.attempt,
                       "pid": os.getpid(), "t": time.time(), **extra}) + "\n"
    with open(path, "a") as f:  # one write() per line: O_APPEND keeps lines whole
        f.write(line)


# --------------------------------------------------------------------------- activities


@activity.defn(name="soak.step")
def soak_step(label: str, value: int) -> int:
    """Logs its execution, then takes a random moment (a kill may land in it): value + 1."""
    _log("soak.step", label=label)
    delay = float(os.environ.get("ONWARD_SOAK_DELAY", "0.02"))
    time.sleep(random.uniform(0, delay))
    return value + 1


@activity.defn(name="soak.late")
def soak_late(hang: float, beats: int = 0) -> str:
    """Attempt 1 heartbeats ``beats`` times, then hangs ``hang`` s ignoring cancellation
    and returns "late"; later attempts return "fresh" at once."""
    info = activity.info()
    _log("soak.late", phase="start")
    if info.attempt == 1:
        for _ in range(beats):
            activity.heartbeat({"beat": True})
            time.sleep(0.05)
        time.sleep(hang)  # a real hang: does not look at info.is_cancelled
        _log("soak.late", phase="end")
        return "late"
    _log("soak.late", phase="end")
    return "fresh"


@activity.defn(name="soak.big")
def soak_big(label: str, kib: int) -> str:
    """A result of ``kib`` KiB (to make the store grow)."""
    _log("soak.big", label=label)
    return label[:1] * (kib * 1024)


class Unprintable(Exception):
    """An exception whose str() raises."""

    def __str__(self) -> str:
        raise RuntimeError("str() of this exception raises")

    def __repr__(self) -> str:
        raise RuntimeError("repr() of this exception raises")


class NotAnException(BaseException):
    """A BaseException subclass that is not an Exception."""


def odd_exception(kind: str) -> BaseException:
    """An exception that is awkward to record."""
    if kind == "base":
        return NotAnException("base exception from user code")
    if kind == "system_exit":
        return SystemExit(3)
    if kind == "keyboard":
        return KeyboardInterrupt()
    if kind == "generator_exit":
        return GeneratorExit()
    if kind == "unprintable":
        return Unprintable()
    if kind == "huge":
        return ValueError("x" * (3 * 1024 * 1024))
    if kind == "non_json_details":
        return ApplicationError("details are not JSON", {1, 2}, object())
    if kind == "empty":
        return ValueError()
    if kind == "newlines":
        return ValueError("line one\nline two\r\n\x00 with a NUL")
    raise ValueError(f"unknown kind {kind!r}")


ODD_KINDS = ("base", "system_exit", "keyboard", "generator_exit", "unprintable", "huge",
             "non_json_details", "empty", "newlines")


@activity.defn(name="soak.odd_raise")
def soak_odd_raise(kind: str) -> None:
    _log("soak.odd_raise", odd=kind)
    raise odd_exception(kind)


class _Opaque:
    pass


def bad_value(kind: str) -> Any:
    """A value that is not a JSON payload."""
    if kind == "bytes":
        return b"\x00\xff"
    if kind == "nan":
        return float("nan")
    if kind == "object":
        return _Opaque()
    if kind == "circular":
        items: list[Any] = []
        items.append(items)
        return items
    if kind == "non_str_key":
        return {(1, 2): "tuple key"}
    if kind == "huge":
        return "y" * (2 * 1024 * 1024 + 1)
    raise ValueError(f"unknown kind {kind!r}")


BAD_VALUE_KINDS = ("bytes", "nan", "object", "circular", "non_str_key", "huge")


@activity.defn(name="soak.bad_value")
def soak_bad_value(kind: str) -> Any:
    _log("soak.bad_value", bad=kind)
    return bad_value(kind)


# --------------------------------------------------------------------------- soak workflows


def _step(label: str, value: int) -> Any:
    return workflow.execute_activity("soak.step", label, value, retry=FAST_RETRY,
                                     start_to_close_timeout=30)


@workflow.defn(name="soak_fan")
async def soak_fan(n: int, base: int) -> int:
    """``n`` activities in parallel: sum(base + i + 1)."""
    values = await asyncio.gather(*(_step(f"p{i}", base + i) for i in range(n)))
    return sum(values)


@workflow.defn(name="soak_timer")
async def soak_timer(seconds: float, base: int) -> int:
    """A step, a durable timer, a step: base + 2."""
    a = await _step("before", base)
    await workflow.sleep(seconds)
    return int(await _step("after", a))


@workflow.defn(name="soak_signal")
async def soak_signal(base: int) -> int:
    """Waits for signal ``go`` (a number), then a step: base + go + 1."""
    go = await workflow.wait_signal("go")
    return int(await _step("signaled", base + int(go)))


@workflow.defn(name="soak_task")
async def soak_task(base: int) -> int:
    """A manual task answered with {"add": k}, then a step: base + k + 1."""
    answer = await workflow.manual_task("review", assignee="soak-operator",
                                        data={"base": base}, instructions="add something")
    return int(await _step("reviewed", base + int(answer["add"])))


@workflow.defn(name="soak_child")
async def soak_child(base: int) -> int:
    a = await _step("child1", base)
    return int(await _step("child2", a))


@workflow.defn(name="soak_parent")
async def soak_parent(base: int) -> int:
    """A child of two steps, then a step: base + 3."""
    got = await workflow.execute_child("soak_child", base)
    return int(await _step("parent", got))


@workflow.defn(name="soak_loop")
async def soak_loop(i: int, until: int, acc: int) -> int:
    """A step per run, continuing as new until ``i == until``: acc + until - i + 1."""
    acc = await _step(f"loop{i}", acc)
    if i < until:
        workflow.continue_as_new(i + 1, until, acc)
    return acc


@workflow.defn(name="soak_mixed")
async def soak_mixed(base: int) -> int:
    """A timer racing a signal, a parallel pair, a step: base + 2 + 2 + 1 (signal 'go'=0)."""
    signal = asyncio.ensure_future(workflow.wait_signal("go", timeout=0.2))
    nap = asyncio.ensure_future(workflow.sleep(0.05))
    await asyncio.wait({signal, nap})
    try:
        got = signal.result()
    except TimeoutError:
        got = 0
    a, b = await asyncio.gather(_step("m1", base), _step("m2", base))
    return int(await _step("m3", a + b - base + int(got)))


# --------------------------------------------------------------------------- fault workflows


@workflow.defn(name="late_result")
async def late_result(hang: float, limit: float, heartbeat: bool = False) -> str:
    """One activity whose first attempt hangs past its timeout and then returns."""
    options: dict[str, Any] = {"heartbeat_timeout": limit, "start_to_close_timeout": 60} \
        if heartbeat else {"start_to_close_timeout": limit}
    return str(await workflow.execute_activity(
        "soak.late", hang, 3 if heartbeat else 0,
        retry=RetryPolicy(initial_interval=0.01, maximum_attempts=3), **options))


@workflow.defn(name="big_steps")
async def big_steps(count: int, kib: int) -> int:
    """``count`` activities in a row, each returning ``kib`` KiB: their total length."""
    total = 0
    for i in range(count):
        total += len(await workflow.execute_activity(
            "soak.big", f"b{i}", kib, retry=FAST_RETRY))
    return total


@workflow.defn(name="quick")
async def quick(value: int) -> int:
    """One step: value + 1."""
    return int(await _step("quick", value))


@workflow.defn(name="odd_raise")
async def odd_raise(kind: str) -> None:
    """Workflow code raising an awkward exception (the run should be held, clearly)."""
    raise odd_exception(kind)


@workflow.defn(name="odd_activity")
async def odd_activity(kind: str) -> str:
    """An activity raising an awkward exception once: the error type the workflow sees."""
    try:
        await workflow.execute_activity("soak.odd_raise", kind,
                                         retry=RetryPolicy(maximum_attempts=1),
                                         start_to_close_timeout=30)
    except ApplicationError as err:
        return str(getattr(err, "cause_type", "") or err.type)
    return "no error"


@workflow.defn(name="bad_activity_value")
async def bad_activity_value(kind: str) -> str:
    """An activity returning a non-JSON value: the error type the workflow sees."""
    try:
        await workflow.execute_activity("soak.bad_value", kind,
                                         retry=RetryPolicy(maximum_attempts=2),
                                         start_to_close_timeout=30)
    except ApplicationError as err:
        return str(getattr(err, "cause_type", "") or err.type)
    return "no error"


@workflow.defn(name="odd_result")
async def odd_result(kind: str) -> Any:
    """Workflow code returning a value that is not a JSON payload."""
    return bad_value(kind)
