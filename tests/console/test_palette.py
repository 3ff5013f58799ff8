"""Every action is in the command palette: each binding of every screen (and of the app)
has a palette command on that screen, so a binding added without one fails here."""

from __future__ import annotations

from typing import Any

import pytest
from textual.binding import Binding
from textual.command import CommandList, CommandPalette
from textual.screen import Screen

from onward.console.app import OnwardApp
from onward.console.commands import ConsoleCommands
from onward.console.screens.help import HelpScreen
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.screens.workers import WorkersScreen

from .conftest import wait_for

pytestmark = pytest.mark.anyio


def own_bindings(cls: type[Any]) -> list[Binding]:
    """The bindings a console class declares, its console base classes' included (Textual's
    own, such as tab and ctrl+q, are Textual's business)."""
    found = []
    for klass in cls.__mro__:
        if klass.__module__.startswith("onward.console"):
            for binding in klass.__dict__.get("BINDINGS", []):
                assert isinstance(binding, Binding), f"{klass.__name__}: {binding!r} is " \
                    "not a Binding (give it an id and a description)"
                found.append(binding)
    return found


def missing_commands(screen: Screen[Any], bindings: list[Binding]) -> list[str]:
    """The bindings with no palette command on ``screen`` (by action and node)."""
    offered = {(c.action, c.node) for c in ConsoleCommands(screen).commands()}
    missing = []
    for binding in bindings:
        node = screen.app if binding in OnwardApp.BINDINGS else screen
        if not (binding.id and binding.description) or (binding.action, node) not in offered:
            missing.append(f"{type(screen).__name__}: key {binding.key} "
                           f"({binding.action}, id {binding.id})")
    return missing


async def test_every_binding_of_every_screen_is_a_palette_command(story: Any) -> None:
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    screens: list[type[Screen[Any]]] = [*OnwardApp.MODES.values(), RunDetailScreen]
    missing: list[str] = []
    async with app.run_test(size=(160, 45)) as pilot:
        for mode, cls in OnwardApp.MODES.items():
            app.switch_mode(mode)
            screen = await wait_for(pilot, lambda c=cls: isinstance(app.screen, c)
                                    and app.screen.loads >= 1 and app.screen, mode)
            missing += missing_commands(screen, own_bindings(cls) + own_bindings(OnwardApp))
        app.switch_mode("runs")
        await app.push_screen(RunDetailScreen("charge-3"))
        detail = await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen)
                                and app.screen.loads >= 1 and app.screen, "the run")
        missing += missing_commands(detail, own_bindings(RunDetailScreen)
                                    + own_bindings(OnwardApp))
        await app.push_screen(HelpScreen([]))
        missing += missing_commands(app.screen, own_bindings(HelpScreen))
        screens.append(HelpScreen)
    assert not missing, "bindings with no palette command:\n" + "\n".join(missing)
    assert all(own_bindings(cls) for cls in screens if cls.__name__ != "ProvidersScreen")


async def test_a_palette_command_acts_like_its_key(story: Any) -> None:
    """Through the palette itself: ctrl+p, type, enter."""
    engine, clock = story
    app = OnwardApp(engine, worker=False, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "loads", 0) >= 1, "the runs")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"Workers")
        await wait_for(pilot, lambda: app.screen.query_one(CommandList).option_count,
                       "the matching commands")  # (the search runs in a task)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, WorkersScreen),
                       "the workers screen, as key 4 shows it")
