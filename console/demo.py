"""``onward console --demo``: start the sample flows in states worth looking at.

With a worker running, the demo plays a short story, one scene at a time:

* claim-1001 is approved and paid; order-2001 is baked and delivered (completed);
* order-2002 fails: the kitchen is out of dough, so the payment is refunded (failed);
* claim-1002 is approved while the bank has an outage: its deposit retries (retrying);
* claim-1003 is approved for a paper check while the printer is jammed: a "fix_printer"
  task waits for the office (waiting on a person);
* claim-1004 waits for its manager's approval;
* the schedule ``greet-every-30s`` starts the ``greet`` sample flow every 30 seconds (the
  Schedules screen, key 5).

The provider switches are files in the data folder (``$ONWARD_DATA``, default
``./onward-data``): delete ``bank.outage`` to end the outage, ``printer.jammed`` to clear the
printer. Only workflow types this engine knows are started, each id runs once (a second
``--demo`` on the same database starts nothing new), and a scene that fails is skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onward import Engine, OnwardError

SCENE_TIMEOUT = 15.0
DEMO_SCHEDULE = "greet-every-30s"


def claim(ident: str, employee: str, manager: str, cents: int, deposit: bool) -> dict[str, Any]:
    """A reimbursement claim as the sample flow reads it (fast retries for the demo)."""
    return {"claim_id": ident, "employee": employee, "manager": manager,
            "account": f"DE-{ident[-4:]}", "cents": cents, "direct_deposit": deposit,
            "retry_seconds": 2.0}


def order(ident: str, pizza: str, cents: int, address: str) -> dict[str, Any]:
    """A pizza order as the sample flow reads it."""
    return {"order_id": ident, "pizza": pizza, "cents": cents, "address": address,
            "retry_seconds": 0.5}


def data_folder() -> Path:
    """Where the sample providers keep their state and switches."""
    folder = Path(os.environ.get("ONWARD_DATA", "onward-data"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + SCENE_TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


class _Demo:
    def __init__(self, engine: Engine, live: bool) -> None:
        self.engine = engine
        self.live = live
        self.started: list[str] = []
        self.known = set(engine.workflow_types())

    def start(self, workflow: str, payload: dict[str, Any], ident: str) -> bool:
        if workflow not in self.known:
            return False
        handle = self.engine.start(workflow, payload, id=ident)
        if handle.created:
            self.started.append(ident)
        return bool(handle.created)

    def fresh(self, ident: str) -> bool:
        """True when no run has this id yet (a scene sets its switches only then)."""
        try:
            self.engine.show(ident, history=False)
        except OnwardError:
            return True
        return False

    def status(self, ident: str) -> str:
        return str(self.engine.show(ident, history=False)["status"])

    def approve(self, ident: str) -> bool:
        def task() -> list[dict[str, Any]]:
            return [t for t in self.engine.tasks() if t["id"] == ident and
                    t["kind"] == "approve"]
        if not _wait(lambda: bool(task())):
            return False
        self.engine.complete_task(task()[0]["task_id"], {"approved": True}, by="demo")
        return True

    def settle(self, ident: str, status: str) -> bool:
        return _wait(lambda: self.status(ident) == status)


def seed_demo(engine: Engine, *, live: bool = True) -> list[str]:
    """Start the demo runs and create the demo schedule; with ``live`` (a worker is
    running) play the scenes to their instructive states. Returns the ids of the runs that
    were newly started."""
    try:
        demo = _Demo(engine, live)
    except OnwardError:
        return []
    data = data_folder()
    scenes: list[Callable[[], None]] = []

    def paid_claim() -> None:
        if demo.start("reimbursement", claim("claim-1001", "dana", "alice", 12000, True),
                      "claim-1001") and live and demo.approve("claim-1001"):
            demo.settle("claim-1001", "completed")

    def delivered_pizza() -> None:
        if demo.start("pizza_order", order("order-2001", "margherita", 1200,
                                           "12 Harbour Road"), "order-2001") and live:
            demo.settle("order-2001", "completed")

    def failed_pizza() -> None:
        if not demo.fresh("order-2002") or "pizza_order" not in demo.known:
            return
        switch = data / "kitchen.out_of_dough"
        switch.touch()
        try:
            if demo.start("pizza_order", order("order-2002", "quattro formaggi", 1550,
                                               "7 Mill Lane"), "order-2002") and live:
                demo.settle("order-2002", "failed")
        finally:
            switch.unlink(missing_ok=True)

    def retrying_deposit() -> None:
        if not demo.fresh("claim-1002") or "reimbursement" not in demo.known:
            return
        (data / "bank.outage").touch()
        if demo.start("reimbursement", claim("claim-1002", "omar", "alice", 4550, True),
                      "claim-1002") and live and demo.approve("claim-1002"):
            _wait(lambda: bool(engine.show("claim-1002", history=False)["retrying"]))

    def jammed_printer() -> None:
        if not demo.fresh("claim-1003") or "reimbursement" not in demo.known:
            return
        (data / "printer.jammed").touch()
        if demo.start("reimbursement", claim("claim-1003", "li", "bob", 98000, False),
                      "claim-1003") and live and demo.approve("claim-1003"):
            _wait(lambda: any(t["kind"] == "fix_printer" for t in engine.tasks()))

    def awaiting_approval() -> None:
        demo.start("reimbursement", claim("claim-1004", "sam", "bob", 2300, True),
                   "claim-1004")

    def greeting_schedule() -> None:
        if "greet" in demo.known and not any(
                s["id"] == DEMO_SCHEDULE for s in engine.schedules()):
            engine.create_schedule(DEMO_SCHEDULE, "greet", "demo", every="30s",
                                   note="demo: greets every 30s")

    scenes = [paid_claim, delivered_pizza, failed_pizza, retrying_deposit, jammed_printer,
              awaiting_approval, greeting_schedule]
    for scene in scenes:
        try:
            scene()
        except OnwardError:
            continue
    return demo.started
