"""What code an engine can run: workflows and activities from flows modules and providers."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from .activity import ActivityDefinition
from .activity import definition_of as activity_definition_of
from .errors import BadInput
from .workflow import WorkflowDefinition
from .workflow import definition_of as workflow_definition_of


def _where(err: BaseException, path: str) -> str:
    """``file:line`` of the innermost frame of ``err`` inside ``path`` (or the file)."""
    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}"
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if os.path.abspath(f.filename).startswith(os.path.abspath(path))]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    return path


class FlowsModule:
    """One loaded flows module: its workflows and activities, and where it came from."""

    def __init__(self, spec: str, module: ModuleType, path: str | None) -> None:
        self.spec = spec
        self.module = module
        self.path = path
        self.version = ""
        if path and os.path.isfile(path):
            self.version = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:10]
        self.workflows: dict[str, WorkflowDefinition] = {}
        self.activities: dict[str, ActivityDefinition] = {}
        name = Path(path).stem if path else spec
        for value in vars(module).values():
            wf = workflow_definition_of(value)
            if wf is not None and getattr(value, "__module__", None) == module.__name__:
                self.workflows[wf.name] = dataclasses.replace(wf, provider=name)
            act = activity_definition_of(value)
            if act is not None and getattr(value, "__module__", None) == module.__name__:
                self.activities[act.name] = dataclasses.replace(
                    act, provider=name, provider_version=self.version)


_import_lock = threading.Lock()
_counter = 0


def import_file(path: str, unique: bool = True) -> ModuleType:
    """Import a Python file as a fresh module; BadInput naming file and line if it fails."""
    global _counter
    with _import_lock:
        _counter += 1
        name = f"onward_flows_{_counter}_{Path(path).stem}" if unique else Path(path).stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BadInput(f"--flows {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(Path(path).resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as err:
        sys.modules.pop(name, None)
        raise BadInput(f"--flows {path}: {type(err).__name__}: {err} "
                       f"(at {_where(err, path)})") from None
    return module


def load_flows(spec: str) -> list[FlowsModule]:
    """Load a flows spec: a module file, a folder (package or plain) or a dotted module."""
    path = Path(spec)
    if path.is_file():
        return [FlowsModule(spec, import_file(str(path)), str(path))]
    if path.is_dir():
        files = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        if (path / "__init__.py").exists():
            parent = str(path.resolve().parent)
            if parent not in sys.path:
                sys.path.insert(0, parent)
            loaded = []
            for file in files:
                name = f"{path.resolve().name}.{file.stem}"
                loaded.append(FlowsModule(spec, _import_module(name, str(file)), str(file)))
            return loaded
        return [FlowsModule(spec, import_file(str(f)), str(f)) for f in files]
    if spec.endswith(".py") or os.sep in spec:
        raise BadInput(f"--flows {spec}: no such file or folder")
    return [FlowsModule(spec, _import_module(spec, None), None)]


def _import_module(name: str, path: str | None) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and name.startswith(err.name):
            raise BadInput(f"--flows {name}: no such file, folder or module") from None
        raise BadInput(f"--flows {name}: {err}") from None
    except BaseException as err:
        raise BadInput(f"--flows {name}: {type(err).__name__}: {err} "
                       f"(at {_where(err, path or name)})") from None


class Registry:
    """Workflows and activities by name, from flows modules and provider plugins."""

    def __init__(self, flows: Iterable[str] = (), plugin_dirs: Iterable[str | Path] = (),
                 *, entry_points: bool = False, clock: Callable[[], float] | None = None
                 ) -> None:
        self.flows: list[FlowsModule] = []
        for spec in flows:
            self.flows.extend(load_flows(str(spec)))
        self.providers: Any = None
        dirs: list[str | Path] = [Path(d) for d in plugin_dirs]
        for folder in map(Path, dirs):
            if not folder.is_dir():
                raise BadInput(f"--plugins {folder}: no such folder")
        if dirs or entry_points:
            from .plugins import ProviderManager
            kwargs: dict[str, Any] = {"entry_points": entry_points}
            if clock is not None:
                kwargs["clock"] = clock
            self.providers = ProviderManager(dirs, **kwargs)
            self.providers.load()
            self.providers.add_listener(lambda entry: self.refresh())
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the name tables (after a provider or flows reload)."""
        workflows: dict[str, WorkflowDefinition] = {}
        activities: dict[str, ActivityDefinition] = {}
        limits: dict[str, tuple[int | None, float | None]] = {}
        if self.providers is not None:
            workflows.update(self.providers.workflows())
            activities.update(self.providers.activities())
            limits.update(self.providers.limits())
        for flows in self.flows:
            workflows.update(flows.workflows)
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
