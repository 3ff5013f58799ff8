"""The command line of visibility: ``start --search-attr/--memo``, ``list --query`` and
``onward count``.

A query is parsed while the arguments are (argparse ``type=``), so a bad one exits 2 with
its position before any database is opened.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .cli_output import emit
from .errors import BadInput
from .listfilter import Query, QueryError, parse

QUERY_HELP = ("a list-filter query, e.g. 'amount > 100 AND ExecutionStatus = \"Running\" "
              "ORDER BY StartTime DESC' (see docs: Visibility)")


def query_arg(text: str) -> Query:
    """argparse type: a parsed query (its error, with the position, if it does not parse)."""
    try:
        return parse(text)
    except QueryError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def search_attr_arg(text: str) -> tuple[str, Any]:
    """argparse type: ``K=JSON`` as (name, value)."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--search-attr {text!r}: write NAME=JSON, e.g. "
                                         "amount=120 or employee='\"dana\"'")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--search-attr {name}: the value is not JSON "
                                         f"({err.msg} at column {err.colno})") from None


def add_start_options(p: argparse.ArgumentParser) -> None:
    """``--search-attr K=JSON`` (repeatable) and ``--memo JSON`` on ``start``."""
    p.add_argument("--search-attr", dest="search_attrs", action="append", default=[],
                   type=search_attr_arg, metavar="K=JSON",
                   help="a search attribute of the new run (repeatable), e.g. amount=120 "
                        "or employee='\"dana\"'; a name's type is fixed by its first value")
    p.add_argument("--memo", metavar="JSON",
                   help="free JSON kept with the run, shown by `show`, not searchable")


def start_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments ``Engine.start`` takes from ``--search-attr`` and ``--memo``
    (built-in names refused here: ScheduleId is set by schedules only)."""
    from .search_attributes import BUILTIN
    attrs = dict(getattr(args, "search_attrs", None) or [])
    for name in attrs:
        if name in BUILTIN:
            raise BadInput(f"--search-attr {name}: a built-in field cannot be set")
    memo_text = getattr(args, "memo", None)
    options: dict[str, Any] = {}
    if attrs:
        options["search_attributes"] = attrs
    if memo_text is not None:
        try:
            options["memo"] = json.loads(memo_text)
        except json.JSONDecodeError as err:
            raise BadInput(f"--memo is not JSON: {err.msg} at column {err.colno}") from None
    return options


def add_list_options(p: argparse.ArgumentParser) -> None:
    """``--query Q`` on ``list``."""
    p.add_argument("--query", "-q", type=query_arg, metavar="Q",
                   help=QUERY_HELP + "; lists every run (older runs of an id too), newest "
                        "start first unless it says ORDER BY")


def add_count(sub: Any, command: Any, add_common: Any) -> None:
    """The ``count`` subcommand (``command`` makes a subparser the way the CLI does)."""
    p = command(sub, "count", "how many runs match a query, optionally per value of a field",
                "Count runs (every run, older runs of an id too) matching --query; with "
                "--group-by FIELD also per value of that field, largest group first.",
                ["onward count", "onward count --query 'ExecutionStatus = \"Running\"'",
                 "onward count --group-by ExecutionStatus --json"])
    add_common(p, output=True)
    p.add_argument("--query", "-q", type=query_arg, metavar="Q", help=QUERY_HELP)
    p.add_argument("--group-by", metavar="FIELD",
                   help="a one-valued field: a built-in (ExecutionStatus, WorkflowType, ...) "
                        "or a search attribute")
    p.set_defaults(contributed_run=run_count)


def run_count(eng: Any, args: argparse.Namespace) -> int:
    """``onward count``: ``{"count": N}`` (and ``groups``) as JSON, else text."""
    data = eng.count(args.query, group_by=args.group_by)

    def text(found: dict[str, Any]) -> None:
        print(found["count"])
        for group in found.get("groups", []):
            value = "(none)" if group["value"] is None else json.dumps(group["value"])
            print(f"  {value}: {group['count']}")
    emit(data, args.output, text)
    return 0
