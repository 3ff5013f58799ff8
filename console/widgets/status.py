"""Status badges and theme-aware colours for Rich cells (DataTable renders Rich, not CSS)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App
from textual.content import Content

from .format import EVENT_COLOURS, STATUS_LOOK, run_look

_FALLBACK = {
    "text-success": "green", "text-error": "red", "text-warning": "yellow",
    "text-primary": "blue", "text-secondary": "cyan", "text-accent": "magenta",
}


def theme_colours(app: App[Any]) -> dict[str, str]:
    """The theme's text colours as concrete colours (re-read after a theme change)."""
    variables = app.theme_variables
    return {name: variables.get(name) or fallback for name, fallback in _FALLBACK.items()}


def status_text(run: dict[str, Any], colours: dict[str, str]) -> Text:
    """A run's status as a coloured ``● running`` cell."""
    symbol, label, var = run_look(run)
    return Text(f"{symbol} {label}", style=f"bold {colours.get(var, '')}".strip(), end="")


def event_type_text(kind: str, colours: dict[str, str]) -> Text:
    """An event type coloured by what it means (failures red, completions green, ...)."""
    var = EVENT_COLOURS.get(kind)
    return Text(kind, style=colours.get(var, "") if var else "", end="")


def status_content(run: dict[str, Any]) -> Content:
    """A run's status as Content for Static widgets (theme variables resolve at render)."""
    symbol, label, var = run_look(run)
    return Content.assemble((f"{symbol} {label}", f"bold ${var}"))


def filter_content(name: str, count: int, *, active: bool) -> Content:
    """One ``⚠ stuck 2`` entry of the counts bar (reversed when it is the active filter)."""
    symbol, label, var = STATUS_LOOK[name]
    style = f"${var}" if count else "$text-muted"
    if active:
        style += " reverse"
    return Content.assemble((f"{symbol} {label} {count}", style))
