"""Flows modules: loading the user's ``--flows`` files, folders and modules, and again.

:func:`load_flows` turns one ``--flows`` spec into :class:`FlowsModule` objects, each the
workflows and activities one module exposes (its own and those it imports from the user's
other modules) and how to load it afresh for a hot reload. Files run through the one file
importer (engine/importer.py); what the engine serves is engine/registry.py's business.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import os
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from .activity import ActivityDefinition
from .activity import definition_of as activity_definition_of
from .errors import BadInput
from .importer import PREFIX, fresh_name, run_file
from .sources import origin, same_definition
from .workflow import WorkflowDefinition
from .workflow import definition_of as workflow_definition_of

__all__ = ["FlowsModule", "import_file", "load_flows"]


def _where(err: BaseException, path: str) -> str:
    """``file:line`` of the innermost frame of ``err`` inside ``path`` (or the file)."""
    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}"
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if os.path.abspath(f.filename).startswith(os.path.abspath(path))]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    return path


ENGINE_DIR = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    """Where installed libraries and the standard library live (not the user's code)."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = {os.path.realpath(p) for p in (sysconfig.get_path(n) for n in names) if p}
    return tuple(sorted(paths | {ENGINE_DIR}))


def _is_users_file(file: str | None) -> bool:
    """True for a Python file of the user's: not the standard library, an installed
    package or the engine itself."""
    if not isinstance(file, str) or not file.endswith(".py"):
        return False
    real = os.path.realpath(file)
    return not any(real == d or real.startswith(d + os.sep) for d in _library_dirs())


def _file_version(file: str | None, cache: dict[str, str]) -> str:
    if not file:
        return ""
    if file not in cache:
        try:
            cache[file] = hashlib.sha256(Path(file).read_bytes()).hexdigest()[:10]
        except OSError:
            cache[file] = ""
    return cache[file]


class FlowsModule:
    """One loaded flows module: the workflows and activities it exposes (its own and those
    it imports from the user's other modules), and how to load it afresh."""

    def __init__(self, spec: str, module: ModuleType, path: str | None, *,
                 deps: Iterable[str] = (), loader: Callable[[], FlowsModule] | None = None
                 ) -> None:
        self.spec = spec
        self.module = module
        self.path = path
        self.source = path or spec
        """How messages name this source."""
        versions: dict[str, str] = {}
        self.version = _file_version(path, versions) if path and os.path.isfile(path) else ""
        self.workflows: dict[str, WorkflowDefinition] = {}
        self.activities: dict[str, ActivityDefinition] = {}
        self.displaced: dict[str, ModuleType] = {}
        """Modules this load took out of ``sys.modules`` (see :meth:`put_back`)."""
        self._loader = loader
        defining: set[str] = set()
        for value in self._exposed():
            wf = workflow_definition_of(value)
            act = activity_definition_of(value)
            if (wf is None and act is None) or not self._exposes(value):
                continue
            where = origin(value)
            file = where[0] if where else path
            own = getattr(value, "__module__", None) == module.__name__
            provider = (Path(path).stem if path else spec) if own else Path(file or spec).stem
            defining.add(getattr(value, "__module__", "") or "")
            if wf is not None:
                self._add(self.workflows, "workflow", dataclasses.replace(wf, provider=provider))
            if act is not None:
                self._add(self.activities, "activity", dataclasses.replace(
                    act, provider=provider,
                    provider_version=_file_version(file, versions) or self.version))
        self.modules = sorted({*deps, *(m for m in defining if m != module.__name__
                                         and _is_users_file(_module_file(m)))})
        """The user's modules this one was loaded with: reloaded with it."""
        files = [_module_file(m) for m in [*self.modules, module.__name__]]
        self.files: list[str] = sorted(
            {os.path.realpath(f) for f in files if f is not None and _is_users_file(f)}
            | ({os.path.realpath(path)} if path else set()))
        """Every file whose change reloads this module (its own and its user modules)."""

    def _exposed(self) -> list[Any]:
        """The module's values, and those of the user's modules it imports whole
        (``import activities`` exposes what ``activities`` defines)."""
        values = list(vars(self.module).values())
        for value in list(values):
            if (isinstance(value, ModuleType) and value is not self.module
                    and _is_users_file(getattr(value, "__file__", None))):
                values += [v for v in vars(value).values()
                           if getattr(v, "__module__", None) == value.__name__]
        return values

    def _exposes(self, value: Any) -> bool:
        """Own definitions, and those imported from the user's modules (not libraries)."""
        name = getattr(value, "__module__", None)
        if name == self.module.__name__:
            return True
        if not isinstance(name, str):
            return False
        mine = self.module.__name__.split(".")[0]
        if "." in self.module.__name__ and name.split(".")[0] == mine:
            return True  # from the flows module's own package
        return _is_users_file(_module_file(name))

    def _add(self, table: dict[str, Any], kind: str, definition: Any) -> None:
        known = table.get(definition.name)
        if known is not None and not same_definition(known, definition):
            raise BadInput(f"--flows {self.source}: {kind} {definition.name!r} is offered "
                           f"twice ({_label(known.fn)} and {_label(definition.fn)})")
        table.setdefault(definition.name, definition)

    def reload(self) -> FlowsModule:
        """Load this module again from its files, with the user's modules it imported;
        BadInput (with ``sys.modules`` as it was) if the new code does not load."""
        if self._loader is None:
            raise BadInput(f"--flows {self.source}: cannot be reloaded")
        for file in self.files:  # its cached bytecode may look fresh after a quick edit
            with contextlib.suppress(OSError, ValueError):
                os.remove(importlib.util.cache_from_source(file))
        saved = {m: sys.modules.pop(m) for m in [*self.modules, self.module.__name__]
                 if m in sys.modules}
        try:
            new = self._loader()
        except BaseException:
            sys.modules.update(saved)
            raise
        new.displaced = saved
        return new

    def put_back(self) -> None:
        """Undo :meth:`reload`'s effect on ``sys.modules`` (the reload was refused)."""
        sys.modules.update(self.displaced)
        self.displaced = {}


def _module_file(name: str) -> str | None:
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    return file if isinstance(file, str) else None


def _label(fn: Any) -> str:
    where = origin(fn)
    return f"{where[1]} in {where[0]}" if where else repr(fn)


def import_file(path: str) -> ModuleType:
    """Import a flows file as a fresh module (its folder on ``sys.path``, so its sibling
    modules import as they would beside a script); BadInput naming file and line if it
    fails."""
    folder = str(Path(path).resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
    try:
        return run_file(path, fresh_name("flows", path))
    except BaseException as err:
        raise BadInput(f"--flows {path}: {type(err).__name__}: {err} "
                       f"(at {_where(err, path)})") from None


def _new_users_modules(before: set[str]) -> list[str]:
    """Modules of the user's imported since ``before`` was taken."""
    return [m for m in list(sys.modules) if m not in before
            and not m.startswith((f"{PREFIX}flows_", f"{PREFIX}provider_"))
            and _is_users_file(_module_file(m))]


def _package_name(file: Path) -> tuple[str, Path] | None:
    """(dotted module name, folder to import it from) for a file inside a package."""
    parts = [file.stem]
    folder = file.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return (".".join(parts), folder) if len(parts) > 1 else None


def _load_file(spec: str, file: Path) -> FlowsModule:
    """Load one flows file: by its dotted name inside a package (relative imports work),
    else as a fresh module of its own with its folder on ``sys.path``."""
    resolved = file.resolve()
    package = _package_name(resolved)
    if package is not None:
        name, root = package
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        return _load_module(spec, name, str(file))
    before = set(sys.modules)
    module = import_file(str(file))
    return FlowsModule(spec, module, str(file), deps=_new_users_modules(before),
                       loader=lambda: _load_file(spec, file))


def _load_module(spec: str, name: str, path: str | None) -> FlowsModule:
    before = set(sys.modules)
    module = _import_module(name, path)
    return FlowsModule(spec, module, path, deps=_new_users_modules(before),
                       loader=lambda: _load_module(spec, name, path))


def load_flows(spec: str) -> list[FlowsModule]:
    """Load a flows spec: a module file, a folder (package or plain) or a dotted module."""
    path = Path(spec)
    if path.is_file():
        return [_load_file(spec, path)]
    if path.is_dir():
        files = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        return [_load_file(spec, file) for file in files]
    if spec.endswith(".py") or os.sep in spec:
        raise BadInput(f"--flows {spec}: no such file or folder")
    return [_load_module(spec, spec, None)]


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
