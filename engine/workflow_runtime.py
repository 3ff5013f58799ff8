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
    query_handlers: dict[str, Callable[..., Any]]
    """Query name -> handler, set by ``workflow.set_query_handler``."""

    @property
    def random(self) -> random.Random:
        """The run's deterministic random source."""

    def schedule_activity(self, name: str, args: list[Any], options: dict[str, Any]
                          ) -> asyncio.Future[Any]:
        """Schedule activity ``name``; resolves to its result or raises ActivityError."""

    def start_timer(self, seconds: float, purpose: str = "sleep"
                    ) -> tuple[int, asyncio.Future[Any]]:
        """Start a durable timer; (its seq, a future resolved when it fires)."""

    def create_manual_task(self, attrs: dict[str, Any]) -> asyncio.Future[Any]:
        """Create a task for a person; resolves to their result (or raises)."""

    def start_child(self, workflow: str, args: list[Any], child_id: str | None
                    ) -> asyncio.Future[Any]:
        """Start a child workflow; resolves to its result or raises ChildWorkflowError."""

    def activity_code(self, name: str) -> Callable[..., Any] | None:
        """The code of activity ``name`` if this worker knows it (its return hint types
        the activity's result), else None."""

    def signal_future(self, name: str) -> asyncio.Future[Any]:
        """The next signal ``name`` not yet handled (resolved at once if one is buffered)."""

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        """True where the run takes the patched branch (see ``workflow.patched``)."""
