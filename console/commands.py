"""The command palette mirrors the key bindings: every action of the screen you are on."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .screens.help import KEY_NAMES


class ConsoleCommands(Provider):
    """Commands from the active bindings (with ids) plus a screen's ``palette_commands``."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        screen = self.screen
        found: list[tuple[str, str, Callable[[], Any]]] = []
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if (not binding.id or binding.system or not binding.description
                    or not active.enabled or binding.id in seen):
                continue
            seen.add(binding.id)
            shown = binding.key_display or KEY_NAMES.get(key, key)
            help_text = f"key {shown}" + (f" — {binding.tooltip}" if binding.tooltip else "")
            found.append((binding.description, help_text,
                          partial(self.app.run_action, binding.action, active.node)))
        extra = getattr(screen, "palette_commands", None)
        if callable(extra):
            for title, help_text, action in extra():
                found.append((title, help_text, partial(self.app.run_action, action, screen)))
        return found

    async def discover(self) -> Hits:
        for title, help_text, command in self._commands():
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, command in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, help=help_text)
