"""The records a workflow activation produces and the words its errors use: commands with
their seqs, the activation's result, the failure that holds a run, and where in the user's
code a command was issued (for non-determinism messages)."""

from __future__ import annotations

import linecache
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import OnwardError
from .events import CANCEL_TYPES, Event

_ENGINE_DIR = str(Path(__file__).resolve().parent)


@dataclass(slots=True)
class Command:
    """A new history event requested by the code, with its future (if any)."""

    type: str
    attrs: dict[str, Any]
    seq: int = 0


@dataclass(slots=True)
class Activation:
    """What one activation produced: new commands and side effects to cancel."""

    commands: list[Command] = field(default_factory=list)
    cancels: list[tuple[str, int]] = field(default_factory=list)
    persisted: int = 0
    """How many of ``commands`` the engine has stored (it may store them before the
    activation ends: an external call first stores the commands issued before it)."""
    cancels_done: int = 0
    """How many of ``cancels`` the engine has carried out."""


class Diverged(BaseException):  # noqa: N818 - unwinds workflow code past `except Exception`
    """Stops workflow code once its activation has failed (non-determinism)."""


class WorkflowTaskError(OnwardError):
    """The workflow code could not advance: a bug or non-determinism. The run is held."""

    def __init__(self, message: str, *, kind: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details


class SourceLine:
    """Where workflow code issued a command; formatted (with the code line) only if read."""

    __slots__ = ("filename", "lineno")

    def __init__(self, filename: str, lineno: int) -> None:
        self.filename, self.lineno = filename, lineno

    def __str__(self) -> str:
        if not self.filename:
            return ""
        code = linecache.getline(self.filename, self.lineno).strip()
        return f"{Path(self.filename).name}:{self.lineno}  {code}"

    def __bool__(self) -> bool:
        return bool(self.filename)


def source_line() -> SourceLine:
    """The innermost workflow-code frame calling into the engine."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_ENGINE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return SourceLine("", 0)
    return SourceLine(frame.f_code.co_filename, frame.f_lineno)


def describe(event_type: str, attrs: dict[str, Any]) -> str:
    key = command_key(event_type, attrs)
    return f"{event_type} {key!r}" if key else event_type


def command_key(event_type: str, attrs: dict[str, Any]) -> str:
    if event_type == "ActivityScheduled":
        return str(attrs.get("name", ""))
    if event_type == "ChildWorkflowStarted":
        return str(attrs.get("workflow", ""))
    if event_type == "ExternalSignalSent":
        return f"{attrs.get('workflow_id', '')} {attrs.get('name', '')}"
    if event_type == "ExternalCancelRequested":
        return str(attrs.get("workflow_id", ""))
    if event_type == "ManualTaskCreated":
        return str(attrs.get("kind", ""))
    if event_type == "MarkerRecorded":
        return str(attrs.get("patch_id") or attrs.get("name", ""))
    if event_type == "SearchAttributesUpserted":
        return ",".join(sorted(attrs.get("attributes", {})))
    if event_type == "UpdateCompleted":
        return str(attrs.get("update_id", ""))
    if event_type in CANCEL_TYPES:
        return str(attrs.get("ref", ""))
    return ""



def is_patch_marker(event: Event) -> bool:
    return event.type == "MarkerRecorded" and bool(event.attrs.get("patch_id"))

CHILD_DEFAULTS: dict[str, str] = {"parent_close_policy": "terminate",
                                  "id_reuse_policy": "allow_duplicate"}
"""Options of a child start, with the defaults that ChildWorkflowStarted leaves out."""
