"""Workflows and activities for the stateful property test (tests/scenarios/test_stateful.py).

Every activity appends a JSON line to ``$ONWARD_TEST_LOG`` when it starts and another when it
ends (``ok`` true or false), with its idempotency key, attempt, workflow id, run id and label,
so the test can count what really ran against what history recorded.

``sf_saga`` and ``sf_chain`` share one body: book a step, then handle signals named ``item``
one by one (one activity per item) until the item ``"finish"`` arrives. ``sf_chain`` continues
as new after every second item it handles (signals not yet handled must follow it). The item
``"fail"`` runs an activity that fails on the first execution of its key and succeeds after,
so the run fails and ``retry`` can bring it back. A cancel at any point runs the compensating
activity ``sf.compensate`` (slow enough that a second cancel lands while it runs).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from onward import ApplicationError, RetryPolicy, activity, workflow

RETRY = RetryPolicy(initial_interval=0.05, backoff_coefficient=2.0, maximum_interval=0.5,
                    maximum_attempts=0)
ONCE = RetryPolicy(maximum_attempts=1)
LIMIT = 60  # start-to-close seconds: generous, the test never waits one out


def _log(label: str, phase: str, **extra: Any) -> None:
    path = os.environ.get("ONWARD_TEST_LOG")
    if not path:
        return
    info = activity.info()
    line = json.dumps({"kind": info.activity, "key": info.idempotency_key,
                       "attempt": info.attempt, "id": info.workflow_id,
                       "run_id": info.run_id, "label": label, "phase": phase,
                       "pid": os.getpid(), "t": time.time(), **extra}) + "\n"
    with open(path, "a") as f:  # one write() per line: O_APPEND keeps lines whole
        f.write(line)


def _executed_before(key: str) -> bool:
    """Whether an earlier execution of ``key`` reached its end (read from the log)."""
    path = os.environ.get("ONWARD_TEST_LOG")
    if not path or not os.path.exists(path):
        return False
    with open(path) as f:
        for text in f:
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if line.get("key") == key and line.get("phase") == "end":
                return True
    return False


@activity.defn(name="sf.step")
def sf_step(label: str) -> str:
    """A durable step with a short body (a kill may land inside it)."""
    _log(label, "start")
    time.sleep(float(os.environ.get("ONWARD_SF_STEP", "0.05")))
    _log(label, "end", ok=True)
    return label


@activity.defn(name="sf.fail_first")
def sf_fail_first(label: str) -> str:
    """Fails (for good) on the first execution of its key; succeeds on any later one."""
    key = activity.info().idempotency_key
    _log(label, "start")
    if not _executed_before(key):
        _log(label, "end", ok=False)
        raise ApplicationError("first execution fails", type="FailFirst", non_retryable=True)
    _log(label, "end", ok=True)
    return label


@activity.defn(name="sf.compensate")
def sf_compensate(label: str) -> str:
    """The saga's compensation: slow enough for a second cancel to arrive meanwhile."""
    _log(label, "start")
    time.sleep(float(os.environ.get("ONWARD_SF_COMPENSATE", "0.4")))
    _log(label, "end", ok=True)
    return label


async def _body(can_every: int, handled: int) -> int:
    """Book, then handle ``item`` signals until "finish"; compensate on cancel."""
    try:
        if handled == 0:
            await workflow.execute_activity("sf.step", "book", retry=RETRY,
                                            start_to_close_timeout=LIMIT)
        while True:
            item = await workflow.wait_signal("item")
            if item == "finish":
                return handled
            if item == "fail":
                await workflow.execute_activity("sf.fail_first", "fail", retry=ONCE,
                                                start_to_close_timeout=LIMIT)
            else:
                await workflow.execute_activity("sf.step", f"item:{item}", retry=RETRY,
                                                start_to_close_timeout=LIMIT)
            handled += 1
            if can_every and handled % can_every == 0:
                workflow.continue_as_new(can_every, handled)
    except asyncio.CancelledError:
        await workflow.execute_activity("sf.compensate", "compensate", retry=RETRY,
                                        start_to_close_timeout=LIMIT)
        raise


@workflow.defn(name="sf_saga")
async def sf_saga(can_every: int = 0, handled: int = 0) -> int:
    """The shared body, never continuing as new."""
    return await _body(0, handled)


@workflow.defn(name="sf_chain")
async def sf_chain(can_every: int = 2, handled: int = 0) -> int:
    """The shared body, continuing as new after every ``can_every`` items."""
    return await _body(can_every, handled)
