"""Children and other runs, seen from a run's workflow task: whether a child may take an id,
what happens to an open child when its parent closes, and which run an external signal or
cancel reaches. Reads only; the advancer writes the events."""

from __future__ import annotations

from typing import Any

from . import history
from .history import RunRow
from .store.base import Tx


def reuse_refused(existing: RunRow | None, child_id: str, policy: str) -> str:
    """Why a child may not take ``child_id`` under ``policy`` ("" if it may)."""
    if existing is None:
        return ""
    if existing.is_open:
        return f"id {child_id} already has an open run"
    if policy == "reject_duplicate":
        return f"id {child_id} was used before (its last run {existing.status}) and " \
            "id_reuse_policy is reject_duplicate"
    if policy == "allow_duplicate_failed_only" and existing.status == "completed":
        return f"id {child_id} was used before by a run that completed and id_reuse_policy " \
            "is allow_duplicate_failed_only"
    return ""


def close_policy(tx: Tx, parent: RunRow, child: RunRow) -> str:
    """The parent close policy of ``child``, read from the parent's ChildWorkflowStarted
    event (one indexed read, paid only for children still open when the parent closes)."""
    ref = child.parent_ref
    if ref is None:
        return "terminate"
    for event in history.load_events(tx, parent.run_id, after=ref - 1, upto=ref):
        if event.type == "ChildWorkflowStarted":
            return str(event.attrs.get("parent_close_policy") or "terminate")
    return "terminate"


def find_target(tx: Tx, run: RunRow, workflow_id: str) -> dict[str, Any]:
    """Where an external signal or cancel from ``run`` goes: ``{"target_run_id": ...}`` for
    the id's open run (locked until the transaction ends), else ``{"error": {...}}``."""
    target = history.current_run(tx, workflow_id, lock=True)
    if target is None or not target.is_open:
        why = "has no run" if target is None else f"has no open run (its last run " \
            f"{target.status})"
        return {"error": {"type": "ExternalWorkflowNotFound",
                          "message": f"workflow {workflow_id} {why}"}}
    if target.run_id == run.run_id:
        return {"error": {"type": "ExternalWorkflowIsSelf", "message": (
            f"workflow {workflow_id} is the calling run: signal or cancel it through "
            "its own code instead")}}
    return {"target_run_id": target.run_id}
