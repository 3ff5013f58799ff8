"""The code a console's engine runs: flows files and activity providers with versions and
paths, a refused reload (with its reason and the runs it would break) kept in view until
the file loads, and every provider load, reload and failure."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import DataTable, Static

from ..widgets.code_banner import CodeBanner
from ..widgets.fit_footer import StableFooter
from ..widgets.fitted_table import FittedTable
from ..widgets.format import clock_time
from ..widgets.pulse import PulseHeader
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
    COLUMNS = (("name", "Flows / provider", 20), ("version", "Version", 14),
               ("state", "State", 16), ("activities", "Workflows, activities", None),
               ("loaded", "Loaded", 10))


class ProviderLog(FittedTable):
    COLUMNS = (("time", "Time", 15), ("provider", "Provider", 12), ("version", "Version", 12),
               ("action", "Action", 8), ("message", "Message", None))


class ProvidersScreen(LiveScreen):
    """Flows files and providers; the load/reload log with import errors."""

    AUTO_FOCUS = "ProvidersTable"

    def __init__(self) -> None:
        super().__init__(id="providers")
        self.providers: list[dict[str, Any]] = []
        self.flows: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []  # the table's rows: flows, then providers

    def compose(self) -> ComposeResult:
        yield PulseHeader(id="pulse")
        yield CodeBanner(id="code-banner")
        yield Static("", id="providers-summary")
        yield ProvidersTable(id="providers-table")
        with Horizontal(id="provider-lower"):
            yield Static("", id="provider-detail")
            yield ProviderLog(id="provider-log")
        yield StableFooter()

    def on_mount(self) -> None:
        self.sub_title = "Code"
        self.query_one("#provider-detail", Static).border_title = "Details"
        self.query_one(ProviderLog).border_title = "Load and reload log (newest first)"
        self.query_one(ProvidersTable).focus()
        # a refusal's reason can come after the drift it explains: redraw the detail then
        self.watch(self.app, "refused_reloads", self._refusals_changed, init=False)

    def _refusals_changed(self, _refused: dict[str, str]) -> None:
        self._show_selected()

    def fetch(self, params: dict[str, Any]) -> Any:
        return (self.engine.providers(), self.engine.provider_log(), self.engine.flows(),
                self.engine.code_drift())

    def _flows_rows(self, colours: dict[str, str]) -> list[tuple[str, list[Any]]]:
        rows = []
        for f in self.flows:
            drift = f.get("drift")
            if drift:
                on_disk = drift.get("on_disk") or "gone"
                state = Text(f"✗ on disk {on_disk[:6]}…", style=colours["text-error"])
            else:
                state = Text("✓ serving", style=colours["text-success"])
            rows.append((f"flows:{f['source']}", [
                Text(Path(str(f["source"])).name, style="bold", overflow="ellipsis",
                     no_wrap=True),
                Text(str(f.get("version") or "—"), overflow="ellipsis", no_wrap=True), state,
                Text(", ".join(f.get("workflows") or []) or "—", overflow="ellipsis",
                     no_wrap=True),
                Text("")]))
        return rows

    def show(self, data: Any) -> None:
        providers, log, flows, drift = data
        now = self.now()
        colours = self.colours()
        drifted = {str(d["source"]): d for d in drift}
        self.flows = [{**f, "kind": "flows", "drift": drifted.get(str(f["source"]))}
                      for f in flows]
        self.providers = list(providers)
        self.items = self.flows + [{**p, "kind": "provider"} for p in self.providers]
        rows: list[tuple[str, list[Any]]] = self._flows_rows(colours)
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
        summary = Content.assemble((f"{len(self.flows)} flows file(s), "
                                    f"{len(self.providers)} provider(s)", "bold"))
        refused = sum(1 for f in self.flows if f.get("drift"))
        if refused:
            summary += Content.assemble("  ", (f"✗ {refused} not reloaded", "$text-error bold"))
        if failing:
            summary += Content.assemble("  ", (f"✗ {failing} with import errors (see the log)",
                                               "$text-error bold"))
        if not self.providers:
            summary += Content.styled("  No providers: pass --plugins DIR.", "$text-muted")
        summary += Content.styled("  Edits reload live.", "$text-muted")
        self.query_one("#providers-summary", Static).update(summary)
        self._show_selected()

    @on(DataTable.RowHighlighted, "#providers-table")
    def _show_selected(self) -> None:
        detail = self.query_one("#provider-detail", Static)
        row = self.query_one(ProvidersTable).cursor_row
        if not self.items or not 0 <= row < len(self.items):
            detail.update("")
            return
        p = self.items[row]
        if p["kind"] == "flows":
            detail.update(self._flows_detail(p))
            return
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

    def _flows_detail(self, f: dict[str, Any]) -> Content:
        """A flows file: path, version, workflows, activities, and a refused reload with
        its reason (the runs the new code would break) while it stands."""
        lines = [Content.assemble((Path(str(f["source"])).name, "bold"),
                                  f"  version {f.get('version') or '—'}"),
                 Content.styled(short_source(str(f["source"])), "$text-muted"), Content("")]
        drift = f.get("drift")
        if drift:
            on_disk = drift.get("on_disk") or "the file is gone"
            lines.append(Content.styled(f"on disk: {on_disk}, refused; loaded: "
                                        f"{drift.get('loaded')}", "$text-error bold"))
            why = self.onward.refused_reloads.get(str(f["source"]))
            if why:
                lines.append(Content(short_paths(why)))
            lines.append(Content(""))
        for title, names in (("Workflows", f.get("workflows")),
                             ("Activities", f.get("activities"))):
            lines.append(Content.styled(title, "bold"))
            lines += [Content(f"  {name}") for name in names or []] or [
                Content.styled("  none", "$text-muted")]
        return Content("\n").join(lines)
