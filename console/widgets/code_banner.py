"""A line under the header that stays while a code reload is refused: the worker keeps
running the previous code and the file on disk is not what runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.content import Content
from textual.widgets import Static


def describe_refused(refused: dict[str, str]) -> Content:
    """One line per refused reload: which source, and why."""
    lines = []
    for source, why in sorted(refused.items()):
        name = source if source.startswith("provider ") else Path(source).name
        lines.append(Content.assemble(
            ("⚠ Reload refused: ", "bold"), (name, "bold"), f" — {why}. ",
            "The previous code keeps running until the file loads; fix or revert it."))
    return Content("\n").join(lines)


class CodeBanner(Static):
    """Shown while ``OnwardApp.refused_reloads`` is not empty (it follows the app)."""

    DEFAULT_CSS = """
    CodeBanner {
        height: auto;
        max-height: 6;
        padding: 0 1;
        background: $error 25%;
        color: $text;
        display: none;
    }
    CodeBanner.-shown {
        display: block;
    }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "refused_reloads", self.show_refused)

    def show_refused(self, refused: dict[str, str] | Any) -> None:
        """Show the refused reloads, or hide when there are none."""
        refused = dict(refused or {})
        self.set_class(bool(refused), "-shown")
        self.update(describe_refused(refused) if refused else "")
