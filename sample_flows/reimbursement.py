"""Reimbursement: people in the loop, money out of the door, and nothing paid twice.

The story, top to bottom:

1. An employee files an expense claim. Their manager gets a task in the console's inbox
   ("approve") and has three business days to answer, counted in the office's time zone
   (Europe/Berlin unless the claim says ``time_zone``), skipping weekends and the public
   holidays of its country ("DE" unless the claim gives ``holidays``): a claim filed on
   Friday afternoon is due on Wednesday afternoon, local time. The manager may instead
   answer from code: the ``decide`` signal ({"approved": true}), or the ``approve``
   update, which returns at once with the decision and is refused (nothing recorded) when
   no approver is named or the claim is no longer waiting.
2. If the manager does not answer in time (holiday, sick, buried in mail), the task is
   closed, the manager gets an out-of-office notice, and the claim goes to a backup
   approver, who has no deadline: someone has to decide in the end.
3. A rejected claim stops here. An approved claim is paid one of two ways:

   * **direct deposit**: the bank may be down for minutes or hours, so the deposit is
     retried for as long as it takes, backing off up to once every 30 seconds so that a
     struggling bank is not hammered. The bank pays each *idempotency key* once, and the
     key of an activity is the same on every retry, after a crash and on another worker,
     so however often the deposit is attempted the employee is paid once.
   * **paper check**: the check printer jams now and then, and no retry unjams it. A
     jam becomes a task for the office ("fix_printer"); once someone clears it and
     completes the task, the flow prints again.

4. The employee is told the outcome.

At any time ``onward query CLAIM_ID status --flows sample_flows`` tells you where the
claim stands ("awaiting approval", "paying", "waiting for printer fix", ...).

Try it::

    onward worker &
    onward start reimbursement --id claim-42 --input '{"claim_id": "claim-42",
        "employee": "erin", "manager": "alice", "account": "NL01-ERIN", "cents": 12500,
        "direct_deposit": true}'
    onward tasks
    onward task complete TASK_ID --result '{"approved": true}' --by alice
    # or: onward update claim-42 approve --input '["alice"]'
    onward result claim-42 --wait 30

The claim is a JSON object: ``claim_id``, ``employee``, ``manager``, ``account``, ``cents``,
``direct_deposit`` (true or false) and optionally ``backup_approver`` (default
"finance-backup"), ``time_zone`` (default "Europe/Berlin"), ``holidays`` (ISO dates and/or
one country or subdivision code; default "DE") and ``retry_seconds`` (the first retry
interval, 1 second unless a demo or test wants it faster).
"""

from __future__ import annotations

import asyncio
from typing import Any

from onward import ActivityError, RetryPolicy, workflow

APPROVAL_DAYS = 3
DEFAULT_BACKUP = "finance-backup"
DEFAULT_TIME_ZONE = "Europe/Berlin"
DEFAULT_HOLIDAYS = "DE"


@workflow.defn(name="reimbursement")
class Reimbursement:
    """Approve a claim (rerouting on timeout), pay it by deposit or check, tell the employee.

    A class workflow: ``status`` (query), ``decide`` (signal) and ``approve`` (update, with
    a validator) read and change the state below while ``run`` goes on."""

    def __init__(self) -> None:
        self.stage = "awaiting approval"
        self.decision: Any = None  # set by the inbox task, the signal or the update

    @workflow.query
    def status(self) -> str:
        """Where the claim stands, for ``onward query CLAIM status``."""
        return self.stage

    @workflow.signal
    def decide(self, decision: Any) -> None:
        """An approver's answer sent as a signal: ``{"approved": true}`` or ``false``."""
        if self.decision is None:
            self.decision = decision

    @workflow.update
    def approve(self, by: str) -> str:
        """Approve now, on behalf of ``by``; returns what was decided."""
        self.decision = {"approved": True, "by": by}
        return f"approved by {by}"

    @approve.validator
    def _while_waiting(self, by: str) -> None:
        if not isinstance(by, str) or not by.strip():
            raise ValueError("name who approves")
        if self.decision is not None or not self.stage.startswith("awaiting"):
            raise ValueError(f"the claim is no longer waiting for approval ({self.stage})")

    @workflow.run
    async def run(self, claim: dict[str, Any]) -> dict[str, Any]:
        # -- 1 and 2: approval, with a deadline and a backup --------------------------------
        manager = claim["manager"]
        deadline = workflow.business_days(
            APPROVAL_DAYS, tz=claim.get("time_zone", DEFAULT_TIME_ZONE),
            holidays=claim.get("holidays", DEFAULT_HOLIDAYS))
        try:
            decision = await self._ask(manager, _approval_text(claim), claim, deadline)
        except TimeoutError:
            # The deadline passed (perhaps while no worker was even running: the timer is in
            # the database and fires when a worker next looks). The task is closed already.
            await workflow.execute_activity("notify.out_of_office", manager,
                                            claim["claim_id"])
            backup = claim.get("backup_approver") or DEFAULT_BACKUP
            self.stage = "awaiting backup approval"
            decision = await self._ask(
                backup, _approval_text(claim)
                + f" {manager} did not answer within {APPROVAL_DAYS} business days.", claim)

        if not _approved(decision):
            self.stage = "rejected"
            await _tell_employee(claim, f"Your claim {claim['claim_id']} was not approved.")
            return {"status": "rejected"}

        # -- 3: payment -------------------------------------------------------------------
        cents = claim["cents"]
        if claim.get("direct_deposit"):
            self.stage = "paying"
            first = float(claim.get("retry_seconds", 1.0))
            await workflow.execute_activity(
                "bank.deposit", claim["account"], cents,
                # Unlimited attempts, 1 s, 2 s, 4 s ... apart and then every 30 s at most: an
                # outage is waited out patiently instead of hammering the bank.
                retry_policy=RetryPolicy(initial_interval=first, backoff_coefficient=2,
                                         maximum_interval=30 * first, maximum_attempts=0),
                start_to_close_timeout=30)
            method = "deposit"
        else:
            await self._print_check(claim, cents)
            method = "check"

        # -- 4: tell the employee ------------------------------------------------------------
        self.stage = "notifying"
        how = "deposited into your account" if method == "deposit" else "sent as a check"
        await _tell_employee(claim, f"Your claim {claim['claim_id']} was approved: "
                                    f"{cents / 100:.2f} {how}.")
        self.stage = "done"
        return {"status": "paid", "method": method, "cents": cents}

    async def _ask(self, assignee: str, instructions: str, claim: dict[str, Any],
                   deadline: Any = None) -> Any:
        """The first answer: the inbox task (TimeoutError when its deadline passes), or a
        decision the signal or the update brought (the task is then withdrawn)."""
        task = asyncio.ensure_future(workflow.manual_task(
            "approve", assignee=assignee, data=claim, instructions=instructions,
            timeout=deadline))
        told = asyncio.ensure_future(workflow.wait_condition(lambda: self.decision is not None))
        await asyncio.wait({task, told}, return_when=asyncio.FIRST_COMPLETED)
        if told.done() and not task.done():
            task.cancel()
            return self.decision
        told.cancel()
        self.decision = task.result()  # raises TimeoutError when the deadline passed
        return self.decision

    async def _print_check(self, claim: dict[str, Any], cents: int) -> None:
        while True:
            self.stage = "printing"
            try:
                await workflow.execute_activity(
                    "printer.print_check", claim["employee"], cents,
                    f"Reimbursement {claim['claim_id']}")
                return
            except ActivityError as err:
                if err.cause_type != "PrinterJammed":
                    raise  # anything else is not ours to fix: the run fails, visibly
            # A jam needs hands, not retries: ask a person, then print again.
            self.stage = "waiting for printer fix"
            await workflow.manual_task(
                "fix_printer", assignee="office",
                instructions="The check printer is jammed: clear it, then complete this task",
                data={"claim_id": claim["claim_id"], "payee": claim["employee"],
                      "cents": cents})


def _approval_text(claim: dict[str, Any]) -> str:
    return (f"Approve {claim['employee']}'s claim {claim['claim_id']} for "
            f"{claim['cents'] / 100:.2f}: complete with {{\"approved\": true}} or "
            "{\"approved\": false}.")


def _approved(decision: Any) -> bool:
    """A task result is ``{"approved": true}`` or a bare ``true``; anything else says no."""
    if isinstance(decision, dict):
        return decision.get("approved") is True
    return decision is True


async def _tell_employee(claim: dict[str, Any], text: str) -> None:
    await workflow.execute_activity(
        "notify.send", claim["employee"], f"Claim {claim['claim_id']}", text)
