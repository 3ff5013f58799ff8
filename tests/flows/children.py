"""Workflows for child handles, parent close policies, external handles and id reuse
(tests/scenarios/test_children.py)."""

from __future__ import annotations

import asyncio

from onward import ApplicationError, ChildWorkflowError, activity, workflow


@activity.defn(name="compensate")
def compensate(who: str) -> str:
    """The undo step a canceled child runs before it ends."""
    return f"compensated {who}"


@workflow.defn(name="waiting_child")
async def waiting_child() -> str:
    """Waits for signal ``go``; asked to cancel, it compensates and ends canceled."""
    try:
        got = await workflow.wait_signal("go")
    except asyncio.CancelledError:
        await workflow.execute_activity("compensate", workflow.info().workflow_id)
        raise
    return f"got {got}"


@workflow.defn(name="policy_parent")
async def policy_parent(policy: str, close: str) -> str:
    """Starts a waiting child under ``policy``, then closes as ``close`` on signal
    ``finish`` (completed, failed or continued as new) while the child still waits."""
    if close == "done":
        return "continued"
    handle = workflow.start_child("waiting_child", id=f"{workflow.info().workflow_id}-kid",
                                  parent_close_policy=policy)
    await workflow.wait_signal("finish")
    if close == "fail":
        raise ApplicationError("parent gives up", non_retryable=True)
    if close == "continue":
        workflow.continue_as_new(policy, "done")
    return handle.id


@workflow.defn(name="handle_parent")
async def handle_parent() -> list[str]:
    """Starts a child with a handle, signals it through the handle (in the same workflow
    task) and awaits its result."""
    handle = workflow.start_child(waiting_child)
    await handle.signal("go", "from parent")
    return [handle.id, await handle]


@workflow.defn(name="cancel_through_handle")
async def cancel_through_handle() -> str:
    """Cancels its child through the handle; the child compensates."""
    handle = workflow.start_child("waiting_child", id="kid-to-cancel")
    await handle.cancel()
    try:
        return await handle
    except ChildWorkflowError as err:
        return f"child {err.status}"


@workflow.defn(name="signaller")
async def signaller(target: str, name: str, payload: object) -> str:
    """Signals any run by id; a missing target is caught, and the run goes on."""
    try:
        await workflow.get_external_workflow_handle(target).signal(name, payload)
    except ApplicationError as err:
        return f"failed {err.type}: {err}"
    return "sent"


@workflow.defn(name="canceller")
async def canceller(target: str) -> str:
    """Asks any run by id to cancel."""
    try:
        await workflow.get_external_workflow_handle(target).cancel()
    except ApplicationError as err:
        return f"failed {err.type}: {err}"
    return "asked"


@workflow.defn(name="quick_child")
async def quick_child(fail: bool) -> str:
    if fail:
        raise ApplicationError("child failed on purpose", non_retryable=True)
    return "done"


@workflow.defn(name="reuse_parent")
async def reuse_parent(child_id: str, policy: str, fail: bool) -> str:
    """Runs ``quick_child`` under ``child_id`` with id reuse ``policy``."""
    try:
        return await workflow.execute_child(quick_child, fail, id=child_id,
                                            id_reuse_policy=policy)
    except ChildWorkflowError as err:
        cause = err.__cause__
        kind = getattr(cause, "type", "") or type(cause).__name__
        return f"{kind}: {err}"
