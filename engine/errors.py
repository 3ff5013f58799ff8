"""The engine's error hierarchy: each error says what went wrong, where, and what to do."""

from __future__ import annotations

from typing import Any


class OnwardError(Exception):
    """Base class of every error the engine raises on purpose."""


class BadInput(OnwardError):
    """The caller gave input the engine cannot use (exit status 2 on the CLI)."""


class NotFound(BadInput):
    """An id or name that the store or registry does not know."""


class UnknownWorkflow(NotFound):
    """A workflow type that no flows module or worker has registered."""


class NotCurrentRun(BadInput):
    """A repair named an older run of an id: retry and reset act on its current run only."""


class WouldDiscardCompleted(BadInput):
    """A retry or reset would cut away activities that completed (side effects that really
    happened); ``completed`` lists them. Pass ``discard_completed=True`` to accept."""

    def __init__(self, message: str, completed: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.completed = completed


class StoreError(OnwardError):
    """The database is missing, corrupt, full or otherwise unusable."""


class StoreConflict(StoreError):
    """A transaction lost to a concurrent one (a deadlock or a unique key another writer
    took first) and was rolled back whole: nothing of it was kept, so it may be done again."""


class DatabaseMissing(StoreError, BadInput):
    """A read-only command was pointed at a database file that does not exist."""


class DatabaseCorrupt(StoreError, BadInput):
    """The file is not an Onward database or fails SQLite's integrity check."""


class PayloadError(BadInput):
    """A payload is not JSON, or is larger than the engine accepts."""


class PluginError(OnwardError):
    """A provider plugin failed to import, register or reload."""


class ApplicationError(Exception):
    """An error raised by activity or workflow code on purpose.

    ``non_retryable=True`` stops an activity's retries at once. ``type`` names the
    error kind for ``RetryPolicy.non_retryable_error_types`` (defaults to the class name).
    """

    def __init__(
        self,
        message: str = "",
        *details: Any,
        type: str | None = None,
        non_retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.type = type or self.__class__.__name__
        self.non_retryable = non_retryable


class ActivityError(ApplicationError):
    """An activity failed for good (retries exhausted, non-retryable, or timed out)."""

    def __init__(self, message: str, *, activity: str = "", cause_type: str = "",
                 attempts: int = 0, timeout: bool = False) -> None:
        super().__init__(message, type="ActivityError", non_retryable=True)
        self.activity = activity
        self.cause_type = cause_type
        self.attempts = attempts
        self.timeout = timeout


class ChildWorkflowError(ApplicationError):
    """A child workflow failed, was canceled or was terminated."""

    def __init__(self, message: str, *, workflow: str = "", child_id: str = "",
                 status: str = "failed") -> None:
        super().__init__(message, type="ChildWorkflowError", non_retryable=True)
        self.workflow = workflow
        self.child_id = child_id
        self.status = status


class WorkflowFailed(OnwardError):
    """Raised by ``RunHandle.result`` when the run failed, was canceled or terminated."""

    def __init__(self, message: str, *, status: str = "failed",
                 error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error or {}


class NonDeterminismError(OnwardError):
    """Workflow code asked for something other than what its history recorded."""


class RunStillOpen(OnwardError):
    """``RunHandle.result`` timed out before the run closed."""
