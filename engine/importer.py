"""Importing one Python file of the user's as a fresh module: the one file importer.

Flows files (``--flows``, engine/registry.py) and provider files (``--plugins``,
engine/providers.py) are both run here: each load gets a module name of its own, so a new
version of a file is a new module beside the old one (which keeps serving until it is
swapped out), and the bytes that run are the bytes the caller read and hashed.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
import threading
from pathlib import Path
from types import ModuleType

PREFIX = "onward_"
"""Every module name :func:`fresh_name` makes starts with this."""

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def fresh_name(kind: str, path: str | Path) -> str:
    """A module name no load has used yet: ``onward_<kind>_<n>_<file stem>``."""
    with _counter_lock:
        number = next(_counter)
    stem = re.sub(r"\W", "_", Path(path).stem)
    return f"{PREFIX}{kind}_{number}_{stem}"


def run_file(path: str | Path, name: str, source: bytes | None = None) -> ModuleType:
    """Run the Python file ``path`` as a new module called ``name`` and return it.

    ``source`` is the file's content if the caller has read it already (what runs is
    then exactly what it read). The module is in ``sys.modules`` while its code runs
    (dataclasses and typing look it up there) and stays there afterwards; on any error
    it is taken out again and the error (raised by the file's code, or ImportError for
    a path that cannot be a module, OSError for an unreadable one) propagates.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ImportError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    data = Path(path).read_bytes() if source is None else source
    sys.modules[name] = module
    try:
        code = compile(data, str(path), "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
