"""The pieces the ``onward`` argument tree is built from: the parser class (mistakes are one
line, exit status 2), the help formatter (rich-argparse, loaded only when help is shown),
``type=`` validators for numbers, and the options many commands share (``--db``,
``--flows``, ``--plugins``, ``--output``), which may come before or after the subcommand.
"""

from __future__ import annotations

import argparse
import math
import os
import textwrap
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from .errors import BadInput

if TYPE_CHECKING:
    from rich_argparse import RichHelpFormatter

OUTPUTS = ("text", "json", "jsonl")
DEFAULT_DB = "onward.db"
ENVIRONMENT = {
    "ONWARD_DB": "the database: a file, or a postgresql:// URL (default ./onward.db)",
    "ONWARD_FLOWS": f"workflow modules for --flows, separated by {os.pathsep!r}",
    "ONWARD_PLUGINS": f"provider plugin folders for --plugins, separated by {os.pathsep!r}",
    "NO_COLOR": "set to anything: help without colours",
}
"""The environment variables the command line reads, as ``onward --help`` lists them."""


class UsageError(BadInput):
    """The command line itself is wrong."""


# --------------------------------------------------------------------------- help


@cache
def _formatter_class() -> type[RichHelpFormatter]:
    from rich_argparse import RawDescriptionRichHelpFormatter

    class Help(RawDescriptionRichHelpFormatter):
        """Help text as written (no console markup; blank lines and indents kept)."""

        help_markup = False
        text_markup = False

    return Help


def help_formatter(prog: str) -> argparse.HelpFormatter:
    """A help formatter for ``prog``: rich-argparse, coloured only on a terminal and never
    when ``$NO_COLOR`` is set. rich loads here, when help is shown, not at every start."""
    formatter = _formatter_class()(prog, max_help_position=32)
    if os.environ.get("NO_COLOR"):
        from rich.console import Console
        # rich alone keeps bold and dim under NO_COLOR; no colour system means no escapes
        formatter.console = Console(color_system=None)
    return formatter


def wrap(text: str) -> str:
    """Each line of ``text`` as a paragraph wrapped at 88 columns (help keeps line breaks
    as written, for the examples)."""
    return "\n".join(textwrap.fill(line, 88) for line in text.splitlines())


def described(summary: str, about: str = "", examples: Sequence[str] = ()) -> dict[str, Any]:
    """A subcommand's ``description`` (``about``, else its one-line ``summary``) and
    ``epilog`` (its examples, one command line each)."""
    text = about or summary[:1].upper() + summary[1:] + "."
    epilog = ("examples:\n" + "\n".join(f"  {e}" for e in examples)) if examples else None
    return {"description": wrap(text), "epilog": epilog}


class Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as one line with exit status 2, and shows help with
    rich-argparse.

    argparse makes a formatter for every ``add_argument`` (to check its metavar): that one
    stays argparse's plain formatter, so building the tree neither imports rich nor makes
    a rich formatter per option; only ``format_help`` uses rich-argparse."""

    def format_help(self) -> str:
        plain, self.formatter_class = self.formatter_class, help_formatter
        try:
            return super().format_help()
        finally:
            self.formatter_class = plain

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog.removeprefix("onward").strip()
        text = " ".join(message.split())  # arguments echoed back stay on one line
        raise UsageError(f"{where}: {text}; see `{self.prog} --help`" if where
                         else f"{text}; see `onward --help`")


class TopParser(Parser):
    """The ``onward`` parser: after parsing, the shared options given before the subcommand
    join those given after it, and defaults come from the environment."""

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            command = " ".join(["onward", *_command_words(parsed)])
            raise UsageError(f"{command.removeprefix('onward ') or 'onward'}: unrecognized "
                             f"arguments: {' '.join(' '.join(extra).split())}; see "
                             f"`{command} --help`")
        _finish(parsed)
        return parsed, []


def _command_words(args: argparse.Namespace) -> list[str]:
    words = [getattr(args, "command", None), getattr(args, "task_command", None)]
    return [w for w in words if w]


def _finish(args: argparse.Namespace) -> None:
    """Merge the shared options given before the subcommand into those after it, refuse
    those the subcommand does not take, and fill ``--db`` from ``$ONWARD_DB``."""
    command = " ".join(_command_words(args))
    early_flows = vars(args).pop("early_flows", None) or []
    early_plugins = vars(args).pop("early_plugins", None) or []
    if getattr(args, "contributed_unavailable", None):
        return  # it takes anything and says why it cannot run
    if (early_flows or early_plugins) and not getattr(args, "takes_code", False):
        option = "--flows" if early_flows else "--plugins"
        raise UsageError(f"{option}: `onward {command}` runs no workflow code; give "
                         f"{option} to worker, start, query, retry, reset, replay or console")
    if getattr(args, "takes_db", False):
        if getattr(args, "db", None) is None:
            args.db = os.environ.get("ONWARD_DB") or DEFAULT_DB
    elif getattr(args, "db", None) is not None:
        raise UsageError(f"--db: `onward {command}` opens no database")
    if getattr(args, "takes_code", False):
        args.flows = [*early_flows, *getattr(args, "flows", [])]
        args.plugins = [*early_plugins, *getattr(args, "plugins", [])]


def add_early_options(parser: argparse.ArgumentParser) -> None:
    """``--db``, ``--flows`` and ``--plugins`` before the subcommand (``onward --db x list``)."""
    parser.add_argument("--db", default=None, metavar="DB",
                        help="database file or postgresql:// URL, for any command (default "
                             "$ONWARD_DB, else ./onward.db); also accepted after the command")
    parser.add_argument("--flows", dest="early_flows", action="append", metavar="PATH",
                        help="workflow module, for commands that run code (repeatable)")
    parser.add_argument("--plugins", dest="early_plugins", action="append", metavar="DIR",
                        help="provider plugin folder, for commands that run code "
                             "(repeatable)")


def add_common(p: argparse.ArgumentParser, *, code: bool = False, output: bool = False
               ) -> None:
    """Add the options every command on a database shares: ``--db``; with ``code``
    ``--flows`` and ``--plugins``; with ``output`` ``--output`` and its alias ``--json``."""
    # SUPPRESS: absent unless given here, so a --db given before the subcommand stays
    p.add_argument("--db", default=argparse.SUPPRESS, metavar="DB",
                   help="database file or postgresql:// URL (default $ONWARD_DB, else "
                        "./onward.db)")
    p.set_defaults(takes_db=True, takes_code=code)
    if code:
        p.add_argument("--flows", action="append", default=[], metavar="PATH",
                       help="workflow module file, package folder or dotted module "
                            "(repeatable; default $ONWARD_FLOWS, several separated by "
                            f"{os.pathsep!r})")
        p.add_argument("--plugins", action="append", default=[], metavar="DIR",
                       help="provider plugin folder (repeatable; default $ONWARD_PLUGINS, "
                            f"several separated by {os.pathsep!r})")
    if output:
        p.add_argument("--output", "-o", choices=OUTPUTS, default="text",
                       help="text for people; json: one document; jsonl: one JSON object "
                            "per line (default %(default)s)")
        p.add_argument("--json", dest="output", action="store_const", const="json",
                       help="the same as --output json")


def complete_run_ids(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """Tab completion (argcomplete) of a run's id: the ids of the newest runs in the
    database named so far on the line; none when it is missing or cannot be read."""
    from .client import Engine
    from .errors import OnwardError
    db = getattr(parsed_args, "db", None) or os.environ.get("ONWARD_DB") or DEFAULT_DB
    try:
        engine = Engine(db, create=False)  # completing never makes a database
    except OnwardError:
        return []
    try:
        return [r["id"] for r in engine.list(limit=500) if r["id"].startswith(prefix)]
    except OnwardError:
        return []
    finally:
        engine.close()


# --------------------------------------------------------------------------- numbers


def _number(text: str, kind: type[int] | type[float], what: str,
            accept: Callable[[Any], bool]) -> Any:
    """``text`` as a ``kind`` for which ``accept`` holds, else ArgumentTypeError saying
    ``give {what}`` (floats must also be finite)."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or \
            not accept(value):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: give {what}")
    return value


def positive_int(text: str) -> int:
    """``type=`` for counts and sequence numbers: a whole number, 1 or more."""
    value: int = _number(text, int, "a whole number, 1 or more", lambda v: v >= 1)
    return value


def port(text: str) -> int:
    """``type=`` for a TCP port: a whole number from 1 to 65535."""
    value: int = _number(text, int, "a port number from 1 to 65535",
                         lambda v: 1 <= v <= 65535)
    return value


def non_negative_float(text: str) -> float:
    """``type=`` for a wait: a finite number of seconds, 0 or more."""
    value: float = _number(text, float, "a number of seconds, 0 or more", lambda v: v >= 0)
    return value


def positive_float(text: str) -> float:
    """``type=`` for a duration that must pass: a finite number of seconds above 0."""
    value: float = _number(text, float, "a number of seconds above 0", lambda v: v > 0)
    return value
