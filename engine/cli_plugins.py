"""Subcommands that other packages add to ``onward`` (``onward console`` is one).

A package declares an entry point in the group ``onward.cli`` naming a function
``register(commands)``; it calls :meth:`CommandRegistry.add` for each subcommand. The
engine never imports those packages by name: it finds them through the entry points
installed with the distribution, and, for a source checkout whose installed metadata
predates a declaration (an editable install not re-run since pyproject.toml gained it),
through the ``[project.entry-points."onward.cli"]`` table of the checkout's own
pyproject.toml.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli_options import described, non_negative_float, port, positive_float, positive_int
from .errors import OnwardError

if TYPE_CHECKING:
    from .client import Engine

GROUP = "onward.cli"
PROJECT = "onward"
CHECKOUT = Path(__file__).resolve().parent.parent

Run = Callable[["Engine", argparse.Namespace], int]
"""How a subcommand runs: given the engine opened for it and its parsed arguments."""


class CommandRegistry:
    """What a ``register`` function receives: adds subcommands to the ``onward`` parser,
    and offers the ``type=`` validators the built-in commands use for numbers."""

    positive_int = staticmethod(positive_int)
    port = staticmethod(port)
    positive_float = staticmethod(positive_float)
    non_negative_float = staticmethod(non_negative_float)

    def __init__(self, subparsers: Any, common: Callable[..., None]) -> None:
        self._subparsers = subparsers
        self._common = common

    def add(self, name: str, help: str, run: Run, *,  # noqa: A002 - argparse's word
            creates: bool = False, runs_code: bool = False, description: str = "",
            examples: Sequence[str] = ()) -> argparse.ArgumentParser:
        """Add subcommand ``name`` and return its parser (add its own options to it).

        ``help`` is its line in ``onward --help``; ``description`` (else ``help``) and
        ``examples`` (command lines) head and end ``onward NAME --help``. It takes ``--db``,
        before or after the command (and ``--flows``/``--plugins`` with ``runs_code``);
        ``run`` is called with the engine opened on that database, which is created if
        missing only with ``creates``; ``runs_code`` also loads the installed provider
        entry points.
        """
        parser: argparse.ArgumentParser = self._subparsers.add_parser(
            name, help=help, **described(help, description, examples))
        self._common(parser, code=runs_code)
        parser.set_defaults(contributed_run=run, contributed_creates=creates,
                            contributed_runs_code=runs_code)
        return parser


def declared() -> list[EntryPoint]:
    """The ``onward.cli`` entry points: those installed, then any that only the checkout's
    pyproject.toml declares (same name: the installed one wins)."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    for ep in _declared_in_checkout():
        found.setdefault(ep.name, ep)
    return list(found.values())


def _declared_in_checkout() -> Iterable[EntryPoint]:
    """Entry points in the pyproject.toml beside the engine package, if it is Onward's."""
    try:
        project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        return []
    if project.get("name") != PROJECT:
        return []
    table = project.get("entry-points", {}).get(GROUP, {})
    return [EntryPoint(name, value, GROUP) for name, value in table.items()
            if isinstance(value, str)]


def add_contributed(subparsers: Any, common: Callable[..., None]) -> None:
    """Let every declared package register its subcommands. One that fails to load still
    gets a subcommand, which says why when run (other commands are unaffected)."""
    registry = CommandRegistry(subparsers, common)
    for ep in declared():
        try:
            register = ep.load()
            register(registry)
        except Exception as err:  # noqa: BLE001 - a broken extra must not break `onward`
            _unavailable(subparsers, ep.name, f"{type(err).__name__}: {err}")


def _unavailable(subparsers: Any, name: str, why: str) -> None:
    if name in subparsers.choices:
        return
    # No option prefix: every argument (options meant for the real command too) is
    # taken as it comes, so running it reaches check_available and says why.
    parser = subparsers.add_parser(name, help=f"(unavailable: {why})", prefix_chars="\0",
                                   add_help=False)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.set_defaults(contributed_unavailable=f"onward {name} is not available: {why}")


def check_available(args: argparse.Namespace) -> None:
    """Raise OnwardError (before anything is opened) for a subcommand that failed to load."""
    why = getattr(args, "contributed_unavailable", None)
    if why:
        raise OnwardError(why)
