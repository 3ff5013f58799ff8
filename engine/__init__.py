"""Onward: durable workflows on one machine, rebuilt by history replay after any crash."""

from importlib.metadata import PackageNotFoundError, version

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
    UpdateFailed,
    UpdatePending,
    UpdateRejected,
    WorkflowFailed,
    WouldDiscardCompleted,
)
from .hookspecs import hookimpl
from .listfilter import QueryError
from .reload import CodeWatcher, watch_code
from .retry import RetryPolicy
from .schedules import OVERLAP_POLICIES
from .visibility import parse_query
from .worker import Worker

try:
    __version__ = version("onward")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "OVERLAP_POLICIES",
    "ActivityError", "ApplicationError", "BadInput", "ChildWorkflowError", "CodeWatcher",
    "Engine", "NonDeterminismError", "NotCurrentRun", "NotFound", "OnwardError",
    "QueryError", "RetryPolicy", "RunHandle", "RunStillOpen", "StoreError", "UpdateFailed",
    "UpdatePending", "UpdateRejected", "Worker", "WorkflowFailed",
    "WouldDiscardCompleted", "activity", "hookimpl", "parse_query", "watch_code", "workflow",
]
