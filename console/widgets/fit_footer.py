"""A footer that shows whole labels: keys that do not fit the width are left out (they stay
in the help screen and the command palette) instead of being cut mid-word."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_ROOM = 14  # cells the command palette key takes at the right edge
GAP = 2  # cells between two keys in the compact footer


class FitFooter(Footer):
    """``Footer(compact=True)`` that drops the keys that would not fit, last first."""

    def __init__(self) -> None:
        super().__init__(compact=True)
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

