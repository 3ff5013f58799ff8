"""Reimbursement: people in the loop, money out of the door, and nothing paid twice.

The story, top to bottom:

1. An employee files an expense claim. Their manager gets a task in the console's inbox
   ("approve") and has three business days to answer. Weekends do not count, so a claim
   filed on Friday afternoon is due on Wednesday afternoon.
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
    onward result claim-42 --wait 30

The claim is a JSON object: ``claim_id``, ``employee``, ``manager``, ``account``, ``cents``,
``direct_deposit`` (true or false) and optionally ``backup_approver`` (default
"finance-backup"), ``holidays`` (ISO dates that are not business days) and
``retry_seconds`` (the first retry interval, 1 second unless a demo or test wants it faster).
"""

from __future__ import annotations

from typing import Any

from onward import ActivityError, RetryPolicy, workflow

APPROVAL_DAYS = 3
DEFAULT_BACKUP = "finance-backup"


@workflow.defn(name="reimbursement")
async def reimbursement(claim: dict[str, Any]) -> dict[str, Any]:
    """Approve a claim (rerouting on timeout), pay it by deposit or check, tell the employee."""
    stage = "awaiting approval"
    # A query handler only reads state. The lambda sees `stage` as it changes below.
    workflow.set_query_handler("status", lambda: stage)

    # -- 1 and 2: approval, with a deadline and a backup ------------------------------------
    manager = claim["manager"]
    try:
        decision = await workflow.manual_task(
            "approve", assignee=manager, data=claim,
            instructions=_approval_text(claim),
            timeout=workflow.business_days(APPROVAL_DAYS, tuple(claim.get("holidays", ()))))
    except TimeoutError:
        # The deadline passed (perhaps while no worker was even running: the timer is in
        # the database and fires when a worker next looks). The task is closed already.
        await workflow.execute_activity("notify.out_of_office", manager, claim["claim_id"])
        backup = claim.get("backup_approver") or DEFAULT_BACKUP
        stage = "awaiting backup approval"
        decision = await workflow.manual_task(
            "approve", assignee=backup, data=claim,
            instructions=_approval_text(claim)
            + f" {manager} did not answer within {APPROVAL_DAYS} business days.")

    if not _approved(decision):
        stage = "rejected"
        await _tell_employee(claim, f"Your claim {claim['claim_id']} was not approved.")
        return {"status": "rejected"}

    # -- 3: payment ---------------------------------------------------------------------
    cents = claim["cents"]
    if claim.get("direct_deposit"):
        stage = "paying"
        first = float(claim.get("retry_seconds", 1.0))
        await workflow.execute_activity(
            "bank.deposit", claim["account"], cents,
            # Unlimited attempts, 1 s, 2 s, 4 s ... apart and then every 30 s at most: an
            # outage is waited out patiently instead of hammering the bank.
            retry=RetryPolicy(initial_interval=first, backoff_coefficient=2,
                              maximum_interval=30 * first, maximum_attempts=0),
            start_to_close_timeout=30)
        method = "deposit"
    else:
        while True:
            stage = "printing"
            try:
                await workflow.execute_activity(
                    "printer.print_check", claim["employee"], cents,
                    f"Reimbursement {claim['claim_id']}")
                break
            except ActivityError as err:
                if err.cause_type != "PrinterJammed":
                    raise  # anything else is not ours to fix: the run fails, visibly
            # A jam needs hands, not retries: ask a person, then print again.
            stage = "waiting for printer fix"
            await workflow.manual_task(
                "fix_printer", assignee="office",
                instructions="The check printer is jammed: clear it, then complete this task",
                data={"claim_id": claim["claim_id"], "payee": claim["employee"],
                      "cents": cents})
        method = "check"

    # -- 4: tell the employee ----------------------------------------------------------------
    stage = "notifying"
    how = "deposited into your account" if method == "deposit" else "sent as a check"
    await _tell_employee(claim, f"Your claim {claim['claim_id']} was approved: "
                                f"{cents / 100:.2f} {how}.")
    stage = "done"
    return {"status": "paid", "method": method, "cents": cents}


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
