"""Footers that redraw only when the keys they show change: ``StableFooter`` skips the
rebuild Textual's footer does on every focus move when the shown bindings are the same, and
``FitFooter`` also shows whole labels, leaving out the keys that do not fit the width (they
stay in the help screen and the command palette) instead of cutting them mid-word."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_ROOM = 14  # cells the command palette key takes at the right edge
GAP = 2  # cells between two keys in the compact footer


def shown_bindings(screen: Screen[Any]) -> tuple[tuple[Any, ...], ...]:
    """What a footer on ``screen`` would show: key, action, label, enabled, tooltip."""
    return tuple((binding.key, binding.action, binding.description, enabled, tooltip)
                 for _node, binding, enabled, tooltip in screen.active_bindings.values()
                 if binding.show)


class StableFooter(Footer):
    """A compact ``Footer`` that is rebuilt only when the bindings it shows changed.

    Textual rebuilds the footer (removes and mounts every key) whenever the focus moves;
    moving between widgets that show the same keys then costs a layout for nothing.
    """

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._shown: tuple[tuple[Any, ...], ...] | None = None

    def compose(self) -> ComposeResult:
        if not self._bindings_ready and self.is_attached:
            # The screen's keys are known once the footer is mounted: show them now rather
            # than compose an empty footer and rebuild it when they are first announced.
            self.set_reactive(Footer._bindings_ready, True)
        if self._bindings_ready:
            self._shown = shown_bindings(self.screen)
        yield from super().compose()

    def bindings_changed(self, screen: Screen[Any]) -> None:
        shown = shown_bindings(screen)
        if self._bindings_ready and screen is self.screen and shown == self._shown:
            return  # the same keys, or a rebuild that will show them is already asked for
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._shown = shown  # Footer asks for a rebuild: later calls need not ask again
        super().bindings_changed(screen)


class FitFooter(StableFooter):
    """A ``StableFooter`` that drops the keys that would not fit, last first."""

    def __init__(self) -> None:
        super().__init__()
        self._laid_out_for = -1
        self.shown_keys: list[str] = []  # the key labels shown, for tests

    def compose(self) -> ComposeResult:
        room = (self.size.width or self.app.size.width) - PALETTE_ROOM
        used = 0
        self.shown_keys = []
        for widget in super().compose():
            if isinstance(widget, FooterKey) and "-command-palette" not in widget.classes:
                width = len(widget.key_display) + len(widget.description) + GAP
                if used + width > room:
                    continue
                used += width
                self.shown_keys.append(widget.description)
            yield widget
        self.styles.grid_size_columns = max(1, len(self.shown_keys))

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._laid_out_for:
            self._laid_out_for = event.size.width
            self.call_after_refresh(self.recompose)
