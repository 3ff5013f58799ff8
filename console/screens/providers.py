"""Activity providers: what is loaded, which versions, and every load, reload and failure."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import DataTable, Footer, Header, Static

from ..widgets.code_banner import CodeBanner
from ..widgets.fitted_table import FittedTable
from ..widgets.format import clock_time
from .live import LiveScreen

ACTION_COLOURS = {"loaded": "text-success", "reloaded": "text-primary", "failed": "text-error",
                  "removed": "text-warning"}


_PATH = re.compile(r"/(?:[^/\s:'\"]+/)+([^/\s:'\"]+/[^/\s:'\"]+\.py)")


def short_paths(text: str) -> str:
    """Absolute paths of Python files in a message, cut to ``folder/file.py``."""
    return _PATH.sub(r"\1", text)


def short_source(source: str) -> str:
    """A provider file as ``folder/file.py`` (entry points and in-process names as given)."""
    path = Path(source)
    if path.suffix == ".py" and len(path.parts) > 2:
        return str(Path(*path.parts[-2:]))
    return source


class ProvidersTable(FittedTable):
    COLUMNS = (("name", "Provider", 16), ("version", "Version", 20), ("state", "State", 16),
               ("activities", "Activities", None), ("loaded", "Loaded", 15))


class ProviderLog(FittedTable):
    COLUMNS = (("time", "Time", 15), ("provider", "Provider", 12), ("version", "Version", 12),
               ("action", "Action", 8), ("message", "Message", None))


class ProvidersScreen(LiveScreen):
    """Providers and their activities; the load/reload log with import errors."""

    AUTO_FOCUS = "ProvidersTable"

    def __init__(self) -> None:
        super().__init__(id="providers")
        self.providers: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield CodeBanner(id="code-banner")
        yield Static("", id="providers-summary")
        yield ProvidersTable(id="providers-table")
        with Horizontal(id="provider-lower"):
            yield Static("", id="provider-detail")
            yield ProviderLog(id="provider-log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Providers"
        self.query_one("#provider-detail", Static).border_title = "Provider"
        self.query_one(ProviderLog).border_title = "Load and reload log (newest first)"
        self.query_one(ProvidersTable).focus()

    def fetch(self, params: dict[str, Any]) -> Any:
        return self.engine.providers(), self.engine.provider_log()

    def show(self, data: Any) -> None:
        providers, log = data
        now = self.now()
        colours = self.colours()
        self.providers = list(providers)
        rows = []
        for p in self.providers:
            if not p.get("error"):
                state = Text("✓ serving", style=colours["text-success"])
            elif p.get("activities") or p.get("workflows"):
                state = Text("⚠ reload failed", style=colours["text-warning"])
            else:
                state = Text("✗ not loaded", style=colours["text-error"])
            rows.append((str(p.get("source")), [
                Text(str(p.get("name")), style="bold", overflow="ellipsis", no_wrap=True),
                Text(str(p.get("version")), overflow="ellipsis", no_wrap=True), state,
                Text(", ".join(p.get("activities") or []) or "—", overflow="ellipsis",
                     no_wrap=True),
                Text(clock_time(p.get("loaded_at"), now))]))
        self.query_one(ProvidersTable).set_rows(rows)
        entries = []
        for entry in reversed(log):
            action = str(entry.get("action"))
            entries.append((None, [
                Text(clock_time(entry.get("time"), now)),
                Text(str(entry.get("provider")), overflow="ellipsis", no_wrap=True),
                Text(str(entry.get("version") or ""), overflow="ellipsis", no_wrap=True),
                Text(action, style=colours.get(ACTION_COLOURS.get(action, ""), "")),
                Text(short_paths(str(entry.get("message") or "")), overflow="ellipsis",
                     no_wrap=True)]))
        self.query_one(ProviderLog).set_rows(entries)
        failing = sum(1 for p in self.providers if p.get("error"))
        summary = Content.assemble((f"{len(self.providers)} provider(s)", "bold"))
        if failing:
            summary += Content.assemble("  ", (f"✗ {failing} with import errors (see the log)",
                                               "$text-error bold"))
        if not self.providers:
            summary += Content.styled("  No providers loaded: pass --plugins DIR.",
                                      "$text-muted")
        summary += Content.styled("  Edit a provider file and it reloads live.",
                                  "$text-muted")
        self.query_one("#providers-summary", Static).update(summary)
        self._show_selected()

    @on(DataTable.RowHighlighted, "#providers-table")
    def _show_selected(self) -> None:
        detail = self.query_one("#provider-detail", Static)
        row = self.query_one(ProvidersTable).cursor_row
        if not self.providers or not 0 <= row < len(self.providers):
            detail.update("")
            return
        p = self.providers[row]
        lines = [Content.assemble((str(p.get("name")), "bold"), f"  version {p.get('version')}"),
                 Content.styled(short_source(str(p.get("source"))), "$text-muted"),
                 Content("")]
        lines.append(Content.styled("Activities", "bold"))
        lines += [Content(f"  {name}") for name in p.get("activities") or []] or [
            Content.styled("  none", "$text-muted")]
        if p.get("workflows"):
            lines.append(Content.styled("Workflows", "bold"))
            lines += [Content(f"  {name}") for name in p["workflows"]]
        if p.get("error"):
            kept = bool(p.get("activities") or p.get("workflows"))
            lines += [Content(""), Content.styled(
                "Import error: the previous version keeps serving" if kept else
                "Import error: nothing from this provider is loaded", "$text-error bold"),
                      Content(short_paths(str(p["error"])))]
        detail.update(Content("\n").join(lines))
