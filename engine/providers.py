"""Activity-provider plugins: the manager that swaps providers in and calls observers.

One :class:`ProviderManager` per engine loads the providers of the plugin folders the
operator named and, when asked, of the entry-point group ``onward`` (engine/plugin_load.py
finds, imports and checks them), and swaps each into the published snapshot only when its
names are free, so a broken edit leaves the previous version serving. It keeps the
provider log (engine/provider_log.py) and reloads changed files (engine/watch.py).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .activity import ActivityDefinition
from .errors import PluginError
from .plugin_load import (
    ENTRY_POINT,
    Candidate,
    Limits,
    check_plugin,
    content_hash,
    describe,
    entry_point_providers,
    import_provider_file,
    is_provider_file,
    provider_files,
    read_or_none,
    refusal,
    timeboxed,
)
from .provider_log import ProviderLog, ProviderLogEntry
from .sources import Offers
from .watch import FileWatcher
from .workflow import WorkflowDefinition

__all__ = ["ProviderInfo", "ProviderLogEntry", "ProviderManager"]

logger = logging.getLogger("onward.plugins")
IN_PROCESS = "in-process "


class _Clash(PluginError):
    """A provider offers a name another source offers (with different code)."""


@dataclass
class ProviderInfo:
    """What the operator sees about one provider."""

    name: str
    source: str
    version: str
    activities: list[str]
    workflows: list[str]
    loaded_at: float
    error: str | None = None


@dataclass
class _Provider:
    key: str  # identity: resolved file path, "entry point dist:name" or "in-process name"
    info: ProviderInfo
    content_hash: str
    serving: Candidate | None = None

    observer_failures: set[str] = field(default_factory=set)

    @property
    def is_file(self) -> bool:
        """True for a provider loaded from a file in a plugin folder."""
        return not self.key.startswith((ENTRY_POINT, IN_PROCESS))


class ProviderManager:
    """Loads activity providers from directories and entry points, and keeps them fresh."""

    def __init__(
        self,
        dirs: list[str | Path],
        *,
        entry_points: bool = True,
        clock: Callable[[], float] = time.time,
        import_timeout: float = 10.0,
        others: Callable[[], list[Offers]] | None = None,
    ) -> None:
        """``others`` tells what other sources (flows modules) offer: a provider offering
        one of their names with different code is refused, as between providers."""
        self._others = others or list
        self._conflicts: dict[str, str] = {}  # provider key -> why it clashed (not serving)
        self._dirs = [Path(d).resolve() for d in dirs]
        self._entry_points = entry_points
        self._clock = clock
        self._import_timeout = import_timeout
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._lock = threading.RLock()  # serialises loads and reloads
        self._providers: dict[str, _Provider] = {}
        # Published snapshots: replaced whole, never mutated, so readers need no lock.
        self._activities: dict[str, ActivityDefinition] = {}
        self._workflows: dict[str, WorkflowDefinition] = {}
        self._limits: dict[str, Limits] = {}
        self._infos: list[ProviderInfo] = []
        self._log = ProviderLog(clock)
        self._watcher: FileWatcher | None = None

    # ----------------------------------------------------------------- snapshots

    def activities(self) -> dict[str, ActivityDefinition]:
        """Activity name -> definition (with provider and version); do not mutate."""
        return self._activities

    def workflows(self) -> dict[str, WorkflowDefinition]:
        """Workflow name -> definition (with provider); do not mutate."""
        return self._workflows

    def limits(self) -> dict[str, Limits]:
        """Activity name -> (max_concurrent, max_per_second), for limited activities only."""
        return self._limits

    def providers(self) -> list[ProviderInfo]:
        """Every provider found, serving or failed, in load order."""
        return list(self._infos)

    def offers(self) -> list[Offers]:
        """(source, activities, workflows) of every serving provider."""
        return [(p.info.source, p.serving.activities, p.serving.workflows)
                for p in self._providers.values() if p.serving is not None]

    def loading(self) -> threading.RLock:
        """The lock held while providers load or reload (hold it to keep them still)."""
        return self._lock

    def conflicts(self) -> list[str]:
        """Why a provider's latest load was refused: it offers a name that another
        source offers with different code (at start: that provider is not serving)."""
        with self._lock:
            return list(self._conflicts.values())

    def log(self) -> list[ProviderLogEntry]:
        """The most recent load, reload, failure and removal entries, oldest first."""
        return self._log.entries()

    def add_listener(self, fn: Callable[[ProviderLogEntry], None]) -> None:
        """Call ``fn(entry)`` for every new log entry (from the thread that made it)."""
        self._log.add_listener(fn)

    def remove_listener(self, fn: Callable[[ProviderLogEntry], None]) -> None:
        """Stop calling ``fn``."""
        self._log.remove_listener(fn)

    # ----------------------------------------------------------------- loading

    def load(self) -> None:
        """Discover and load every provider; problems are logged, never raised."""
        with self._lock:
            seen: set[str] = set()
            for directory in self._dirs:
                if not directory.is_dir():
                    self._log.record(str(directory), "", "failed",
                                     f"plugin directory {directory} does not exist")
                    continue
                for path in provider_files(directory):
                    seen.add(str(path))
                    self._load_file(path)
            for key in [k for k, p in self._providers.items() if p.is_file and k not in seen]:
                self._remove(key)
            if self._entry_points:
                self._load_entry_points()
        self._log.flush()

    def reload_path(self, path: str | Path) -> ProviderLogEntry:
        """(Re)load one provider file, or unregister it if the file is gone.

        An unchanged file whose provider is serving is not re-imported; the returned
        entry then says so and is not logged.
        """
        with self._lock:
            resolved = Path(os.path.abspath(path)).resolve()
            if not self.is_provider_file(resolved):
                entry = self._log.record(
                    str(resolved), "", "failed",
                    f"{resolved} is not a provider file in a plugin directory "
                    f"({', '.join(map(str, self._dirs)) or 'none named'})")
            elif resolved.exists():
                entry = self._load_file(resolved)
            elif str(resolved) in self._providers:
                entry = self._remove(str(resolved))
            else:
                entry = ProviderLogEntry(self._clock(), resolved.stem, "", "removed",
                                         f"{resolved} was not loaded; nothing to remove")
        self._log.flush()
        return entry

    def register_plugin(self, obj: Any, name: str) -> ProviderLogEntry:
        """Register a module or object with hookimpls in-process (replacing one of that name)."""
        with self._lock:
            key = f"{IN_PROCESS}{name}"
            file = getattr(obj, "__file__", None)
            data = read_or_none(file) if isinstance(file, str) else None
            content = content_hash(data if data is not None else repr((name, obj)).encode())
            entry = self._install(key, name, key, content, lambda: obj,
                                  file if data is not None else None)
        self._log.flush()
        return entry

    def _load_file(self, path: Path) -> ProviderLogEntry:
        key = str(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            return self._fail(key, path.stem, key, "", f"{path}: cannot read: {err}")
        content = content_hash(data)
        current = self._providers.get(key)
        if (current is not None and current.serving is not None
                and current.content_hash == content and current.info.error is None):
            return ProviderLogEntry(self._clock(), current.info.name, current.info.version,
                                    "reloaded", f"{path} is unchanged; nothing to do")
        return self._install(key, path.stem, key, content,
                             lambda: import_provider_file(path, data, f"{id(self):x}"), key)

    def _load_entry_points(self) -> None:
        try:
            found = entry_point_providers()
        except Exception as err:  # a broken installed distribution must not stop the engine
            self._log.record("entry points", "", "failed", f"cannot list entry points: {err}")
            return
        for ep in found:
            if ep.key not in self._providers:
                self._install(ep.key, ep.name, ep.key, None, ep.obtain, None,
                              default_version=ep.version)

    # ----------------------------------------------------------------- install and swap

    def _install(self, key: str, name: str, source: str, content: str | None,
                 obtain: Callable[[], Any], file: str | None,
                 default_version: str = "") -> ProviderLogEntry:
        """Import, check and swap in one provider; on any problem keep the old version.

        ``content`` is the hash of the code being loaded; ``None`` means: hash the
        plugin's own module file once it is imported (entry points).
        """
        version = content or ""
        try:
            candidate = timeboxed(
                lambda: check_plugin(obtain(), name, source, content, default_version),
                source, self._import_timeout)
            version = candidate.version
            clash = self._clash(key, source, candidate)
            registered_as = self._pm.get_name(candidate.plugin)
            if clash:
                raise _Clash(clash)
            if registered_as not in (None, key):
                raise PluginError(f"{source}: this plugin object is already registered as "
                                  f"{registered_as}")
        except BaseException as err:  # noqa: B036 - plugin code may raise anything, even SystemExit
            # Even KeyboardInterrupt: the import ran in a loader thread, so it came from the
            # plugin, not from the operator's Ctrl-C.
            if isinstance(err, _Clash):
                self._conflicts[key] = str(err)
            return self._fail(key, name, source, version, describe(err, file))
        self._conflicts.pop(key, None)
        old = self._providers.get(key)
        if old is not None and old.serving is not None:
            self._pm.unregister(name=key)
        self._pm.register(candidate.plugin, name=key)
        info = ProviderInfo(candidate.name, source, candidate.version,
                            sorted(candidate.activities), sorted(candidate.workflows),
                            self._clock())
        self._providers[key] = _Provider(key, info, candidate.content, candidate)
        self._publish()
        action = "reloaded" if old is not None and old.serving is not None else "loaded"
        offers = ", ".join(info.activities + info.workflows) or "nothing (no hooks found)"
        return self._log.record(candidate.name, candidate.version, action,
                                f"{source}: offers {offers}")

    def _clash(self, key: str, source: str, candidate: Candidate) -> str | None:
        """Why ``candidate`` cannot join the providers serving (but the one it replaces)
        and the other sources, if it cannot."""
        serving = [(p.info.source, p.serving) for p in self._providers.values()
                   if p.key != key and p.serving is not None]
        return refusal(source, candidate, serving, self._others())

    def _fail(self, key: str, name: str, source: str, version: str,
              message: str) -> ProviderLogEntry:
        old = self._providers.get(key)
        if old is not None and old.serving is not None:
            old.info = dataclasses.replace(old.info, error=message)
            name = old.info.name
        else:  # never served: show the version that failed
            info = ProviderInfo(name, source, version, [], [], self._clock(), error=message)
            self._providers[key] = _Provider(key, info, "")
        self._publish()
        if old is not None and old.serving is not None:
            message += f" (version {old.info.version} keeps serving)"
        return self._log.record(name, version, "failed", message)

    def _remove(self, key: str) -> ProviderLogEntry:
        self._conflicts.pop(key, None)
        old = self._providers.pop(key)
        if old.serving is not None:
            self._pm.unregister(name=key)
        self._publish()
        return self._log.record(
            old.info.name, old.info.version, "removed",
            f"{old.info.source} is gone; its activities are no longer offered")

    def _publish(self) -> None:
        activities: dict[str, ActivityDefinition] = {}
        workflows: dict[str, WorkflowDefinition] = {}
        for provider in self._providers.values():
            if provider.serving is not None:
                activities.update(provider.serving.activities)
                workflows.update(provider.serving.workflows)
        self._limits = {name: (a.max_concurrent, a.max_per_second)
                        for name, a in activities.items()
                        if a.max_concurrent is not None or a.max_per_second is not None}
        self._activities = activities
        self._workflows = workflows
        self._infos = [p.info for p in self._providers.values()]

    # ----------------------------------------------------------------- events and log

    def has_observers(self) -> bool:
        """True when some provider implements ``onward_event``."""
        return bool(self._pm.hook.onward_event.get_hookimpls())

    def notify_event(self, event: dict[str, Any]) -> None:
        """Pass an engine event to every ``onward_event`` observer, each guarded."""
        for impl in self._pm.hook.onward_event.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                impl.function(*[event for _ in impl.argnames])
            except Exception as err:
                self._observer_failed(impl.plugin_name, err)
        self._log.flush()

    def _observer_failed(self, key: str, err: Exception) -> None:
        provider = self._providers.get(key)
        file = key if provider is not None and provider.is_file else None
        message = f"onward_event observer raised {describe(err, file)}; event not affected"
        if provider is None or provider.info.version in provider.observer_failures:
            # in the provider log once per version, so a bad observer cannot flood it
            logger.warning("provider %s: %s", key, message)
            return
        provider.observer_failures.add(provider.info.version)
        self._log.record(provider.info.name, provider.info.version, "failed", message)

    # ----------------------------------------------------------------- watching

    def is_provider_file(self, path: str | Path) -> bool:
        """True for a path this manager loads: ``*.py`` not starting with ``_`` or ``.``,
        directly in one of its plugin directories."""
        return is_provider_file(Path(path), self._dirs)

    def start_watching(self, *, ready_timeout: float = 5.0) -> None:
        """Reload changed provider files in a background thread (engine/watch.py).

        Waits up to ``ready_timeout`` seconds for the watcher to be in place, so that
        edits made after this returns are seen.
        """
        dirs = [d for d in self._dirs if d.is_dir()]
        if self._watcher is None and dirs:
            self._watcher = FileWatcher(dirs, self._reload_changed, accept=self.is_provider_file,
                                        name="onward-plugin-watcher", on_error=self._watch_failed)
        if self._watcher is not None:  # (again, if it stopped on an error)
            self._watcher.start(ready_timeout=ready_timeout)

    def stop_watching(self) -> None:
        """Stop the watcher thread, if running, and wait briefly for it to end."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _reload_changed(self, paths: list[str]) -> None:
        for path in paths:
            if self._watcher is None or self._watcher.stopping:
                return
            try:
                self.reload_path(path)
            except Exception:
                logger.exception("reloading %s failed", path)

    def _watch_failed(self, err: Exception) -> None:
        self._log.record("watcher", "", "failed",
                         f"watching {', '.join(map(str, self._dirs))} stopped: {err}")
        self._log.flush()


