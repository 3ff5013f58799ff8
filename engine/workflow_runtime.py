"""The contract between workflow code's API (engine/workflow.py) and the running instance.

Workflow calls find the runtime of the run they are in through the deterministic loop
(``DeterministicLoop.owner``) and use only what :class:`WorkflowRuntime` declares here;
``engine.instance.WorkflowInstance`` is the engine's implementation. Each method that
issues a command records it in history (or matches it on replay) and returns the future
that history resolves.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .handlers import Handlers


@dataclass
class WorkflowInfo:
    """What workflow code knows about its run (``workflow.info()``)."""

    workflow_id: str
    run_id: str
    workflow_type: str
    start_time: float
    parent_id: str | None = None
    parent_run_id: str | None = None
    continued_from: str | None = None
    history_length: int = 0
    """Events in the run's history up to the one being handled."""

    def is_continue_as_new_suggested(self) -> bool:
        """True once the history is long enough that replaying it costs noticeably
        (:data:`CONTINUE_AS_NEW_SUGGESTED` events): a long-lived loop should then call
        ``workflow.continue_as_new``."""
        return self.history_length >= CONTINUE_AS_NEW_SUGGESTED


CONTINUE_AS_NEW_SUGGESTED = 10_000
"""History length at which ``is_continue_as_new_suggested()`` turns true."""


WAIT_CANCELLATION_COMPLETED = "wait_cancellation_completed"
CANCELLATION_TYPES = ("try_cancel", WAIT_CANCELLATION_COMPLETED, "abandon")
"""How ``execute_activity``/``start_activity`` cancel an activity the code stops waiting
for: tell the attempt and go on at once; tell it and wait until it ended; or let it run."""


class ContinueAsNew(BaseException):  # noqa: N818 - a control-flow signal, not an error
    """Raised by ``workflow.continue_as_new`` to end the run and start a fresh one."""

    def __init__(self, args: list[Any]) -> None:
        super().__init__("continue as new")
        self.args_list = args


@runtime_checkable
class WorkflowRuntime(Protocol):
    """What workflow code needs from the run it is in."""

    info: WorkflowInfo
    """Ids, type and start time of the run."""
    now: float
    """The deterministic time: when the event being handled was recorded (epoch s)."""
    handlers: Handlers
    """The run's signal, query and update handlers by name."""
    @property
    def history_length(self) -> int:
        """Events in history up to the one being handled."""

    @property
    def is_replaying(self) -> bool:
        """True while the code re-runs through history it has already been through."""

    def set_signal_handler(self, name: str, fn: Callable[..., Any]) -> None:
        """Deliver signal ``name`` to ``fn`` (and the buffered ones of that name, now)."""

    def condition_future(self, predicate: Callable[[], Any]) -> asyncio.Future[Any]:
        """A future resolved once ``predicate()`` is true after some event."""

    @property
    def random(self) -> random.Random:
        """The run's deterministic random source."""

    def schedule_activity(self, name: str, args: list[Any], options: dict[str, Any],
                          cancellation_type: str = "try_cancel"
                          ) -> tuple[int, asyncio.Future[Any]]:
        """Schedule activity ``name``; (its seq, a future resolved to its result or
        raising ActivityError)."""

    def cancel_activity(self, seq: int, reason: str = "") -> None:
        """Cancel the activity scheduled at ``seq`` under its cancellation type."""

    def start_timer(self, seconds: float, purpose: str = "sleep"
                    ) -> tuple[int, asyncio.Future[Any]]:
        """Start a durable timer; (its seq, a future resolved when it fires)."""

    def create_manual_task(self, attrs: dict[str, Any]) -> asyncio.Future[Any]:
        """Create a task for a person; resolves to their result (or raises)."""

    def start_child(self, workflow: str, args: list[Any], child_id: str | None,
                    options: dict[str, Any] | None = None) -> tuple[str, asyncio.Future[Any]]:
        """Start a child workflow (``options``: ``parent_close_policy``,
        ``id_reuse_policy``); (the child's workflow id, a future resolved to its result or
        raising ChildWorkflowError)."""

    def signal_external(self, workflow_id: str, name: str, payload: Any
                        ) -> asyncio.Future[Any]:
        """Send signal ``name`` to the open run of ``workflow_id`` (recorded as
        ExternalSignalSent); resolves to None, or raises ApplicationError when no open run
        of that id could be reached."""

    def cancel_external(self, workflow_id: str) -> asyncio.Future[Any]:
        """Ask the open run of ``workflow_id`` to cancel (recorded as
        ExternalCancelRequested); resolves or raises as :meth:`signal_external`."""

    def activity_code(self, name: str) -> Callable[..., Any] | None:
        """The code of activity ``name`` if this worker knows it (its return hint types
        the activity's result), else None."""

    def signal_future(self, name: str) -> asyncio.Future[Any]:
        """The next signal ``name`` not yet handled (resolved at once if one is buffered)."""

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        """True where the run takes the patched branch (see ``workflow.patched``)."""

    def upsert_search_attributes(self, attributes: dict[str, Any]) -> None:
        """Record a SearchAttributesUpserted command with these (checked) attributes."""

    def marker(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A value recorded in history once (``compute()`` on the first run) and read back,
        never recomputed, on replay."""
