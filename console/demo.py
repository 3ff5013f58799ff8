"""``onward console --demo``: start the sample flows in states worth looking at.

Robust by design: only workflow types this engine knows are started, each id runs once (so
a second ``--demo`` on the same database starts nothing new), and a start that fails is
skipped, not fatal.
"""

from __future__ import annotations

from typing import Any

from engine.errors import OnwardError

CLAIMS: list[tuple[str, dict[str, Any]]] = [
    ("claim-1001", {"claim_id": "claim-1001", "employee": "dana", "manager": "alice",
                    "account": "DE-001", "cents": 12000, "direct_deposit": True}),
    ("claim-1002", {"claim_id": "claim-1002", "employee": "omar", "manager": "alice",
                    "account": "DE-002", "cents": 4550, "direct_deposit": False}),
    ("claim-1003", {"claim_id": "claim-1003", "employee": "li", "manager": "bob",
                    "account": "DE-003", "cents": 98000, "direct_deposit": True}),
]

ORDERS: list[tuple[str, dict[str, Any]]] = [
    ("order-2001", {"order_id": "order-2001", "pizza": "margherita", "cents": 1200,
                    "address": "12 Harbour Road"}),
    ("order-2002", {"order_id": "order-2002", "pizza": "quattro formaggi", "cents": 1550,
                    "address": "7 Mill Lane"}),
]

DEMO: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "reimbursement": CLAIMS,
    "pizza_order": ORDERS,
}


def seed_demo(engine: Any) -> list[str]:
    """Start the demo runs whose workflow types exist; the ids that were newly started."""
    try:
        known = set(engine.workflow_types())
    except OnwardError:
        return []
    started: list[str] = []
    for workflow, runs in DEMO.items():
        if workflow not in known:
            continue
        for ident, payload in runs:
            try:
                handle = engine.start(workflow, payload, id=ident)
            except OnwardError:
                continue
            if handle.created:
                started.append(handle.id)
    return started
