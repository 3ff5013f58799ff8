"""MkDocs hooks for Onward's documentation (named under ``hooks:`` in mkdocs.yml).

Two jobs, both done at build time so the site cannot drift from the code:

* **The package tree for mkdocstrings.** The editable install maps engine/ → ``onward``
  through an import hook that griffe need not understand, so before the build the hook lays
  the folders out as the wheel does, as symlinks (``tools/typecheck.py``'s ``link_tree``), in
  ``$ONWARD_DOCS_SRC`` (default build/docs-src), the path mkdocs.yml gives the python handler.
* **The CLI reference.** A page containing the line ``<!-- onward-cli-reference -->`` gets,
  in its place, the ``--help`` of ``onward`` and of every subcommand, rendered from
  ``onward.cli.build_parser()`` (the only thing this hook imports from the package).

It also puts the repository's CHANGELOG.md where a page says ``<!-- onward-changelog -->``
(mkdocs reads pages only from docs/).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typecheck import REPO, link_tree  # noqa: E402 - tools/ is not a package

MARKER = "<!-- onward-cli-reference -->"
CHANGELOG_MARKER = "<!-- onward-changelog -->"
WIDTH = "88"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def source_tree() -> Path:
    """Where the package tree for griffe goes (mkdocs.yml reads the same variable)."""
    return Path(os.environ.get("ONWARD_DOCS_SRC", REPO / "build" / "docs-src"))


@event_priority(100)  # before mkdocstrings' own on_config, which looks for the paths
def on_config(config: Any) -> Any:
    """Lay out the package tree before mkdocstrings first looks for ``onward``."""
    link_tree(source_tree())
    return config


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
             ) -> Iterator[tuple[tuple[str, ...], str, argparse.ArgumentParser]]:
    """Every (sub)command below ``parser``, depth first in the parser's order, as
    (words after ``onward``, one-line help, parser)."""
    for action in parser._actions:  # argparse keeps its subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                words = (*path, name)
                yield words, helps.get(name, ""), sub
                yield from commands(sub, words)


def _help_text(parser: argparse.ArgumentParser) -> str:
    """``parser.format_help()`` at a fixed width, without colour codes."""
    saved = {key: os.environ.get(key) for key in ("COLUMNS", "NO_COLOR", "TERM")}
    os.environ.update(COLUMNS=WIDTH, NO_COLOR="1", TERM="dumb")
    try:
        text = parser.format_help()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return _ANSI.sub("", text).rstrip()


def cli_reference() -> str:
    """Markdown for the whole command line: ``onward --help``, then each subcommand."""
    from onward.cli import build_parser

    parser = build_parser()
    parts = ["## onward", "", "```text", _help_text(parser), "```", ""]
    for words, summary, sub in commands(parser):
        title = " ".join(("onward", *words))
        parts += [f"## {title}", ""]
        if summary:
            line = " ".join(summary.split()).rstrip(".")
            parts += [line[:1].upper() + line[1:] + ".", ""]
        parts += ["```text", _help_text(sub), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Put the generated CLI reference and the changelog where a page asks for them."""
    if CHANGELOG_MARKER in markdown:
        markdown = markdown.replace(CHANGELOG_MARKER, (REPO / "CHANGELOG.md").read_text())
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_reference())
    return markdown
