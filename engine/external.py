"""Handles workflow code holds on other runs: a child it started, or any run by its id.

``workflow.start_child`` returns a :class:`ChildWorkflowHandle` (await it for the child's
result); ``workflow.get_external_workflow_handle`` returns an
:class:`ExternalWorkflowHandle`. Their ``signal`` and ``cancel`` are commands recorded in the
caller's history (ExternalSignalSent, ExternalCancelRequested) with their outcome, so a
replay takes the same path without reaching the other run again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from .errors import BadInput
from .workflow_runtime import WorkflowRuntime

PARENT_CLOSE_POLICIES = ("terminate", "request_cancel", "abandon")
"""What happens to an open child when its parent closes (for any reason)."""
ID_REUSE_POLICIES = ("allow_duplicate", "allow_duplicate_failed_only", "reject_duplicate")
"""Whether a child may take an id that an earlier (closed) run already used."""


def child_options(parent_close_policy: str, id_reuse_policy: str) -> dict[str, str]:
    """The checked options of a child start. Raises BadInput naming a bad value."""
    for what, value, allowed in (("parent_close_policy", parent_close_policy,
                                  PARENT_CLOSE_POLICIES),
                                 ("id_reuse_policy", id_reuse_policy, ID_REUSE_POLICIES)):
        if value not in allowed:
            raise BadInput(f"start_child: {what} {value!r} is not one of "
                           f"{', '.join(allowed)}")
    return {"parent_close_policy": parent_close_policy, "id_reuse_policy": id_reuse_policy}


class ExternalWorkflowHandle:
    """Another run, reached by its workflow id from workflow code.

    ``signal`` and ``cancel`` act at once (in the current workflow task) and return an
    awaitable: awaiting it raises ``ApplicationError`` (type ``ExternalWorkflowNotFound``)
    when the id has no open run; not awaiting it ignores that outcome."""

    def __init__(self, runtime: WorkflowRuntime, workflow_id: str) -> None:
        if not isinstance(workflow_id, str) or not workflow_id:
            raise BadInput("get_external_workflow_handle: the workflow id must be a "
                           "non-empty string")
        self._runtime = runtime
        self.id = workflow_id

    def signal(self, name: str, payload: Any = None) -> asyncio.Future[Any]:
        """Send signal ``name`` with ``payload`` to the id's open run."""
        if not isinstance(name, str) or not name:
            raise BadInput(f"signal to {self.id}: a signal needs a name")
        return self._runtime.signal_external(self.id, name, payload)

    def cancel(self) -> asyncio.Future[Any]:
        """Ask the id's open run to cancel (it gets CancelRequested and may compensate)."""
        return self._runtime.cancel_external(self.id)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"


class ChildWorkflowHandle(ExternalWorkflowHandle):
    """A child this run started: await it for the child's result (or ChildWorkflowError)."""

    def __init__(self, runtime: WorkflowRuntime, workflow_id: str,
                 result: asyncio.Future[Any]) -> None:
        super().__init__(runtime, workflow_id)
        self._result = result

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result.__await__()
