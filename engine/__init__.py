"""Onward: durable workflows on one machine, rebuilt by history replay after any crash."""

from . import activity, workflow
from .client import Engine, RunHandle
from .errors import (
    ActivityError,
    ApplicationError,
    BadInput,
    ChildWorkflowError,
    NonDeterminismError,
    NotCurrentRun,
    NotFound,
    OnwardError,
    RunStillOpen,
    StoreError,
    WorkflowFailed,
    WouldDiscardCompleted,
)
from .hookspecs import hookimpl
from .retry import RetryPolicy

__all__ = [
    "ActivityError", "ApplicationError", "BadInput", "ChildWorkflowError", "Engine",
    "NonDeterminismError", "NotCurrentRun", "NotFound", "OnwardError", "RetryPolicy",
    "RunHandle", "RunStillOpen", "StoreError", "WorkflowFailed", "WouldDiscardCompleted",
    "activity", "hookimpl", "workflow",
]
