"""The engine's error hierarchy (each error says what went wrong, where, and what to do),
and how a failure is recorded in history: :func:`error_json` is the one serialiser, used for
workflow failures and activity attempts alike."""

from __future__ import annotations

import json
import traceback
from typing import Any

MAX_MESSAGE_CHARS = 10_000
"""The longest error message recorded in history (longer ones are cut)."""
MAX_TRACEBACK_CHARS = 20_000
"""The longest traceback recorded in history (its end is kept)."""
MAX_DETAILS_CHARS = 2 * 1024 * 1024
"""Details whose JSON is longer than this (a payload's limit) are left out of the record."""

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


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
        self.traceback_text = ""
        """For an error rebuilt from history: the traceback recorded where it was raised."""

    @property
    def cause(self) -> BaseException | None:
        """The error this one was raised from (``raise ... from cause``), if any."""
        return self.__cause__


class ActivityError(ApplicationError):
    """An activity failed for good (retries exhausted, non-retryable, or timed out)."""

    def __init__(self, message: str, *, activity: str = "", cause_type: str = "",
                 attempts: int = 0, timeout: bool = False,
                 cause: BaseException | None = None) -> None:
        super().__init__(message, type="ActivityError", non_retryable=True)
        self.activity = activity
        self.cause_type = cause_type
        self.attempts = attempts
        self.timeout = timeout
        self.__cause__ = cause


class ChildWorkflowError(ApplicationError):
    """A child workflow failed, was canceled or was terminated."""

    def __init__(self, message: str, *, workflow: str = "", child_id: str = "",
                 status: str = "failed", cause: BaseException | None = None) -> None:
        super().__init__(message, type="ChildWorkflowError", non_retryable=True)
        self.workflow = workflow
        self.child_id = child_id
        self.status = status
        self.__cause__ = cause


class WorkflowFailed(OnwardError):
    """Raised by ``RunHandle.result`` when the run failed, was canceled or terminated."""

    def __init__(self, message: str, *, status: str = "failed",
                 error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error or {}
        self.__cause__ = error_from_json(self.error) if self.error else None

    @property
    def cause(self) -> BaseException | None:
        """The run's failure rebuilt from history, with its own ``.cause`` chain."""
        return self.__cause__


class NonDeterminismError(OnwardError):
    """Workflow code asked for something other than what its history recorded."""


class RunStillOpen(OnwardError):
    """``RunHandle.result`` timed out before the run closed."""


class UpdateRejected(BadInput):
    """An update's validator (or the run: closed, or no such handler) turned the request
    down; nothing was recorded in the run's history."""


class UpdateFailed(OnwardError):
    """An accepted update's handler raised; ``error`` is the failure as recorded."""

    def __init__(self, message: str, *, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error or {}


class UpdatePending(OnwardError):
    """The wait for an update's outcome ended first; the request stays and may still be
    accepted and completed (wait again with the same ``update_id``)."""


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in when the exception cannot even print itself."""
    try:
        return str(exc) or type(exc).__name__
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the failure
        return f"<{type(exc).__name__} whose message cannot be printed>"


def safe_traceback(exc: BaseException) -> str:
    """The formatted traceback of ``exc``, surviving a broken ``__str__``."""
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:  # noqa: BLE001
        return f"{type(exc).__name__}: {safe_str(exc)}"


MAX_CAUSE_DEPTH = 5
"""How many links of a cause chain (``raise ... from ...``) history keeps."""


def error_from_json(err: dict[str, Any], depth: int = 0) -> ApplicationError:
    """A recorded failure as an ApplicationError (its ``type``, message, details and
    traceback text), with its recorded cause chain as ``.cause``."""
    rebuilt = ApplicationError(str(err.get("message") or ""), *(err.get("details") or []),
                               type=str(err.get("type") or "Error"),
                               non_retryable=bool(err.get("non_retryable")))
    rebuilt.traceback_text = str(err.get("traceback") or "")
    cause = err.get("cause")
    if isinstance(cause, dict) and depth < MAX_CAUSE_DEPTH:
        rebuilt.__cause__ = error_from_json(cause, depth + 1)
    return rebuilt


def error_json(exc: BaseException, depth: int = 0) -> dict[str, Any]:
    """A failure as stored in history: ``type``, ``message``, ``traceback``, and for an
    :class:`ApplicationError` ``non_retryable`` (when set) and ``details`` (when they are
    JSON); ``cause``: the same for the error it was raised from, a few links deep. ``type``
    is an ApplicationError's ``type``, else the exception's class name."""
    app = exc if isinstance(exc, ApplicationError) else None
    err: dict[str, Any] = {
        "type": app.type if app is not None and isinstance(app.type, str)
        else type(exc).__name__,
        "message": safe_str(exc)[:MAX_MESSAGE_CHARS],
        "traceback": safe_traceback(exc)[-MAX_TRACEBACK_CHARS:],
    }
    if app is not None and app.non_retryable:
        err["non_retryable"] = True
    if app is not None and app.details and _is_json(app.details):
        err["details"] = app.details
    if app is not None and app.traceback_text and not err["traceback"]:
        err["traceback"] = app.traceback_text[-MAX_TRACEBACK_CHARS:]
    cause = exc.__cause__
    if cause is not None and depth < MAX_CAUSE_DEPTH:
        err["cause"] = error_json(cause, depth + 1)
    return err


def _is_json(value: Any) -> bool:
    """True if ``value`` encodes as JSON text within the details limit."""
    try:
        text = _ENCODE(value)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    return len(text) <= MAX_DETAILS_CHARS
