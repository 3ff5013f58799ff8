"""``onward console``: registered with the engine's CLI through the entry point group
``onward.cli`` (see pyproject.toml), so the engine never imports the console."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from onward import Engine


class Commands(Protocol):
    """The part of the engine's command registry the console uses."""

    def add(self, name: str, help: str, run: Run, *,  # noqa: A002 - argparse's word
            creates: bool = False, runs_code: bool = False, description: str = "",
            examples: Sequence[str] = ()) -> argparse.ArgumentParser:
        """Add subcommand ``name``; returns its parser."""

    @staticmethod
    def positive_int(text: str) -> int:
        """``type=`` for a count: a whole number, 1 or more."""


class Run(Protocol):
    def __call__(self, engine: Engine, args: argparse.Namespace, /) -> int: ...


def register(commands: Commands) -> None:
    """Add ``onward console`` and its options."""
    p = commands.add(
        "console", "the operations console, with an embedded worker", run,
        creates=True, runs_code=True,
        description="Watch and repair runs in the terminal. Unless --no-worker, it also runs "
                    "a worker for the code of --flows and --plugins. Log records do not "
                    "reach the terminal it draws on (Textual captures stderr while it runs).",
        examples=["onward console --demo", "onward console --db app.db --flows flows.py",
                  "onward console --demo --serve --port 8000"])
    p.add_argument("--no-worker", action="store_true",
                   help="watch only; run no worker (default: run one)")
    p.add_argument("--demo", action="store_true",
                   help="load the demo's providers and sample flows and start them in "
                        "instructive states (nothing else loads demo code)")
    p.add_argument("--history", metavar="FILE",
                   help="open an exported history read-only (default: none)")
    p.add_argument("--concurrency", type=commands.positive_int, default=8, metavar="N",
                   help="activity attempts running at once in the embedded worker "
                        "(default %(default)s)")
    p.add_argument("--serve", action="store_true",
                   help="serve the console to a browser at http://HOST:PORT instead of "
                        "drawing it here (each browser tab gets its own console process)")
    p.add_argument("--port", type=_port, default=8000, metavar="P",
                   help="the port --serve listens on (default %(default)s)")
    p.add_argument("--host", default="127.0.0.1", metavar="HOST",
                   help="the address --serve listens on (default %(default)s)")


def _port(text: str) -> int:
    """``type=`` for --port: a whole number from 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use a number from 1 to "
                                         "65535")
    return value


def run(engine: Engine, args: argparse.Namespace) -> int:
    """Run the console on ``engine`` until the operator quits (or serve it to browsers
    with --serve); its exit status."""
    if getattr(args, "serve", False):
        from .serve import serve
        return serve(sys.argv[1:], args.host, args.port)
    from .app import run_console  # Textual loads only when the console runs, not for --help
    return run_console(engine, args)
