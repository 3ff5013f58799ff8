"""Type-check the installed shape of the package: ``python tools/typecheck.py``.

mypy reads files, not the editable install's import hook, so the folders of the design
card (engine/ → onward, console/ → onward.console, ...) are laid out as the wheel lays them
out, as symlinks in build/typecheck/, and mypy checks that tree with pyproject's settings.
Extra arguments go to mypy (default: the whole package).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TREE = REPO / "build" / "typecheck"


def link_tree(root: Path = TREE) -> Path:
    """Mirror package-dir's mapping from pyproject.toml as symlinks under ``root`` (default
    build/typecheck; the docs build uses its own folder); return the root."""
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    shutil.rmtree(root, ignore_errors=True)
    for package, folder in sorted(mapping.items()):
        target = root.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in (REPO / folder).iterdir():
            if entry.name != "__pycache__" and not (target / entry.name).exists():
                (target / entry.name).symlink_to(entry)
    return root


def main(argv: list[str]) -> int:
    root = link_tree()
    args = argv or ["-p", "onward"]
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
               *args]
    return subprocess.run(command, cwd=root, env={"MYPYPATH": str(root),
                                                  "PATH": "/usr/bin:/bin"}).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
