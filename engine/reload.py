"""Live code reload for a running worker: providers swap themselves; flows are checked first.

A changed flows module is loaded afresh and swapped in only after the runs in flight that
use it replay cleanly against the new code. If any would break, the old code keeps
serving and the runs are named. Stuck runs are retried after a successful reload.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInput
from .flows import FlowsModule, import_file
from .provider_log import ProviderLogEntry
from .repair import ReplayResult, replay_one
from .store import runs
from .watch import FileWatcher

if TYPE_CHECKING:
    from .client import Engine
    from .worker import Worker

log = logging.getLogger("onward.reload")

FLOWS_DEBOUNCE_MS = 200


def reload_flows_file(engine: Engine, path: str) -> tuple[bool, str]:
    """Reload the flows modules loaded from ``path`` (their own file or a module of the
    user's they import), each after a replay check; (all swapped, message)."""
    return reload_flows_files(engine, [path])


def reload_flows_files(engine: Engine, paths: Iterable[str]) -> tuple[bool, str]:
    """Reload, together, every flows module loaded from any of ``paths``: all are swapped
    in, or (one fails to load, offers another source's name or would break a running run)
    none is and the previous code keeps serving; (swapped, message)."""
    changed = {os.path.realpath(p) for p in paths}
    affected = [f for f in engine.registry.flows if changed & set(f.files)]
    if not affected:
        return False, f"{', '.join(sorted(changed))} is not a loaded flows module"
    loaded: list[FlowsModule] = []
    try:
        for old in affected:
            loaded.append(old.reload())
    except BadInput as err:
        _put_back(loaded)
        return False, f"kept the previous code: {err}"
    with engine.registry.sources_lock():
        problem = engine.registry.clash_of(loaded, replacing=affected)
        broken = [] if problem else _would_break(engine, affected, loaded)
        if problem or broken:
            _put_back(loaded)
            return False, ("kept the previous code: "
                           + (problem or "the new code would break " + "; ".join(broken[:10])))
        with engine.advance_lock:  # the worker's cached instances run the old code: drop them
            for old, new in zip(affected, loaded, strict=True):
                engine.registry.replace_flows(old, new)
            engine.cache.clear()
    return True, "reloaded " + ", ".join(f"{Path(new.source).name} (version {new.version})"
                                         for new in loaded)


def _put_back(loaded: list[FlowsModule]) -> None:
    for new in reversed(loaded):  # the earliest reload displaced the modules that served
        new.put_back()


def _would_break(engine: Engine, olds: list[FlowsModule], news: list[FlowsModule]
                 ) -> list[str]:
    """The running runs of the old modules' workflows that the new ones could not replay."""
    workflows = {name: wf for new in news for name, wf in new.workflows.items()}
    names = {name for old in olds for name in old.workflows} | set(workflows)
    broken = []
    with engine.store.read() as tx:
        for run in runs.running_runs_of(tx, sorted(names)):
            definition = workflows.get(run.workflow)
            if definition is None:
                broken.append(f"{run.workflow_id} (workflow {run.workflow} removed)")
                continue
            events = runs.load_events(tx, run.run_id)
            result = replay_one(engine.runtime, run, events, definition)
            if result.ok is False and not run.stuck:
                broken.append(f"{run.workflow_id} ({result.error})")
    return broken


class CodeWatcher:
    """Watches flows files and plugin folders of an engine in a background thread."""

    def __init__(self, engine: Engine, worker: Worker | None,
                 notify: Callable[[str, bool], None] | None = None) -> None:
        self.engine = engine
        self.worker = worker
        self.notify = notify or (lambda message, ok: log.log(
            logging.INFO if ok else logging.WARNING, message))
        paths = sorted({file for f in engine.registry.flows for file in f.files})
        self._contents = {path: _digest(path) for path in paths}
        """What each watched file held when last looked at (None: unreadable)."""
        self._flows = FileWatcher(paths, self._on_flows, accept=_is_python_file,
                                  name="onward-flows-watch", debounce_ms=FLOWS_DEBOUNCE_MS)

    def start(self) -> CodeWatcher:
        """Start watching the provider folders and the flows files."""
        providers = self.engine.registry.providers
        if providers is not None:
            providers.add_listener(self._on_provider)
            providers.start_watching()
        self._flows.start(ready_timeout=0)  # as before: a worker does not wait for it
        return self

    def _on_provider(self, entry: ProviderLogEntry) -> None:
        ok = entry.action != "failed"
        try:
            self.engine.record_provider_event(
                entry, self.worker.worker_id if self.worker is not None else None)
        except Exception as err:  # noqa: BLE001 - the log is a convenience, never fatal
            log.warning("could not record provider event: %s", err)
        self.notify(f"provider {entry.provider} {entry.action} "
                    f"({entry.version}) {entry.message}".strip(), ok)
        if ok and self.worker is not None:
            self.worker.retry_stuck_runs()

    def _on_flows(self, changed: list[str]) -> None:
        fresh = [path for path in changed if self._content_changed(path)]
        if not fresh:  # touched, or saved again as it was
            log.debug("%s changed on disk but holds the code loaded: nothing to reload",
                      ", ".join(changed))
            return
        ok, message = reload_flows_files(self.engine, fresh)
        self.notify(message, ok)
        if ok and self.worker is not None:
            self.worker.retry_stuck_runs()

    def _content_changed(self, path: str) -> bool:
        """Whether ``path`` holds other bytes than when last looked at. An editor's one
        save can reach the watcher as two batches of changes (a new file renamed into
        place, then its attributes; or the old file deleted, then the new one created):
        the second finds the content it already reloaded, and one edit reloads once."""
        real = os.path.realpath(path)
        digest = _digest(real)
        if real in self._contents and self._contents[real] == digest:
            return False
        self._contents[real] = digest
        return True

    def stop(self) -> None:
        """Stop watching."""
        self._flows.stop()
        providers = self.engine.registry.providers
        if providers is not None:
            providers.remove_listener(self._on_provider)
            providers.stop_watching()


def _digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _is_python_file(path: str) -> bool:
    return path.endswith(".py") and Path(path).exists()


def watch_code(engine: Engine, worker: Worker | None,
               notify: Callable[[str, bool], None] | None = None) -> CodeWatcher:
    """Start watching the engine's flows and providers for changes."""
    return CodeWatcher(engine, worker, notify).start()


def replay_on_disk(engine: Engine, ident: str) -> dict[str, Any]:
    """Replay ``ident``'s run against its workflow's code as it is on disk now.

    The loaded code may differ from the file (a reload refused because the new code would
    break running work): this answers for the file, loaded afresh and not swapped in.
    A workflow that comes from no flows file (a provider) is checked against the loaded
    code. The report is ``Engine.replay``'s, plus ``code``: ``source`` (the file, or the
    provider), ``loaded`` and ``on_disk`` (versions: sha256 prefixes; ``on_disk`` None
    when no file was read).
    """
    with engine.store.read() as tx:
        run = engine.runtime.find_run(tx, ident)
        events = runs.load_events(tx, run.run_id)
    old = next((f for f in engine.registry.flows
                if f.path and run.workflow in f.workflows), None)
    if old is None:
        loaded = engine.registry.workflow(run.workflow)
        report = replay_one(engine.runtime, run, events).to_json()
        report["code"] = {"source": loaded.provider if loaded is not None else "",
                          "loaded": "", "on_disk": None}
        return report
    code: dict[str, Any] = {"source": old.path, "loaded": old.version, "on_disk": None}
    result = ReplayResult(run.workflow_id, run.run_id, run.workflow, run.status, False)
    try:
        new = _from_disk(old)
    except BadInput as err:
        result.error = f"the file on disk does not load: {err}"
    else:
        code["on_disk"] = new.version
        definition = new.workflows.get(run.workflow)
        if definition is None:
            result.error = f"the file on disk no longer defines workflow {run.workflow}"
        else:
            result = replay_one(engine.runtime, run, events, definition)
    report = result.to_json()
    report["code"] = code
    return report


def _from_disk(old: FlowsModule) -> FlowsModule:
    """``old``'s file loaded afresh, for a check only: nothing is swapped in."""
    assert old.path is not None
    return FlowsModule(old.spec, import_file(old.path), old.path)


def code_drift(engine: Engine) -> list[dict[str, Any]]:
    """Flows files whose content on disk is not the code loaded: a reload refused (or not
    yet made). One ``{"source", "loaded", "on_disk"}`` each (versions as in FlowsModule:
    sha256 prefixes; ``on_disk`` None for a file that is gone)."""
    drift = []
    for flows in engine.registry.flows:
        if not flows.path:
            continue
        try:
            on_disk: str | None = hashlib.sha256(Path(flows.path).read_bytes()).hexdigest()
        except OSError:
            on_disk = None
        if on_disk is None or on_disk[:len(flows.version)] != flows.version:
            drift.append({"source": flows.path, "loaded": flows.version,
                          "on_disk": on_disk[:len(flows.version) or 10] if on_disk else None})
    return drift
