"""The ``onward`` argument tree: every subcommand with its one-line summary (``onward
--help``), its description and examples (``onward COMMAND --help``) and its options.

Building it imports nothing heavy: rich-argparse loads only when help is printed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from . import __version__, cli_visibility
from .cli_options import (
    ENVIRONMENT,
    Parser,
    TopParser,
    add_common,
    add_early_options,
    complete_run_ids,
    described,
    non_negative_float,
    port,
    positive_float,
    positive_int,
    wrap,
)
from .cli_plugins import add_contributed
from .cli_schedule import add_schedule_commands
from .logs import FORMATS, LEVELS
from .store.visibility import FILTERS, STATUSES

Subcommands = Any
"""What ``add_subparsers`` returns (argparse's class for it is private)."""

TASK_STATUSES = ("open", "completed", "failed", "timed_out", "canceled", "all")
SHELLS = ("bash", "zsh", "fish")

_ABOUT = """\
Durable workflows on one machine, which you can watch from a terminal.

Runs, their histories and the work queues live in one database (--db). Workers run the
workflow and activity code named with --flows and --plugins; every other command reads or
changes the database and exits.
"""


def _epilog() -> str:
    width = max(len(name) for name in ENVIRONMENT)
    lines = [f"  {name:<{width}}  {what}" for name, what in ENVIRONMENT.items()]
    return ("environment:\n" + "\n".join(lines) + "\n\n" + wrap(
        "exit status: 0 success, 1 a failure (or a failed run for `result`), 2 bad input, "
        "3 a run still open (`result`)") + "\n\n`onward COMMAND --help` describes a "
        "command, with examples.")


def _command(sub: Subcommands, name: str, summary: str,
             about: str = "", examples: Sequence[str] = ()) -> Parser:
    """Add subcommand ``name``: ``summary`` in ``onward --help``; ``about`` (else the
    summary) and ``examples`` in its own help."""
    parser: Parser = sub.add_parser(name, help=summary, **described(summary, about, examples))
    return parser


def _run_id(p: argparse.ArgumentParser) -> None:
    action = p.add_argument("id", metavar="ID",
                            help="a workflow id (its current run), or a run id")
    action.completer = complete_run_ids  # type: ignore[attr-defined]  # argcomplete's hook


def build_parser() -> TopParser:
    """The argument parser for every subcommand."""
    parser = TopParser(prog="onward", description=_ABOUT, epilog=_epilog())
    parser.add_argument("--version", action="version", version=f"onward {__version__}",
                        help="print the version and exit")
    add_early_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                metavar="COMMAND", title="commands", prog="onward")
    add_contributed(sub, add_common)  # `onward console`, from the console's entry point
    _workers(sub)
    _runs(sub)
    _operator(sub)
    _tasks(sub)
    _repair(sub)
    add_schedule_commands(sub)
    _admin(sub)
    return parser


def _workers(sub: Subcommands) -> None:
    p = _command(sub, "worker", "a headless worker; many may share one database",
                 "Run workflow tasks and activity attempts from the database until SIGINT or "
                 "SIGTERM, then finish or release what it holds and exit 0. Its banner and "
                 "logs go to stderr. Changed --flows and --plugins files reload live.",
                 ["onward worker --db app.db --flows flows.py",
                  "onward worker --flows myapp.flows --concurrency 32 --log-format json",
                  "onward worker --flows flows.py --metrics-port 9464 --log-level DEBUG"])
    add_common(p, code=True)
    p.add_argument("--concurrency", type=positive_int, default=8, metavar="N",
                   help="activity attempts running at once in this worker (default "
                        "%(default)s)")
    p.add_argument("--lease-ttl", type=positive_float, default=5.0, metavar="SECONDS",
                   help="seconds before another host's silent worker is presumed dead "
                        "(default %(default)s)")
    p.add_argument("--no-watch", action="store_true",
                   help="do not reload changed code (default: reload)")
    p.add_argument("--workflow-deadline", type=positive_float, default=2.0,
                   metavar="SECONDS",
                   help="stop workflow code that runs this long without yielding and hold "
                        "its run stuck (default %(default)s)")
    p.add_argument("--log-level", default="INFO", choices=LEVELS, type=str.upper,
                   metavar="LEVEL",
                   help=f"least severe log records written to stderr: {', '.join(LEVELS)} "
                        "(default %(default)s)")
    p.add_argument("--log-format", default="text", choices=FORMATS,
                   help="text lines, or one JSON object per line (default %(default)s)")
    p.add_argument("--metrics-port", type=port, metavar="PORT",
                   help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics "
                        "(default: none)")


def _runs(sub: Subcommands) -> None:
    p = _command(sub, "start", "start a workflow run (an id runs once)",
                 "Start a run of WORKFLOW. An id runs once: starting an id that exists "
                 "returns its run and starts nothing, so a retried start never doubles "
                 "work; --rerun starts a new run of an id whose last run has closed.",
                 ["onward start reimbursement --id claim-42 --input '[\"alice\", 120]'",
                  "onward start order --flows flows.py --input '{\"sku\": \"A1\"}' --json",
                  "onward start nightly --id nightly --rerun"])
    add_common(p, code=True, output=True)
    p.add_argument("workflow", metavar="WORKFLOW",
                   help="the workflow's name (checked against --flows, else the types "
                        "workers have registered)")
    p.add_argument("--id", help="the workflow id (default: a new unique id)")
    p.add_argument("--input", metavar="JSON",
                   help="the input as JSON; a list gives the positional arguments "
                        "(default: none)")
    p.add_argument("--rerun", action="store_true",
                   help="start a new run of an id whose last run has closed")
    cli_visibility.add_start_options(p)

    p = _command(sub, "list", "runs, newest change first",
                 examples=["onward list", "onward list --status failed --limit 20",
                           "onward list --status stuck -o jsonl | jq -r .id"])
    add_common(p, output=True)
    p.add_argument("--status", metavar="S",
                   help=f"a status ({', '.join(STATUSES)}) or a filter "
                        f"({', '.join(FILTERS)}) (default: every run)")
    p.add_argument("--all", action="store_true",
                   help="every run, not just the newest of each id")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="at most N runs (default: no limit)")
    cli_visibility.add_list_options(p)
    cli_visibility.add_count(sub, _command, add_common)

    p = _command(sub, "show", "status, input, result, error and history of a run",
                 examples=["onward show claim-42", "onward show claim-42 --json | jq "
                           "'.history[-1]'"])
    add_common(p, output=True)
    _run_id(p)

    p = _command(sub, "result", "print a run's result, waiting for it if asked",
                 "Print a run's result. Exit status 0: completed (prints the result); 1: "
                 "failed, canceled or terminated (prints the error); 3: still open.",
                 ["onward result claim-42", "onward result claim-42 --wait 30 --json"])
    add_common(p, output=True)
    _run_id(p)
    p.add_argument("--wait", type=non_negative_float, default=0.0, metavar="SECONDS",
                   help="wait this long for an open run to close (default %(default)s: "
                        "answer at once)")

    p = _command(sub, "query", "ask a run's query handler (needs --flows)",
                 "Answer a query by replaying the run's history with the workflow code of "
                 "--flows; nothing is written.",
                 ["onward query claim-42 status --flows flows.py",
                  "onward query claim-42 items_over --input '[100]' --flows flows.py --json"])
    add_common(p, code=True, output=True)
    _run_id(p)
    p.add_argument("name", metavar="NAME", help="the query's name")
    p.add_argument("--input", dest="query_input", metavar="JSON",
                   help="the query's arguments as JSON; a list gives several (default: "
                        "none)")
    p.add_argument("--args", dest="query_input", help=argparse.SUPPRESS)  # the old name

    p = _command(sub, "update", "ask a run's update handler and print its result",
                 "Store an update request for the run's current run; a worker running its "
                 "code validates it (a rejection records nothing), runs the handler and "
                 "records the result. Exit status 0: the handler's result is printed; 1: the "
                 "handler failed; 2: the request was rejected; 3: still waiting after --wait "
                 "(the request stays: the same --update-id waits again).",
                 ["onward update claim-42 approve --input '[\"alice\"]'",
                  "onward update claim-42 approve --input '[\"alice\"]' --wait 60 --json"])
    add_common(p, output=True)
    _run_id(p)
    p.add_argument("name", metavar="NAME", help="the update's name")
    p.add_argument("--input", dest="update_input", metavar="JSON",
                   help="the update's arguments as JSON; a list gives several (default: "
                        "none)")
    p.add_argument("--wait", type=non_negative_float, default=30.0, metavar="SECONDS",
                   help="how long to wait for the outcome (default %(default)s)")
    p.add_argument("--update-id", metavar="ID",
                   help="the request's id: a request is stored once per id, so a retried "
                        "command waits for the first one's outcome (default: a new id)")

    p = _command(sub, "replay", "replay stored histories against today's code; exit 1 "
                 "naming each run that would break (a deploy gate)",
                 "Replay stored histories against the code of --flows and --plugins. Exit "
                 "status 1, naming each run that would break, when today's code would "
                 "decide differently from what was recorded: run it before deploying.",
                 ["onward replay --flows flows.py", "onward replay claim-42 claim-43 --flows "
                  "flows.py", "onward replay --all --flows flows.py -o jsonl"])
    add_common(p, code=True, output=True)
    p.add_argument("ids", nargs="*", metavar="ID",
                   help="runs to replay (default: a sample of closed runs)")
    p.add_argument("--all", action="store_true", help="every run, not a sample of closed ones")


def _operator(sub: Subcommands) -> None:
    p = _command(sub, "signal", "send a signal to a run",
                 examples=["onward signal claim-42 approve",
                           "onward signal order-7 add_item --payload '{\"sku\": \"B2\"}'"])
    add_common(p)
    _run_id(p)
    p.add_argument("name", metavar="NAME", help="the signal's name")
    p.add_argument("--payload", metavar="JSON", help="the signal's value as JSON "
                   "(default: null)")

    p = _command(sub, "cancel", "cancel a run (its code may compensate)",
                 "Ask a run to cancel: its code sees the cancellation and may compensate "
                 "before it closes as canceled.", ["onward cancel trip-9"])
    add_common(p)
    _run_id(p)

    p = _command(sub, "terminate", "stop a run at once",
                 "Close a run at once as terminated: its code runs no further, nothing "
                 "compensates.", ["onward terminate trip-9 --reason 'duplicate booking'"])
    add_common(p)
    _run_id(p)
    p.add_argument("--reason", default="", help="why, recorded in its history (default: "
                   "none)")

    p = _command(sub, "pause", "hold a run: no new attempts or workflow tasks",
                 examples=["onward pause claim-42", "onward resume claim-42"])
    add_common(p)
    _run_id(p)

    p = _command(sub, "resume", "let a paused run go",
                 examples=["onward resume claim-42"])
    add_common(p)
    _run_id(p)


def _tasks(sub: Subcommands) -> None:
    p = _command(sub, "tasks", "manual tasks waiting for a person",
                 examples=["onward tasks", "onward tasks --status all --json"])
    add_common(p, output=True)
    p.add_argument("--status", default="open", metavar="S",
                   help=f"{', '.join(TASK_STATUSES)} (default %(default)s)")

    p = _command(sub, "task", "complete or fail a manual task",
                 examples=["onward task complete task-12 --result '{\"approved\": true}' "
                           "--by alice", "onward task fail task-12 --reason 'no receipt'"])
    tsub = p.add_subparsers(dest="task_command", required=True, parser_class=Parser,
                            metavar="ACTION", title="actions", prog="onward task")
    q = _command(tsub, "complete", "complete a task with a result",
                 examples=["onward task complete task-12 --result '{\"approved\": true}'"])
    add_common(q)
    q.add_argument("task_id", metavar="TASK_ID", help="the task (see `onward tasks`)")
    q.add_argument("--result", metavar="JSON", help="the task's result as JSON (default: "
                   "null)")
    q.add_argument("--by", help="who completed it (default: nobody named)")
    q = _command(tsub, "fail", "fail a task with a reason",
                 examples=["onward task fail task-12 --reason 'no receipt' --by bob"])
    add_common(q)
    q.add_argument("task_id", metavar="TASK_ID", help="the task (see `onward tasks`)")
    q.add_argument("--reason", default="", help="why (default: none)")
    q.add_argument("--by", help="who failed it (default: nobody named)")


_DISCARD = "accept that activities completed after the cut run again"


def _repair(sub: Subcommands) -> None:
    p = _command(sub, "retry", "retry a failed or stuck run now, with today's code",
                 "Retry a run now with today's code: a failed run restarts from just before "
                 "its failed step (completed steps are kept), a stuck run's workflow task "
                 "runs again, and an activity waiting out a backoff is attempted now.",
                 ["onward retry claim-42 --flows flows.py",
                  "onward retry claim-42 --discard-completed"])
    add_common(p, code=True)
    _run_id(p)
    p.add_argument("--discard-completed", action="store_true", help=_DISCARD)

    p = _command(sub, "reset", "new run of ID from its history up to SEQ, then today's code",
                 "Start a new run of ID whose history is kept up to event SEQ (see `onward "
                 "show ID`), then runs today's code; signals received after SEQ are "
                 "re-applied unless --no-signals.",
                 ["onward reset claim-42 --event 7 --flows flows.py",
                  "onward reset claim-42 --event 7 --no-signals --discard-completed"])
    add_common(p, code=True, output=True)
    _run_id(p)
    p.add_argument("--event", type=positive_int, required=True, metavar="SEQ",
                   help="the last event kept (required)")
    p.add_argument("--no-signals", action="store_true",
                   help="drop signals received after the cut instead of re-applying them")
    p.add_argument("--discard-completed", action="store_true", help=_DISCARD)


def _admin(sub: Subcommands) -> None:
    p = _command(sub, "migrate", "copy an embedded database into PostgreSQL",
                 examples=["onward migrate --from onward.db --to "
                           "postgresql://onward@localhost/onward"])
    p.add_argument("--from", dest="source", required=True, metavar="DB",
                   help="the SQLite database file to copy (required)")
    p.add_argument("--to", dest="target", required=True, metavar="URL",
                   help="the postgresql:// URL to copy it into (required)")

    p = _command(sub, "completion", "print the shell code for tab completion",
                 "Print the code that makes SHELL complete onward's commands and options.",
                 ['eval "$(onward completion bash)"    # in ~/.bashrc',
                  'eval "$(onward completion zsh)"     # in ~/.zshrc, after compinit',
                  "onward completion fish | source    # in ~/.config/fish/config.fish"])
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help=", ".join(SHELLS))
