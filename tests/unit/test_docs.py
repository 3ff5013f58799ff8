"""The documentation site builds with ``mkdocs build --strict`` (warnings are errors), and
its generated pages say what the code says: every subcommand's ``--help`` in the CLI
reference, the public API in the API reference, the changelog on its page."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


def _missing() -> list[str]:
    """The documentation tools that are not installed."""
    missing = []
    for name in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


MISSING = _missing()

pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not installed: the docs need the `docs` "
    "dependency group (pip install --group docs)")


def _hooks() -> object:
    """tools/docs_hooks.py, the module mkdocs.yml names under ``hooks:``."""
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "tools" / "docs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for this module into a temporary folder."""
    root = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(REPO / "mkdocs.yml"), "--site-dir", str(root / "site")],
        cwd=REPO, env={**os.environ, "ONWARD_DOCS_SRC": str(root / "src")},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    return root / "site"


def _page(site: Path, name: str) -> str:
    return html.unescape((site / name / "index.html").read_text())


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    for page in ("tutorial", "concepts/replay", "concepts/patching", "concepts/repair",
                 "concepts/manual-tasks", "concepts/providers", "concepts/guarantees",
                 "reference/cli", "reference/api", "architecture", "changelog"):
        assert (site / page / "index.html").is_file(), page
    assert "pip install onward" in (site / "index.html").read_text()


def test_cli_reference_has_every_subcommands_help(site: Path) -> None:
    from onward.cli import build_parser

    hooks = _hooks()
    page = _page(site, "reference/cli")
    found = list(hooks.commands(build_parser()))  # type: ignore[attr-defined]
    names = {" ".join(words) for words, _, _ in found}
    assert {"worker", "start", "show", "retry", "reset", "task complete"} <= names
    for words, _, parser in found:
        title = " ".join(("onward", *words))
        assert f"{title}¶" in page or f">{title}<" in page, f"no section for {title}"
        usage = re.sub(r"\x1b\[[0-9;]*m", "", parser.format_usage()).split()
        assert " ".join(usage[1:4]) in " ".join(page.split()), f"no usage of {title}"
    assert "--concurrency" in page and "--discard-completed" in page


def test_api_reference_documents_the_public_names(site: Path) -> None:
    page = _page(site, "reference/api")
    for name in ("Engine", "RunHandle", "execute_activity", "manual_task", "patched",
                 "RetryPolicy", "hookimpl", "onward_activities", "ApplicationError",
                 "WorkflowFailed", "NonDeterminismError"):
        assert name in page, name
    # docstrings, not just names: the text of Engine.start's docstring is on the page
    assert "an id runs once" in page.lower()


def test_changelog_page_is_the_repository_changelog(site: Path) -> None:
    page = _page(site, "changelog")
    first = next(line for line in (REPO / "CHANGELOG.md").read_text().splitlines()
                 if line.startswith("## ["))
    assert first.removeprefix("## ").split(" - ")[0].strip("[]") in page
