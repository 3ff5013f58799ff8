"""A saga for the repair dialogs: charge, bake (fails until a file exists), refund on
failure. Retrying the failed order from before the bake would discard the refund."""

from __future__ import annotations

from pathlib import Path

from onward import ActivityError, ApplicationError, RetryPolicy, activity, workflow


@activity.defn(name="saga.charge")
def charge(order: str) -> str:
    return f"charged {order}"


@activity.defn(name="saga.bake")
def bake(order: str) -> str:
    if not Path("oven-fixed").exists():
        raise ApplicationError("the oven is broken", type="OvenBroken", non_retryable=True)
    return f"baked {order}"


@activity.defn(name="saga.refund")
def refund(order: str) -> str:
    return f"refunded {order}"


@workflow.defn(name="pizza")
async def pizza(order: str) -> str:
    await workflow.execute_activity("saga.charge", order)
    try:
        await workflow.execute_activity("saga.bake", order,
                                        retry=RetryPolicy(maximum_attempts=1))
    except ActivityError:
        await workflow.execute_activity("saga.refund", order)
        raise
    return f"delivered {order}"
