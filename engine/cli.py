"""The ``onward`` command line: a thin layer over :class:`engine.Engine`.

Exit status: 0 success, 1 a failure (or a failed run for ``result``), 2 bad input, 3 a run
still open (``result``). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import payloads
from .cli_plugins import add_contributed, check_available
from .deadline import check_deadline
from .errors import BadInput, OnwardError, RunStillOpen, WorkflowFailed
from .logs import FORMATS, LEVELS, configure_logging


def _package_dir(name: str) -> Path:
    """The folder an installed subpackage of onward lives in (found, not imported)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImportError(f"{name} is not installed with onward")
    return Path(spec.origin).parent


DEMO_PLUGINS = _package_dir("onward.plugins")
DEMO_FLOWS = _package_dir("onward.sample_flows")
"""The demo's providers and sample flows: loaded by ``console --demo`` only."""

CREATES = {"start", "worker"}
"""Only these (and contributed commands that say so) create a missing database; every
other command says it is missing."""
RUNS_CODE = {"worker"}
"""These (and contributed commands that say so) also load the providers installed under
the entry-point group ``onward``."""


class UsageError(BadInput):
    """The command line itself is wrong."""


class Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog.removeprefix("onward").strip()
        text = " ".join(message.split())  # arguments echoed back stay on one line
        raise UsageError(f"{where}: {text}" if where else text)


def _common(p: argparse.ArgumentParser, *, code: bool = False, as_json: bool = False) -> None:
    p.add_argument("--db", default=os.environ.get("ONWARD_DB", "onward.db"),
                   help="database file or postgresql:// URL (default $ONWARD_DB, else "
                        "./onward.db)")
    if code:
        p.add_argument("--flows", action="append", default=[], metavar="PATH",
                       help="workflow module file, package folder or dotted module "
                            "(repeatable; default $ONWARD_FLOWS, several separated by "
                            f"{os.pathsep!r})")
        p.add_argument("--plugins", action="append", default=[], metavar="DIR",
                       help="provider plugin folder (repeatable)")
    if as_json:
        p.add_argument("--json", action="store_true", help="print one JSON document")


def build_parser() -> Parser:
    """The argument parser for every subcommand."""
    parser = Parser(prog="onward", description="Durable workflows you can watch from a "
                    "terminal.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_contributed(sub, _common)  # `onward console`, from the console's entry point

    p = sub.add_parser("worker", help="a headless worker; many may share one --db")
    _common(p, code=True)
    p.add_argument("--concurrency", type=int, default=8,
                   help="activity attempts running at once in this worker")
    p.add_argument("--lease-ttl", type=float, default=5.0,
                   help="seconds before another host's silent worker is presumed dead")
    p.add_argument("--no-watch", action="store_true", help="do not reload changed code")
    p.add_argument("--workflow-deadline", type=float, default=2.0, metavar="SECONDS",
                   help="stop workflow code that runs this long without yielding and hold "
                        "its run stuck (default 2)")
    p.add_argument("--log-level", default="INFO", choices=LEVELS, type=str.upper,
                   help="least severe log records written to stderr")
    p.add_argument("--log-format", default="text", choices=FORMATS,
                   help="text lines, or one JSON object per line")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics")

    p = sub.add_parser("start", help="start a workflow run (an id runs once)")
    _common(p, code=True, as_json=True)
    p.add_argument("workflow")
    p.add_argument("--id")
    p.add_argument("--input", help="JSON; a list gives the positional arguments")
    p.add_argument("--rerun", action="store_true",
                   help="start a new run of an id whose last run has closed")

    p = sub.add_parser("list", help="runs, newest change first")
    _common(p, as_json=True)
    p.add_argument("--status", help="a status, or stuck, retrying, paused, waiting, overdue")
    p.add_argument("--all", action="store_true", help="every run, not just the newest per id")
    p.add_argument("--limit", type=int)

    p = sub.add_parser("show", help="status, input, result, error and history of a run")
    _common(p, as_json=True)
    p.add_argument("id")

    p = sub.add_parser("result", help="wait for a run's result")
    _common(p, as_json=True)
    p.add_argument("id")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")

    p = sub.add_parser("signal", help="send a signal to a run")
    _common(p)
    p.add_argument("id")
    p.add_argument("name")
    p.add_argument("--payload", help="JSON")

    p = sub.add_parser("query", help="ask a run's query handler (needs --flows)")
    _common(p, code=True, as_json=True)
    p.add_argument("id")
    p.add_argument("name")
    p.add_argument("--args", help="JSON list of arguments")

    p = sub.add_parser("cancel", help="cancel a run (its code may compensate)")
    _common(p)
    p.add_argument("id")

    p = sub.add_parser("terminate", help="stop a run at once")
    _common(p)
    p.add_argument("id")
    p.add_argument("--reason", default="")

    p = sub.add_parser("tasks", help="open manual tasks")
    _common(p, as_json=True)
    p.add_argument("--status", default="open", help="open (default), completed, failed, "
                   "timed_out, canceled or all")

    p = sub.add_parser("task", help="complete or fail a manual task")
    tsub = p.add_subparsers(dest="task_command", required=True, parser_class=Parser)
    q = tsub.add_parser("complete", help="complete a task with a result")
    _common(q)
    q.add_argument("task_id")
    q.add_argument("--result", help="JSON")
    q.add_argument("--by", help="who completed it")
    q = tsub.add_parser("fail", help="fail a task with a reason")
    _common(q)
    q.add_argument("task_id")
    q.add_argument("--reason", default="")
    q.add_argument("--by")

    p = sub.add_parser("retry", help="retry a failed or stuck run now, with today's code; "
                       "for a run waiting out an activity backoff: attempt now")
    _common(p, code=True)
    p.add_argument("id")
    p.add_argument("--discard-completed", action="store_true",
                   help="accept that activities completed after the cut run again")

    p = sub.add_parser("pause", help="hold a run: no new attempts or workflow tasks")
    _common(p)
    p.add_argument("id")

    p = sub.add_parser("resume", help="let a paused run go")
    _common(p)
    p.add_argument("id")

    p = sub.add_parser("reset", help="new run of ID: history kept up to SEQ, then today's "
                       "code; signals received after SEQ are re-applied")
    _common(p, code=True)
    p.add_argument("id")
    p.add_argument("--event", type=int, required=True, metavar="SEQ")
    p.add_argument("--no-signals", action="store_true",
                   help="drop signals received after the cut instead of re-applying them")
    p.add_argument("--discard-completed", action="store_true",
                   help="accept that activities completed after the cut run again")

    p = sub.add_parser("replay", help="replay stored histories against today's code; exit 1 "
                       "naming each run that would break (a deploy gate)")
    _common(p, code=True, as_json=True)
    p.add_argument("ids", nargs="*")
    p.add_argument("--all", action="store_true", help="every run, not a sample of closed ones")

    p = sub.add_parser("migrate", help="copy an embedded database into PostgreSQL")
    p.add_argument("--from", dest="source", required=True, metavar="DB")
    p.add_argument("--to", dest="target", required=True, metavar="URL")
    return parser


def _json_arg(text: str | None, what: str) -> Any:
    return None if text is None else payloads.loads(text, what)


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def code_for(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The flows and plugin folders a command runs: exactly those named (``--flows``, else
    ``$ONWARD_FLOWS``; ``--plugins``), plus the demo's for ``console --demo`` only."""
    flows = list(getattr(args, "flows", []) or [])
    if not flows and os.environ.get("ONWARD_FLOWS"):
        flows = [f for f in os.environ["ONWARD_FLOWS"].split(os.pathsep) if f]
    plugins = [str(p) for p in getattr(args, "plugins", []) or []]
    if args.command == "console" and getattr(args, "demo", False):
        named = {str(Path(p).resolve()) for p in [*flows, *plugins] if Path(p).exists()}
        flows += [str(DEMO_FLOWS)] if str(DEMO_FLOWS) not in named else []
        plugins += [str(DEMO_PLUGINS)] if str(DEMO_PLUGINS) not in named else []
    return flows, plugins


def _open(args: argparse.Namespace) -> Any:
    from .client import Engine
    command = args.command
    create = command in CREATES or getattr(args, "contributed_creates", False)
    flows, plugins = code_for(args)
    deadline = getattr(args, "workflow_deadline", 2.0)
    check_deadline(deadline, "--workflow-deadline")  # before anything is opened or created
    return Engine(args.db, flows=flows, plugins=plugins, create=create,
                  entry_points=command in RUNS_CODE or getattr(args, "contributed_runs_code",
                                                                False),
                  lease_ttl=getattr(args, "lease_ttl", 5.0), workflow_task_deadline=deadline)


def _cmd_start(eng: Any, args: argparse.Namespace) -> int:
    value = _json_arg(args.input, "--input")
    positional = value if isinstance(value, list) else ([] if value is None else [value])
    handle = eng.start(args.workflow, *positional, id=args.id, rerun=args.rerun)
    if args.json:
        _print({"id": handle.id, "run_id": handle.run_id, "created": handle.created})
    else:
        print(f"{'started' if handle.created else 'already exists:'} {handle.id} "
              f"(run {handle.run_id})")
    return 0


def _cmd_list(eng: Any, args: argparse.Namespace) -> int:
    runs = eng.list(status=args.status, all_runs=args.all, limit=args.limit)
    if args.json:
        _print(runs)
        return 0
    if not runs:
        print("no runs" + (f" with status {args.status}" if args.status else ""))
    for r in runs:
        flags = "".join(f" [{f}]" for f in ("stuck", "paused", "retrying") if r[f])
        print(f"{r['id']:<32} {r['workflow']:<18} {r['status']:<12}{flags}  {r['step']}")
    return 0


def _cmd_show(eng: Any, args: argparse.Namespace) -> int:
    data = eng.show(args.id)
    if args.json:
        _print(data)
        return 0
    print(f"{data['id']}  {data['workflow']}  {data['status']}"
          + ("  STUCK" if data["stuck"] else "") + ("  PAUSED" if data["paused"] else ""))
    print(f"run {data['run_id']}  started {data['started']}")
    print(f"input  {json.dumps(data['input'])}")
    if data["result"] is not None:
        print(f"result {json.dumps(data['result'])}")
    if data["error"]:
        print(f"error  {data['error'].get('type', '')}: {data['error'].get('message', '')}")
    if data["stuck_reason"]:
        print(f"stuck  {data['stuck_reason']}")
    for e in data["history"]:
        attrs = {k: v for k, v in e["attrs"].items() if k not in ("traceback",)}
        text = json.dumps(attrs, ensure_ascii=False)
        print(f"{e['seq']:>4} {e['time'][11:23]} {e['type']:<22} "
              f"{text[:110] + '…' if len(text) > 110 else text}")
    return 0


def _cmd_result(eng: Any, args: argparse.Namespace) -> int:
    if not math.isfinite(args.wait) or args.wait < 0:
        raise BadInput("--wait must be a number of seconds, 0 or more")
    handle = eng.handle(args.id)
    try:
        value = handle.result(timeout=max(args.wait, 0.0))
    except RunStillOpen as err:
        print(str(err), file=sys.stderr)
        return 3
    except WorkflowFailed as err:
        if args.json:
            _print({"status": err.status, "error": err.error})
        else:
            print(f"{err.status}: {err.error.get('type', '')}: {err.error.get('message', '')}")
        return 1
    if args.json:
        _print(value)
    else:
        print(json.dumps(value, ensure_ascii=False))
    return 0


TASK_STATUSES = ("open", "completed", "failed", "timed_out", "canceled", "all")


def _cmd_tasks(eng: Any, args: argparse.Namespace) -> int:
    if args.status not in TASK_STATUSES:
        raise BadInput(f"unknown task status {args.status!r}; use one of "
                       f"{', '.join(TASK_STATUSES)}")
    tasks = eng.tasks(args.status)
    if args.json:
        _print(tasks)
        return 0
    if not tasks:
        print("no open manual tasks")
    for t in tasks:
        due = f" due {t['deadline']}" if t["deadline"] else ""
        print(f"{t['task_id']}  {t['kind']:<16} run {t['id']}  for {t['assignee'] or '-'}"
              f"{due}{'  OVERDUE' if t['overdue'] else ''}")
    return 0


def _cmd_task(eng: Any, args: argparse.Namespace) -> int:
    if args.task_command == "complete":
        eng.complete_task(args.task_id, _json_arg(args.result, "--result"), by=args.by)
        print(f"completed {args.task_id}")
    else:
        eng.fail_task(args.task_id, args.reason, by=args.by)
        print(f"failed {args.task_id}")
    return 0


def _cmd_query(eng: Any, args: argparse.Namespace) -> int:
    extra = _json_arg(args.args, "--args") or []
    value = eng.query(args.id, args.name, *(extra if isinstance(extra, list) else [extra]))
    if args.json:
        _print(value)
    else:
        print(json.dumps(value, ensure_ascii=False))
    return 0


def _simple(action: str) -> Callable[[Any, argparse.Namespace], int]:
    def run(eng: Any, args: argparse.Namespace) -> int:
        if action == "signal":
            eng.signal(args.id, args.name, _json_arg(args.payload, "--payload"))
            print(f"signaled {args.id} {args.name}")
        elif action == "terminate":
            eng.terminate(args.id, args.reason)
            print(f"terminated {args.id}")
        else:
            message = getattr(eng, action)(args.id)
            print(message or f"{action}: {args.id}")
        return 0
    return run


def _cmd_retry(eng: Any, args: argparse.Namespace) -> int:
    print(eng.retry(args.id, discard_completed=args.discard_completed))
    return 0


def _cmd_reset(eng: Any, args: argparse.Namespace) -> int:
    handle = eng.reset(args.id, args.event, reapply_signals=not args.no_signals,
                       discard_completed=args.discard_completed)
    if handle.created:
        print(f"reset {args.id}: new run {handle.run_id} continues from event {args.event}")
    else:
        print(f"{args.id} was already reset to event {args.event} a moment ago: new run "
              f"{handle.run_id}")
    return 0


def _cmd_replay(eng: Any, args: argparse.Namespace) -> int:
    report = eng.replay(args.ids or None, all_runs=args.all)
    bad = [r for r in report if not r["ok"]]
    if args.json:
        _print(report)
    else:
        for r in bad:
            print(f"BREAKS {r['id']} (run {r['run_id']}): {r['error']}")
        print(f"replayed {len(report)} runs: {len(report) - len(bad)} ok, {len(bad)} would "
              "break")
    return 1 if bad else 0


def _cmd_worker(eng: Any, args: argparse.Namespace) -> int:
    from .reload import watch_code
    configure_logging(args.log_level, args.log_format)
    stop_metrics = None
    if args.metrics_port is not None:
        from .metrics import serve_metrics
        stop_metrics = serve_metrics(eng, args.metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker = eng.start_worker(concurrency=args.concurrency, lease_ttl=args.lease_ttl)
    watcher = None if args.no_watch else watch_code(eng, worker)
    print(f"worker {worker.worker_id} on {args.db}: {len(eng.registry.workflow_names())} "
          f"workflows, {len(eng.registry.activity_names())} activities, concurrency "
          f"{args.concurrency}", file=sys.stderr, flush=True)
    stop.wait()
    print("stopping: letting running attempts finish", file=sys.stderr, flush=True)
    if watcher is not None:
        watcher.stop()
    eng.stop_worker(worker)
    if stop_metrics is not None:
        stop_metrics()
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate import migrate
    report = migrate(args.source, args.target)
    print(report)
    return 0


COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "start": _cmd_start, "list": _cmd_list, "show": _cmd_show, "result": _cmd_result,
    "tasks": _cmd_tasks, "task": _cmd_task, "query": _cmd_query,
    "signal": _simple("signal"), "cancel": _simple("cancel"),
    "terminate": _simple("terminate"), "retry": _cmd_retry,
    "pause": _simple("pause"), "resume": _simple("resume"), "reset": _cmd_reset,
    "replay": _cmd_replay, "worker": _cmd_worker,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``onward`` command; returns its exit status."""
    try:
        arguments = list(sys.argv[1:] if argv is None else argv)
        for position, argument in enumerate(arguments, 1):
            try:
                argument.encode("utf-8")
            except UnicodeEncodeError:
                raise BadInput(f"argument {position} is not valid UTF-8 text") from None
        args = build_parser().parse_args(arguments)
        if args.command == "migrate":
            return _cmd_migrate(args)
        check_available(args)
        run = COMMANDS.get(args.command) or args.contributed_run
        eng = _open(args)
        try:
            return int(run(eng, args))
        finally:
            eng.close()
    except BadInput as err:
        print(f"onward: {err}", file=sys.stderr)
        return 2
    except OnwardError as err:
        print(f"onward: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
