"""Pizza order: a saga. Take the money, bake, deliver; give the money back if it goes wrong.

The story, top to bottom:

1. **Charge** the customer. The charge is *shielded* from cancellation: if the order is
   cancelled while the card is being charged, we let the charge finish so that we know
   whether there is money to give back (cancelling the wait would leave us guessing).
2. **Bake** exactly one pizza. The kitchen bakes once per idempotency key, and the key is
   the same on every retry and after a crash, so a worker killed mid-bake does not lead to
   a second pizza when another worker takes over.
3. Let it rest for ``prep_seconds`` (a durable timer: it survives restarts). This is also
   the window in which a customer typically cancels.
4. **Deliver** it, retrying while no driver is free.

If the order is cancelled (``onward cancel ORDER``) after the money was taken, the
workflow sees ``asyncio.CancelledError`` at whatever it was awaiting; the ``except`` block
*compensates* by refunding the charge, then re-raises so the run ends ``canceled``. The
same compensation runs when a step fails for good (say the kitchen is out of dough), and
that run ends ``failed``. Either way the customer's money comes back exactly once.

Try it::

    onward worker &
    onward start pizza_order --id order-7 --input '{"order_id": "order-7",
        "pizza": "margherita", "cents": 1150, "address": "1 Canal St", "prep_seconds": 60}'
    onward cancel order-7           # within the minute: refunded, run canceled
    onward show order-7

The order is a JSON object: ``order_id``, ``pizza``, ``cents``, ``address`` and optionally
``prep_seconds`` (default 0) and ``retry_seconds`` (first retry interval, default 1).
"""

from __future__ import annotations

import asyncio
from typing import Any

from onward import ActivityError, RetryPolicy, workflow


@workflow.defn(name="pizza_order")
async def pizza_order(order: dict[str, Any]) -> dict[str, Any]:
    """Charge, bake one pizza, deliver; refund if cancelled or failed after charging."""
    stage = "charging"
    workflow.set_query_handler("status", lambda: stage)
    order_id, cents = order["order_id"], order["cents"]
    first = float(order.get("retry_seconds", 1.0))
    retry = RetryPolicy(initial_interval=first, maximum_interval=30 * first)

    # Started as its own task so that a cancel interrupts only our wait for it (the shield),
    # not the charge itself.
    charging = asyncio.ensure_future(
        workflow.execute_activity("kitchen.charge", order_id, cents, retry=retry))
    try:
        charge = await asyncio.shield(charging)

        stage = "baking"
        await workflow.execute_activity("kitchen.bake", order_id, order["pizza"], retry=retry)

        stage = "resting"
        await workflow.sleep(order.get("prep_seconds", 0))

        stage = "delivering"
        await workflow.execute_activity("kitchen.deliver", order_id, order["address"],
                                        retry=retry)
    except (asyncio.CancelledError, ActivityError):
        # The compensation. It runs after a cancel too: only the await that was in progress
        # when the cancel arrived is interrupted, later awaits work as usual.
        stage = "refunding"
        if await _was_charged(charging):
            await workflow.execute_activity("kitchen.refund", order_id, cents, retry=retry)
        stage = "refunded"
        raise  # the run ends canceled (or failed), with the customer made whole

    stage = "delivered"
    return {"status": "delivered", "order_id": order_id, "pizza": order["pizza"],
            "charge_id": charge["charge_id"]}


async def _was_charged(charging: asyncio.Future[Any]) -> bool:
    """Wait for the charge to settle (it may still be running); True if money was taken."""
    try:
        await charging
    except ActivityError:
        return False
    return True
