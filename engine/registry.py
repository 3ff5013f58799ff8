"""What code an engine can run: workflows and activities from flows modules and providers."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import providers
from .activity import ActivityDefinition
from .errors import BadInput
from .flows import FlowsModule, load_flows
from .sources import Offers, clash
from .workflow import WorkflowDefinition

__all__ = ["FlowsModule", "Offers", "Registry"]


class Registry:
    """Workflows and activities by name, from flows modules and provider plugins.

    Each name comes from one source: two sources offering one name with different code
    is a BadInput naming both, and a reload that would do so is refused.
    """

    def __init__(self, flows: Iterable[str] = (), plugin_dirs: Iterable[str | Path] = (),
                 *, entry_points: bool = False, clock: Callable[[], float] | None = None
                 ) -> None:
        self.flows: list[FlowsModule] = []
        self.providers: providers.ProviderManager | None = None
        for spec in flows:
            for module in load_flows(str(spec)):
                problem = self.clash_of([module])
                if problem:
                    raise BadInput(problem)
                self.flows.append(module)
        dirs: list[str | Path] = [Path(d) for d in plugin_dirs]
        for folder in map(Path, dirs):
            if not folder.is_dir():
                raise BadInput(f"--plugins {folder}: no such folder")
        if dirs or entry_points:
            kwargs: dict[str, Any] = {"entry_points": entry_points,
                                      "others": self.flows_offers}
            if clock is not None:
                kwargs["clock"] = clock
            self.providers = providers.ProviderManager(dirs, **kwargs)
            self.providers.load()
            conflicts = self.providers.conflicts()
            if conflicts:
                raise BadInput(conflicts[0])
            self.providers.add_listener(lambda entry: self.refresh())
        self._lock = threading.Lock()
        self.refresh()

    def sources_lock(self) -> contextlib.AbstractContextManager[Any]:
        """Held while a flows module is checked against the providers and swapped in, so
        that a provider reload cannot take one of its names meanwhile."""
        if self.providers is None:
            return contextlib.nullcontext()
        lock: contextlib.AbstractContextManager[Any] = self.providers.loading()
        return lock

    def flows_offers(self, *, but: Iterable[FlowsModule] = ()) -> list[Offers]:
        """What each loaded flows module offers (except those in ``but``)."""
        skip = [id(f) for f in but]
        return [(f.source, f.activities, f.workflows) for f in self.flows if id(f) not in skip]

    def clash_of(self, news: list[FlowsModule], replacing: Iterable[FlowsModule] = ()
                 ) -> str | None:
        """Why the modules ``news`` (in place of ``replacing``) cannot join the other
        sources or each other, if they cannot: a name offered twice with different code."""
        others = self.flows_offers(but=replacing)
        if self.providers is not None:
            others += self.providers.offers()
        for index, new in enumerate(news):
            later = [(n.source, n.activities, n.workflows) for n in news[index + 1:]]
            problem = clash(new.source, new.activities, new.workflows, [*others, *later])
            if problem:
                return problem
        return None

    def refresh(self) -> None:
        """Rebuild the name tables (after a provider or flows reload)."""
        workflows: dict[str, WorkflowDefinition] = {}
        activities: dict[str, ActivityDefinition] = {}
        limits: dict[str, tuple[int | None, float | None]] = {}
        if self.providers is not None:
            workflows.update(self.providers.workflows())
            activities.update(self.providers.activities())
            limits.update(self.providers.limits())
        for flows in self.flows:  # a name both offer is one definition: the provider's
            for name, wf in flows.workflows.items():
                workflows.setdefault(name, wf)
            for name, act in flows.activities.items():
                activities.setdefault(name, act)
        for name, act in activities.items():
            if (act.max_concurrent or act.max_per_second) and name not in limits:
                limits[name] = (act.max_concurrent, act.max_per_second)
        self._workflows = workflows
        self._activities = activities
        self._limits = limits
        self._workflow_names = sorted(workflows)
        self._activity_names = sorted(activities)

    def workflow(self, name: str) -> WorkflowDefinition | None:
        return self._workflows.get(name)

    def activity(self, name: str) -> ActivityDefinition | None:
        return self._activities.get(name)

    def workflow_names(self) -> list[str]:
        return self._workflow_names

    def activity_names(self) -> list[str]:
        return self._activity_names

    def limits(self) -> dict[str, tuple[int | None, float | None]]:
        return self._limits

    @property
    def has_code(self) -> bool:
        """True when any flows or providers were given (``start`` checks names against them)."""
        return bool(self.flows) or self.providers is not None

    def replace_flows(self, old: FlowsModule, new: FlowsModule) -> None:
        """Swap one loaded flows module for a newer load of the same file."""
        self.flows = [new if f is old else f for f in self.flows]
        self.refresh()

    def close(self) -> None:
        if self.providers is not None:
            self.providers.stop_watching()
