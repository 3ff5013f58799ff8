"""Sources of code and the names they offer: when two offers of one name are one definition.

A source is a flows module or a provider. Each offers workflows and activities by name;
two sources may offer one name only with the same code (one function seen through two
modules, or one file loaded twice). :func:`clash` says why a source cannot join the others.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from typing import Any

from .activity import ActivityDefinition
from .workflow import WorkflowDefinition

__all__ = ["Offers", "clash", "origin", "same_definition"]

Offers = tuple[str, dict[str, ActivityDefinition], dict[str, WorkflowDefinition]]
"""One source of code: (its name in messages, activities by name, workflows by name)."""


def origin(fn: Any) -> tuple[str, str] | None:
    """(file, qualified name) where a definition's function was written, if known.

    One function imported through two modules (or one file loaded twice) has one origin:
    it is one definition, not two sources offering the same name.
    """
    target = inspect.unwrap(getattr(fn, "__func__", fn))
    code = getattr(target, "__code__", None)
    if code is None:
        return None
    return os.path.realpath(code.co_filename), str(getattr(target, "__qualname__", ""))


def same_definition(a: ActivityDefinition | WorkflowDefinition,
                    b: ActivityDefinition | WorkflowDefinition) -> bool:
    """True when ``a`` and ``b`` are the same code (seen through two modules or loads)."""
    if a.fn is b.fn:
        return True
    where = origin(a.fn)
    return where is not None and where == origin(b.fn)


def clash(source: str, activities: dict[str, ActivityDefinition],
          workflows: dict[str, WorkflowDefinition], others: Iterable[Offers]) -> str | None:
    """Why ``source`` cannot offer its names beside ``others``: a name another source
    offers with different code (one line naming both sources), else None."""
    for other, their_activities, their_workflows in others:
        for kind, mine, theirs in (("activity", activities, their_activities),
                                   ("workflow", workflows, their_workflows)):
            for name in sorted(mine.keys() & theirs.keys()):
                if not same_definition(mine[name], theirs[name]):
                    return (f"{source}: {kind} {name!r} is already provided by {other}; "
                            "rename one of them or remove one source")
    return None
