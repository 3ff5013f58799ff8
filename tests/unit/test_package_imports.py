"""The project is one import package, ``onward``: no code, test, sample or document imports
the folders of the layout (engine, console, plugins, sample_flows) by their folder names,
and the build maps every folder into ``onward``."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

from tests.helpers import REPO

FOLDERS = {"engine", "console", "plugins", "sample_flows"}


def _tracked(*suffixes: str) -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    return [REPO / n for n in names if Path(n).suffix in suffixes and (REPO / n).exists()]


def _folder_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FOLDERS]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in FOLDERS:
                found.append(node.module)
    return found


def test_folder_imports_are_found_by_the_check() -> None:
    assert _folder_imports("import engine\nfrom console.app import X\nfrom onward import Y") \
        == ["engine", "console.app"]


def test_no_python_file_imports_a_layout_folder() -> None:
    offenders = {str(p.relative_to(REPO)): hits for p in _tracked(".py")
                 if (hits := _folder_imports(p.read_text()))}
    assert offenders == {}


def test_no_document_shows_a_layout_folder_import() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(engine|console|plugins|sample_flows)\b",
                         re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for p in _tracked(".md")
                 if pattern.search(p.read_text())]
    assert offenders == []


def test_the_build_maps_every_layout_folder_into_onward() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    assert mapping == {"onward": "engine", "onward.console": "console",
                       "onward.plugins": "plugins", "onward.sample_flows": "sample_flows"}
    # every folder with Python code is listed as a package, so the wheel carries it
    expected = set()
    for package, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            expected.add(".".join((package, *rel)))
    assert set(config["packages"]) == expected
    assert (REPO / "engine" / "py.typed").is_file()
