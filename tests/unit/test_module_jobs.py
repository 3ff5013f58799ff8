"""One job per module, for code loading and change notification (issue 15, item 3).

Each engine module is parsed (never imported). A job that must live in one module — the
PostgreSQL LISTEN/NOTIFY feed — is recognised by what only that job needs, and a hit in
any other module names file:line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ENGINE = Path(__file__).parents[2] / "engine"


def _modules() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ENGINE.parent).as_posix()


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _hits(match: Callable[[ast.AST], Iterator[int]], owner: str) -> list[str]:
    """file:line of every match outside ``owner``."""
    found = []
    for path in _modules():
        if _name(path) == owner:
            continue
        for line in match(ast.parse(path.read_text(), str(path))):
            found.append(f"{_name(path)}:{line}")
    return found


_LISTEN_NOTIFY = re.compile(r"\b(?:LISTEN|NOTIFY|UNLISTEN)\s+\{?")


def _listen_notify(tree: ast.AST) -> Iterator[int]:
    for line, text in _strings(tree):
        if _LISTEN_NOTIFY.search(text):
            yield line
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "notifies":
            yield node.lineno


def test_listen_and_notify_live_only_in_the_pg_notify_module() -> None:
    assert _hits(_listen_notify, "engine/store/pg_notify.py") == []




def _file_imports(tree: ast.AST) -> Iterator[int]:
    """Where a module runs a file's code itself: a module spec from a file, or exec()."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("spec_from_file_location",
                                                              "exec_module"):
            yield node.lineno
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "exec"):
            yield node.lineno


def test_flows_and_providers_share_one_file_importer() -> None:
    assert _hits(_file_imports, "engine/importer.py") == []


def _watchfiles(tree: ast.AST) -> Iterator[int]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "watchfiles" for a in node.names):
            yield node.lineno
        if isinstance(node, ast.ImportFrom) and node.module == "watchfiles":
            yield node.lineno


def test_providers_and_flows_share_one_file_watcher() -> None:
    assert _hits(_watchfiles, "engine/watch.py") == []


CODE_LOADING = ["engine/registry.py", "engine/flows.py", "engine/sources.py",
                "engine/providers.py", "engine/plugin_load.py", "engine/importer.py",
                "engine/watch.py", "engine/reload.py", "engine/store/base.py",
                "engine/store/postgres.py", "engine/store/pg_notify.py",
                "engine/store/pg_connect.py", "engine/provider_log.py"]


@pytest.mark.parametrize("module", CODE_LOADING)
def test_code_loading_modules_say_their_job_in_under_400_lines(module: str) -> None:
    text = (ENGINE.parent / module).read_text()
    assert ast.get_docstring(ast.parse(text)), f"{module} opens with no docstring"
    assert len(text.splitlines()) <= 400, module


@pytest.mark.parametrize("module", CODE_LOADING)
def test_code_loading_modules_import_at_the_top_only(module: str) -> None:
    """An import inside a function hides a cycle (registry <-> plugins was one)."""
    tree = ast.parse((ENGINE.parent / module).read_text())
    hidden = [f"{module}:{node.lineno}"
              for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
              for node in ast.walk(fn) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert hidden == []
