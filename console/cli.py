"""``onward console``: registered with the engine's CLI through the entry point group
``onward.cli`` (see pyproject.toml), so the engine never imports the console."""

from __future__ import annotations

import argparse
from typing import Protocol

from onward import Engine


class Commands(Protocol):
    """The part of the engine's command registry the console uses."""

    def add(self, name: str, help: str, run: Run, *,  # noqa: A002 - argparse's word
            creates: bool = False, runs_code: bool = False) -> argparse.ArgumentParser:
        """Add subcommand ``name``; returns its parser."""


class Run(Protocol):
    def __call__(self, engine: Engine, args: argparse.Namespace, /) -> int: ...


def register(commands: Commands) -> None:
    """Add ``onward console`` and its options."""
    p = commands.add("console", "the operations console, with an embedded worker", run,
                     creates=True, runs_code=True)
    p.add_argument("--no-worker", action="store_true", help="watch only; run no worker")
    p.add_argument("--demo", action="store_true",
                   help="load the demo's providers and sample flows and start them in "
                        "instructive states (nothing else loads demo code)")
    p.add_argument("--history", metavar="FILE", help="open an exported history read-only")
    p.add_argument("--concurrency", type=int, default=8)


def run(engine: Engine, args: argparse.Namespace) -> int:
    """Run the console on ``engine`` until the operator quits; its exit status."""
    from .app import run_console  # Textual loads only when the console runs, not for --help
    return run_console(engine, args)
