"""Version 1 of the versioning test flows (what was deployed first)."""

from onward import RetryPolicy, activity, workflow


@activity.defn(name="charge")
def charge(order: str) -> str:
    return f"charged {order}"


@activity.defn(name="ship")
def ship(order: str) -> str:
    return f"shipped {order}"


@activity.defn(name="old_bank")
def old_bank(order: str) -> str:
    from onward import ApplicationError
    raise ApplicationError("the old bank has closed", type="BankClosed", non_retryable=True)


@activity.defn(name="new_bank")
def new_bank(order: str) -> str:
    return f"paid {order} at the new bank"


@workflow.defn(name="order")
async def order(name: str) -> list[str]:
    done = [await workflow.execute_activity("charge", name)]
    await workflow.wait_signal("go")
    done.append(await workflow.execute_activity("ship", name))
    return done


@workflow.defn(name="claim")
async def claim(name: str) -> str:
    approved = await workflow.manual_task("approve", data={"name": name})
    paid = await workflow.execute_activity("old_bank", name,
                                           retry=RetryPolicy(maximum_attempts=1))
    return f"{approved} {paid}"


@workflow.defn(name="resettable")
async def resettable(name: str) -> list[str]:
    done = [await workflow.execute_activity("charge", name)]
    await workflow.sleep(0.05)
    done.append(str(await workflow.manual_task("check", data=name)))
    done.append(await workflow.execute_activity("ship", name))
    return done
