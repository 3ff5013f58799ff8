"""Version 2: a non-deterministic edit (an activity renamed without a patch)."""

from onward import activity, workflow


@activity.defn(name="charge_v2")
def charge(order: str) -> str:
    return f"charged {order} (v2)"


@activity.defn(name="ship")
def ship(order: str) -> str:
    return f"shipped {order}"


@workflow.defn(name="order")
async def order(name: str) -> list[str]:
    done = [await workflow.execute_activity("charge_v2", name)]
    await workflow.wait_signal("go")
    done.append(await workflow.execute_activity("ship", name))
    return done
