"""At-most-once payments for the liveness tests: each attempt is allowed once, so a worker
wrongly presumed dead, or an attempt stranded by a lost commit, shows up as a failed run.

``pay`` appends one line per execution to ``$ONWARD_TEST_LOG`` (as tests/flows/basic.py
does) and sleeps ``$ONWARD_TEST_STEP_DELAY`` seconds, so attempts are in flight long enough
for other workers to judge their owner. A start-to-close timeout of a minute means an
attempt left claimed but never started makes its test time out rather than pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from onward import RetryPolicy, activity, workflow

ONCE = RetryPolicy(maximum_attempts=1)


@activity.defn(name="pay")
def pay(label: str, amount: int) -> int:
    """A payment: logs its execution, holds for a gate file, and returns amount + 1."""
    info = activity.info()
    gates = os.environ.get("ONWARD_TEST_GATES")
    if gates:
        Path(gates, f"{label}.entered").touch()
        while Path(gates, label).exists():
            time.sleep(0.01)
    path = os.environ.get("ONWARD_TEST_LOG")
    if path:
        line = json.dumps({"kind": "pay", "key": info.idempotency_key, "pid": os.getpid(),
                           "attempt": info.attempt, "label": label})
        with open(path, "a") as f:
            f.write(line + "\n")
    time.sleep(float(os.environ.get("ONWARD_TEST_STEP_DELAY", "0")))
    return amount + 1


@workflow.defn(name="pay_thrice")
async def pay_thrice(amount: int) -> int:
    """Three payments in a row, each at most once."""
    for label in ("first", "second", "third"):
        amount = await workflow.execute_activity("pay", label, amount, retry=ONCE,
                                                 start_to_close_timeout=60)
    return amount


@workflow.defn(name="pay_once_each")
async def pay_once_each(n: int) -> list[int]:
    """``n`` payments at once, each at most once."""
    return list(await asyncio.gather(*(
        workflow.execute_activity("pay", f"p{i}", i, retry=ONCE, start_to_close_timeout=60)
        for i in range(n))))
