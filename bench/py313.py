"""A Python >= 3.13 venv with dura and this Onward checkout, for the ``dura`` section.

The interpreter is searched for (this one, ``python3.13``/``python3.14``/... on PATH,
pyenv's versions, the usual install prefixes); the venv is built under the bench's scratch
folder and kept between runs (rebuilt when the interpreter, the dura requirement or
pyproject.toml change). Everything runs through subprocesses.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .common import REPO, SCRATCH

MINIMUM = (3, 13)
DURA = "dura>=1.3,<1.4"
_PROBE = "import sys, venv; print('%d.%d.%d' % sys.version_info[:3])"


def _candidates() -> list[str]:
    """Interpreter paths worth asking, most likely first (duplicates removed later)."""
    found = [sys.executable]
    for minor in range(13, 20):
        path = shutil.which(f"python3.{minor}")
        if path:
            found.append(path)
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv"), "/root/.pyenv"]
    for root in filter(None, roots):
        found += sorted(glob.glob(os.path.join(root, "versions", "3.1[3-9]*", "bin",
                                               "python3")))
    for prefix in ("/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"):
        found += sorted(glob.glob(os.path.join(prefix, "python3.1[3-9]")))
    for name in ("python3", "python"):
        path = shutil.which(name)
        if path:
            found.append(path)
    return found


def _version(python: str) -> tuple[int, ...] | None:
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    try:
        return tuple(int(x) for x in done.stdout.strip().split("."))
    except ValueError:
        return None


def find_python() -> tuple[str, str] | None:
    """(path, version) of the oldest Python >= 3.13 found here (with ``venv``), or None."""
    seen: set[str] = set()
    best: tuple[tuple[int, ...], str] | None = None
    for path in _candidates():
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        version = _version(path)
        if version is not None and version[:2] >= MINIMUM and (best is None
                                                                or version < best[0]):
            best = (version, path)
    if best is None:
        return None
    return best[1], ".".join(map(str, best[0]))


def _stamp(python: str, version: str) -> str:
    pyproject = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return json.dumps({"python": python, "version": version, "dura": DURA,
                       "pyproject": pyproject}, sort_keys=True)


def venv_python() -> tuple[Path | None, str]:
    """The cached venv's interpreter (built now if needed), or None and why not."""
    found = find_python()
    if found is None:
        return None, (f"no Python >= {MINIMUM[0]}.{MINIMUM[1]} found (PATH, pyenv, /usr, "
                      "/usr/local); dura needs one")
    python, version = found
    home = SCRATCH / f"venv-py{version.rsplit('.', 1)[0]}-dura"
    exe = home / "bin" / "python"
    stamp = home / ".onward-bench-stamp"
    want = _stamp(python, version)
    if exe.exists() and stamp.exists() and stamp.read_text() == want:
        return exe, f"Python {version} ({python}), cached venv {home}"
    shutil.rmtree(home, ignore_errors=True)
    steps = [[python, "-m", "venv", str(home)],
             [str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check", DURA,
              "-e", str(REPO)]]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as err:
            return None, f"building a venv with {python} failed: {err}"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            return None, f"`{' '.join(step[:4])} …` failed: {last}"
    stamp.write_text(want)
    return exe, f"Python {version} ({python}), venv built in {home}"
