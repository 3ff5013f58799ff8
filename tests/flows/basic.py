"""Workflows and activities the engine tests run (in-process and in worker subprocesses).

Activities append one line per execution to the file named by ``$ONWARD_TEST_LOG`` (or the
``log`` argument), so tests can count how often each step really ran across processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from onward import ApplicationError, RetryPolicy, activity, workflow


def _log(kind: str, key: str, **extra: object) -> None:
    path = os.environ.get("ONWARD_TEST_LOG")
    if not path:
        return
    line = json.dumps({"kind": kind, "key": key, "pid": os.getpid(), **extra}) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _gate(name: str) -> None:
    """Block while the file ``$ONWARD_TEST_GATES/name`` exists (tests hold a step open)."""
    gates = os.environ.get("ONWARD_TEST_GATES")
    if not gates:
        return
    Path(gates, f"{name}.entered").touch()
    while Path(gates, name).exists():
        time.sleep(0.01)


@activity.defn(name="step")
def step(label: str, value: int) -> int:
    """A durable step: logs its execution and returns value + 1."""
    info = activity.info()
    _gate(label)
    delay = float(os.environ.get("ONWARD_TEST_STEP_DELAY", "0"))
    if delay:
        time.sleep(delay / 2)
    _log("step", info.idempotency_key, label=label, attempt=info.attempt)
    if delay:
        time.sleep(delay / 2)  # a crash here: executed, but not yet recorded
    return value + 1


@activity.defn(name="async_step")
async def async_step(label: str, value: int) -> int:
    info = activity.info()
    _log("async_step", info.idempotency_key, label=label, attempt=info.attempt)
    await asyncio.sleep(0)
    return value * 2


@activity.defn(name="flaky")
def flaky(fail_times: int) -> str:
    """Fails its first ``fail_times`` attempts with a retryable error."""
    info = activity.info()
    _log("flaky", info.idempotency_key, attempt=info.attempt)
    if info.attempt <= fail_times:
        raise RuntimeError(f"flaky failure {info.attempt}")
    return f"ok after {info.attempt}"


@activity.defn(name="refuse")
def refuse(kind: str) -> None:
    """Always fails: non-retryable ApplicationError, or an error of type ``kind``."""
    _log("refuse", activity.info().idempotency_key)
    if kind == "non_retryable":
        raise ApplicationError("refused for good", type="Refused", non_retryable=True)
    raise ApplicationError(f"refused ({kind})", type=kind)


@activity.defn(name="not_json")
def not_json() -> object:
    return b"\x00\xff"  # bytes have no JSON form (a set does: a list)


@activity.defn(name="hang")
def hang(seconds: float) -> str:
    """Sleeps in small steps, heartbeating only if asked to."""
    info = activity.info()
    _log("hang", info.idempotency_key, attempt=info.attempt)
    end = time.monotonic() + seconds
    while time.monotonic() < end and not info.is_cancelled:
        time.sleep(0.01)
    return "woke"


@activity.defn(name="beating")
def beating(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        activity.heartbeat({"left": end - time.monotonic()})
        time.sleep(0.02)
    return "done"


@workflow.defn(name="three_steps")
async def three_steps(start: int) -> int:
    """Three activities in a row: the shape the crash tests use (the benchmarks run the same
    shape without test hooks: plain_three_steps in bench/flows.py)."""
    a = await workflow.execute_activity("step", "a", start)
    b = await workflow.execute_activity("step", "b", a)
    return await workflow.execute_activity("step", "c", b)


@workflow.defn(name="leaves_work")
async def leaves_work() -> str:
    """Returns while an activity and a timer it started are still outstanding."""
    asyncio.ensure_future(workflow.execute_activity("step", "left-behind", 0))
    asyncio.ensure_future(workflow.sleep(3600))
    await asyncio.sleep(0)  # let both tasks issue their commands
    return "done"


@workflow.defn(name="fan_out")
async def fan_out(n: int) -> list[int]:
    """``n`` activities at once with asyncio.gather."""
    return list(await asyncio.gather(
        *(workflow.execute_activity("step", f"p{i}", i) for i in range(n))))


@workflow.defn(name="sleeper")
async def sleeper(seconds: float) -> str:
    before = workflow.now()
    await workflow.sleep(seconds)
    await workflow.execute_activity("step", "after-sleep", 0)
    return f"slept {(workflow.now() - before).total_seconds() >= seconds}"


@workflow.defn(name="retrying")
async def retrying(fail_times: int, interval: float = 0.01, attempts: int = 0) -> str:
    return await workflow.execute_activity(
        "flaky", fail_times,
        retry=RetryPolicy(initial_interval=interval, maximum_attempts=attempts))


@workflow.defn(name="refused")
async def refused(kind: str, non_retryable: tuple[str, ...] = ()) -> str:
    await workflow.execute_activity(
        "refuse", kind, retry=RetryPolicy(initial_interval=0.01, maximum_attempts=5,
                                          non_retryable_error_types=tuple(non_retryable)))
    return "unreachable"


@workflow.defn(name="catches")
async def catches() -> str:
    """Catches an ActivityError and carries on."""
    try:
        await workflow.execute_activity("refuse", "non_retryable")
    except Exception as err:  # noqa: BLE001 - the test checks the type name
        return f"caught {type(err).__name__}"
    return "no error"


@workflow.defn(name="buggy")
async def buggy() -> None:
    await workflow.execute_activity("step", "before-bug", 0)
    raise KeyError("a bug in workflow code")


@workflow.defn(name="signals")
async def signals(count: int) -> list[object]:
    workflow.set_query_handler("received", lambda: list(got))
    got: list[object] = []
    for _ in range(count):
        got.append(await workflow.wait_signal("item"))
    return got


@workflow.defn(name="signal_timeout")
async def signal_timeout(seconds: float) -> str:
    try:
        value = await workflow.wait_signal("answer", timeout=seconds)
    except TimeoutError:
        return "timed out"
    return f"answer {value}"


@workflow.defn(name="approval")
async def approval(seconds: float | None = None) -> object:
    try:
        return await workflow.manual_task("approve", assignee="alice", data={"x": 1},
                                          instructions="say yes", timeout=seconds)
    except TimeoutError:
        return "timed out"


@workflow.defn(name="saga")
async def saga() -> str:
    await workflow.execute_activity("step", "book", 0)
    try:
        await workflow.sleep(3600)
    except asyncio.CancelledError:
        await workflow.execute_activity("step", "compensate", 0)
        raise
    return "finished"


@workflow.defn(name="parent")
async def parent(fail_child: bool) -> object:
    try:
        return await workflow.execute_child("child", fail_child)
    except Exception as err:  # noqa: BLE001
        return f"child failed: {type(err).__name__}"


@workflow.defn(name="child")
async def child(fail: bool) -> str:
    if fail:
        await workflow.execute_activity("refuse", "non_retryable",
                                        retry=RetryPolicy(maximum_attempts=1))
    return await workflow.execute_activity("async_step", "child", 21) and "child done"


@workflow.defn(name="looper")
async def looper(i: int, until: int) -> int:
    if i < until:
        workflow.continue_as_new(i + 1, until)
    return i


@workflow.defn(name="deterministic_values")
async def deterministic_values() -> list[object]:
    return [workflow.random().random(), str(workflow.uuid4()), workflow.info().workflow_id,
            workflow.now().isoformat()]


@workflow.defn(name="bad_result")
async def bad_result() -> object:
    return b"\x00\xff"


@workflow.defn(name="wall_clock")
async def wall_clock() -> None:
    await asyncio.sleep(1)


@workflow.defn(name="heartbeats")
async def heartbeats(run_for: float, limit: float, beat: bool) -> str:
    return await workflow.execute_activity(
        "beating" if beat else "hang", run_for, heartbeat_timeout=limit,
        retry=RetryPolicy(maximum_attempts=1))


@workflow.defn(name="times_out")
async def times_out(run_for: float, limit: float) -> str:
    return await workflow.execute_activity(
        "hang", run_for, start_to_close_timeout=limit,
        retry=RetryPolicy(initial_interval=0.01, maximum_attempts=2))


@workflow.defn(name="gated")
async def gated(start: int) -> int:
    """Like three_steps, with labels that tests can hold open with gate files."""
    a = await workflow.execute_activity("step", "gate1", start)
    await workflow.sleep(0.2)
    b = await workflow.execute_activity("step", "gate2", a)
    return await workflow.execute_activity("step", "gate3", b)


@workflow.defn(name="non_json_activity")
async def non_json_activity() -> object:
    return await workflow.execute_activity("not_json")


@workflow.defn(name="waiting_parent")
async def waiting_parent() -> object:
    return await workflow.execute_child("saga", id="the-child")


@workflow.defn(name="fan_out_once")
async def fan_out_once(n: int) -> list[int]:
    """``n`` activities at once, each allowed a single attempt."""
    return list(await asyncio.gather(
        *(workflow.execute_activity("step", f"o{i}", i, retry=RetryPolicy(maximum_attempts=1))
          for i in range(n))))
