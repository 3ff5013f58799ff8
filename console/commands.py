"""The command palette mirrors the key bindings: every action of the screen you are on."""

from __future__ import annotations

from collections.abc import Coroutine
from functools import partial
from typing import Any, NamedTuple

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from .screens.help import KEY_NAMES


class PaletteCommand(NamedTuple):
    """One palette entry: run ``action`` on ``node``."""

    title: str
    help: str
    action: str
    node: DOMNode


class ConsoleCommands(Provider):
    """Commands from the active bindings (with ids) plus a screen's ``palette_commands``."""

    def commands(self) -> list[PaletteCommand]:
        """Every command reachable from the screen the palette was opened on: each active
        binding of the console's own (those with an id; widgets' cursor keys have none),
        then the screen's extra commands (filters, sorts, saved views)."""
        screen = self.screen
        found: list[PaletteCommand] = []
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if (not binding.id or binding.system or not binding.description
                    or not active.enabled or binding.id in seen):
                continue
            seen.add(binding.id)
            shown = binding.key_display or KEY_NAMES.get(key, key)
            help_text = f"key {shown}" + (f" — {binding.tooltip}" if binding.tooltip else "")
            found.append(PaletteCommand(binding.description, help_text, binding.action,
                                        active.node))
        extra = getattr(screen, "palette_commands", None)
        if callable(extra):
            for title, help_text, action in extra():
                found.append(PaletteCommand(title, help_text, action, screen))
        return found

    async def discover(self) -> Hits:
        for command in self.commands():
            yield DiscoveryHit(command.title, self._runner(command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self.commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), self._runner(command),
                          help=command.help)

    def _runner(self, command: PaletteCommand) -> partial[Coroutine[Any, Any, bool]]:
        return partial(self.app.run_action, command.action, command.node)
