"""Provider loading and validation: finding providers, importing them, checking them.

:func:`provider_files` and :func:`entry_point_providers` find providers (files in plugin
folders, entry points of the ``onward`` group); :func:`import_provider_file` runs a file
through the one file importer (engine/importer.py) under a name private to its manager.
:func:`check_plugin` registers a plugin in a scratch pluggy manager and asks its hooks
what it offers, checking that each hook returns what it promises (decorated functions,
names offered once, limits that name its own activities) and :func:`refusal` says whether
its names are free. :func:`timeboxed` runs plugin code (an import, a hook) in a thread of
its own with a time limit, and :func:`describe` turns whatever plugin code raised into one
line naming file and line. Swapping the checked plugin in, observers and watching are
engine/providers.py's job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pluggy

from . import hookspecs
from .activity import ActivityDefinition
from .activity import definition_of as activity_definition_of
from .errors import PluginError
from .importer import fresh_name, run_file
from .sources import Offers, clash
from .workflow import WorkflowDefinition
from .workflow import definition_of as workflow_definition_of

__all__ = ["ENTRY_POINT", "Candidate", "Limits", "check_plugin", "content_hash", "describe",
           "entry_point_providers", "import_provider_file", "is_provider_file",
           "provider_files", "read_or_none", "refusal", "timeboxed"]

T = TypeVar("T")
ENTRY_POINT = "entry point "
"""How the key of a provider found by entry point begins."""
Limits = tuple[int | None, float | None]
"""(max_concurrent, max_per_second) of one activity."""


def is_provider_file(path: Path, dirs: list[Path]) -> bool:
    """True for ``*.py`` not starting with ``_`` or ``.``, directly in one of ``dirs``
    (resolved folders)."""
    return (path.suffix == ".py" and not path.name.startswith(("_", "."))
            and path.parent.resolve() in dirs)


def provider_files(directory: Path) -> list[Path]:
    """The provider files directly in ``directory``, sorted."""
    return [path for path in sorted(directory.glob("*.py"))
            if not path.name.startswith(("_", "."))]


def import_provider_file(path: Path, data: bytes, owner: str) -> ModuleType:
    """Run the provider file ``path`` (content ``data``) as a fresh module whose name
    carries ``owner``; it is not left in ``sys.modules``."""
    module = run_file(path, fresh_name(f"provider_{owner}", path), data)
    sys.modules.pop(module.__name__, None)
    return module


@dataclass
class EntryPointProvider:
    """A provider an installed distribution declares (entry point group ``onward``)."""

    key: str  # "entry point dist:name"
    name: str
    version: str  # the distribution's
    entry_point: importlib.metadata.EntryPoint

    def obtain(self) -> Any:
        """Import the plugin object (plugin code runs)."""
        return self.entry_point.load()


def entry_point_providers() -> list[EntryPointProvider]:
    """Every provider installed distributions declare; whatever listing them raises
    (a broken installed distribution) propagates."""
    found = []
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else ""
        found.append(EntryPointProvider(f"{ENTRY_POINT}{dist}:{ep.name}", ep.name, version, ep))
    return found


@dataclass
class Candidate:
    """A provider version that imported and registered cleanly."""

    name: str
    version: str
    content: str  # hash of the code, without the declared version
    plugin: Any
    activities: dict[str, ActivityDefinition]
    workflows: dict[str, WorkflowDefinition]


def check_plugin(plugin: Any, name: str, source: str, content: str | None,
                 default_version: str) -> Candidate:
    """Ask one plugin for its registrations through a scratch plugin manager and check them.

    ``name`` is the provider's name unless it declares one; ``content`` the hash of its
    code (None: hash the plugin's module file); ``default_version`` the label unless it
    declares a version. PluginError (one line naming ``source``) on anything wrong.
    """
    scratch = pluggy.PluginManager(hookspecs.PROJECT)
    scratch.add_hookspecs(hookspecs)
    try:
        scratch.register(plugin, name="candidate")
        scratch.check_pending()
    except (ValueError, pluggy.PluginValidationError) as err:
        raise PluginError(f"{source}: {err} (is a hook name misspelled?)") from None
    declared: dict[str, Any] = {}
    for result in scratch.hook.onward_provider_info():
        if not isinstance(result, dict):
            raise PluginError(f"{source}: onward_provider_info() returned "
                              f"{type(result).__name__}; expected a dict")
        declared.update(result)
    name = declared.get("name") or name
    if not isinstance(name, str):
        raise PluginError(f"{source}: onward_provider_info()['name'] must be a string")
    if content is None:
        mod_file = getattr(plugin, "__file__", None)
        data = read_or_none(mod_file) if isinstance(mod_file, str) else None
        content = content_hash(data if data is not None else f"{source} {default_version}".encode())
    label = str(declared.get("version") or default_version)
    version = f"{label}+{content}" if label else content

    activities: dict[str, ActivityDefinition] = {}
    for item in _items(scratch.hook.onward_activities(), "onward_activities", source):
        adef = activity_definition_of(item)
        if not isinstance(adef, ActivityDefinition):
            hint = (" (it is a workflow: return it from onward_workflows())"
                    if workflow_definition_of(item) is not None else "")
            raise PluginError(f"{source}: onward_activities() returned {item!r}, "
                              f"which is not an @activity.defn function{hint}")
        if adef.name in activities:
            raise PluginError(f"{source}: activity {adef.name!r} is offered twice")
        activities[adef.name] = dataclasses.replace(
            adef, provider=name, provider_version=version)
    workflows: dict[str, WorkflowDefinition] = {}
    for item in _items(scratch.hook.onward_workflows(), "onward_workflows", source):
        wdef = workflow_definition_of(item)
        if not isinstance(wdef, WorkflowDefinition):
            raise PluginError(f"{source}: onward_workflows() returned {item!r}, "
                              "which is not a @workflow.defn function")
        if wdef.name in workflows:
            raise PluginError(f"{source}: workflow {wdef.name!r} is offered twice")
        workflows[wdef.name] = dataclasses.replace(wdef, provider=name)
    for act, (concurrent, per_second) in _declared_limits(
            declared.get("limits"), activities, source).items():
        activities[act] = dataclasses.replace(
            activities[act], max_concurrent=concurrent, max_per_second=per_second)
    return Candidate(name, version, content, plugin, activities, workflows)


def refusal(source: str, candidate: Candidate, serving: list[tuple[str, Candidate]],
            others: list[Offers]) -> str | None:
    """Why ``candidate`` (from ``source``) cannot serve beside the providers ``serving``
    ((source, candidate) each) and the other sources' ``others``, if it cannot: a name
    offered with different code, or a provider name already in use."""
    problem = clash(source, candidate.activities, candidate.workflows,
                    [*((where, c.activities, c.workflows) for where, c in serving), *others])
    if problem:
        return problem
    for where, other in serving:
        if other.name == candidate.name:
            return (f"{source}: provider name {candidate.name!r} is already used by "
                    f"{where}; rename the file or declare another name")
    return None


def timeboxed(fn: Callable[[], T], source: str, timeout: float) -> T:
    """Run plugin code in a daemon thread: its value or its error; PluginError after
    ``timeout`` seconds (the thread is left to finish alone)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: B036 - handed to the caller
            box["error"] = err
        finally:
            done.set()

    threading.Thread(target=run, name=f"onward-load {source}", daemon=True).start()
    if not done.wait(timeout):
        raise PluginError(f"{source}: import took longer than {timeout:g}s; "
                          "does it block at import time (network, input, sleep)?")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def content_hash(data: bytes) -> str:
    """The version hash of some code: a sha256 prefix."""
    return hashlib.sha256(data).hexdigest()[:10]


def read_or_none(path: str) -> bytes | None:
    """The bytes of ``path``, or None if it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _items(results: list[Any], hook: str, source: str) -> list[Any]:
    """Flatten one plugin's hook results, checking each is a list or tuple."""
    items: list[Any] = []
    for result in results:
        if not isinstance(result, list | tuple):
            raise PluginError(f"{source}: {hook}() returned {type(result).__name__}; "
                              "expected a list of decorated functions")
        items.extend(result)
    return items


def _declared_limits(limits: Any, activities: dict[str, ActivityDefinition],
                     source: str) -> dict[str, Limits]:
    """Check ``onward_provider_info()['limits']``; merge them over the decorator's."""
    if limits is None:
        return {}
    if not isinstance(limits, dict):
        raise PluginError(f"{source}: onward_provider_info()['limits'] must be a dict")
    merged: dict[str, Limits] = {}
    for act, spec in limits.items():
        if act not in activities:
            raise PluginError(f"{source}: limits name activity {act!r}, which this provider "
                              f"does not offer (it offers: {', '.join(activities) or 'none'})")
        if not isinstance(spec, dict) or set(spec) - {"max_concurrent", "max_per_second"}:
            raise PluginError(f"{source}: limits for {act!r} must be a dict with "
                              "'max_concurrent' and/or 'max_per_second'")
        concurrent = spec.get("max_concurrent", activities[act].max_concurrent)
        per_second = spec.get("max_per_second", activities[act].max_per_second)
        if concurrent is not None and (isinstance(concurrent, bool)
                                       or not isinstance(concurrent, int) or concurrent < 1):
            raise PluginError(f"{source}: max_concurrent for {act!r} must be a positive int")
        if per_second is not None and (isinstance(per_second, bool)
                                       or not isinstance(per_second, int | float)
                                       or per_second <= 0):
            raise PluginError(f"{source}: max_per_second for {act!r} must be a positive number")
        merged[act] = (concurrent, None if per_second is None else float(per_second))
    return merged


def describe(err: BaseException, file: str | None) -> str:
    """``file:line: Type: message`` for an error raised by plugin code."""
    if isinstance(err, PluginError):
        return str(err)
    if isinstance(err, SyntaxError):
        return f"{err.filename or file}:{err.lineno}: SyntaxError: {err.msg}"
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if not f.filename.startswith("<frozen")]
    inside = [f for f in frames if file is not None and f.filename == file]
    candidates = inside or frames
    frame = candidates[-1] if candidates else None
    where = f"{frame.filename}:{frame.lineno}" if frame is not None else (file or "?")
    return f"{where}: {type(err).__name__}: {err}"
