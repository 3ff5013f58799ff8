# PYTHON_ARGCOMPLETE_OK
"""The ``onward`` command line: a thin layer over :class:`onward.Engine`.

This module runs a command: it parses the line (the tree is in ``cli_parser``), opens the
engine and prints what the command read (``cli_output``). Exit status: 0 success, 1 a
failure (or a failed run for ``result``), 2 bad input, 3 a run still open (``result``).
Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from shlex import quote
from typing import Any

from . import payloads
from .cli_output import (
    emit,
    replay_text,
    runs_text,
    show_text,
    tasks_text,
    value_text,
)
from .cli_parser import TASK_STATUSES, build_parser
from .cli_plugins import check_available
from .cli_schedule import run_schedule
from .cli_visibility import start_options
from .deadline import check_deadline
from .errors import (
    BadInput,
    OnwardError,
    RunStillOpen,
    UpdateFailed,
    UpdatePending,
    WorkflowFailed,
)
from .logs import configure_logging

__all__ = ["build_parser", "code_for", "main"]


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


def _json_arg(text: str | None, what: str) -> Any:
    return None if text is None else payloads.loads(text, what)


def _from_environment(name: str) -> list[str]:
    return [part for part in os.environ.get(name, "").split(os.pathsep) if part]


def code_for(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The flows and plugin folders a command runs: exactly those named (``--flows``, else
    ``$ONWARD_FLOWS``; ``--plugins``, else ``$ONWARD_PLUGINS``), plus the demo's for
    ``console --demo`` only."""
    flows = list(getattr(args, "flows", []) or []) or _from_environment("ONWARD_FLOWS")
    plugins = [str(p) for p in getattr(args, "plugins", []) or []] or \
        _from_environment("ONWARD_PLUGINS")
    if args.command == "console" and getattr(args, "demo", False):
        named = {str(Path(p).resolve()) for p in [*flows, *plugins] if Path(p).exists()}
        flows += [str(DEMO_FLOWS)] if str(DEMO_FLOWS) not in named else []
        plugins += [str(DEMO_PLUGINS)] if str(DEMO_PLUGINS) not in named else []
    return flows, plugins


def _open(args: argparse.Namespace) -> Any:
    from .client import Engine
    command = args.command
    create = command in CREATES or getattr(args, "contributed_creates", False) or \
        getattr(args, "creates", False)  # (`schedule create`)
    flows, plugins = code_for(args)
    deadline = getattr(args, "workflow_deadline", 2.0)
    check_deadline(deadline, "--workflow-deadline")  # before anything is opened or created
    return Engine(args.db, flows=flows, plugins=plugins, create=create,
                  entry_points=command in RUNS_CODE or getattr(args, "contributed_runs_code",
                                                                False),
                  lease_ttl=getattr(args, "lease_ttl", 5.0), workflow_task_deadline=deadline)


# --------------------------------------------------------------------------- commands


def _cmd_start(eng: Any, args: argparse.Namespace) -> int:
    value = _json_arg(args.input, "--input")
    positional = value if isinstance(value, list) else ([] if value is None else [value])
    handle = eng.start(args.workflow, *positional, id=args.id, rerun=args.rerun,
                       **start_options(args))
    data = {"id": handle.id, "run_id": handle.run_id, "created": handle.created}

    def text(_: Any) -> None:
        if handle.created:
            print(f"started {handle.id} (run {handle.run_id})")
            return
        status = handle.status()
        again = "" if status in ("running", "continued_as_new") else (
            f"; `onward start {quote(args.workflow)} --id {quote(handle.id)} --rerun` "
            "starts a new run")
        print(f"already exists: {handle.id} (run {handle.run_id}, {status}){again}")
    emit(data, args.output, text)
    return 0


def _cmd_list(eng: Any, args: argparse.Namespace) -> int:
    runs = eng.list(status=args.status, all_runs=args.all, limit=args.limit, query=args.query)
    emit(runs, args.output, lambda data: runs_text(data, args.status))
    return 0


def _cmd_show(eng: Any, args: argparse.Namespace) -> int:
    emit(eng.show(args.id), args.output, show_text)
    return 0


def _cmd_result(eng: Any, args: argparse.Namespace) -> int:
    handle = eng.handle(args.id)
    try:
        value = handle.result(timeout=args.wait)
    except RunStillOpen as err:
        hint = (f"`onward show {quote(args.id)}` says why" if "(stuck)" in str(err) else
                f"`onward result {quote(args.id)} --wait SECONDS` waits for it")
        print(f"{err}; {hint}", file=sys.stderr)
        return 3
    except WorkflowFailed as err:
        closed = {"status": err.status, "error": err.error}
        emit(closed, args.output, lambda c: print(
            f"{c['status']}: {c['error'].get('type', '')}: {c['error'].get('message', '')}"))
        return 1
    emit(value, args.output, value_text)
    return 0


def _cmd_update(eng: Any, args: argparse.Namespace) -> int:
    extra = _json_arg(args.update_input, "--input")
    extra = extra if isinstance(extra, list) else ([] if extra is None else [extra])
    try:
        value = eng.update(args.id, args.name, *extra, update_id=args.update_id,
                           timeout=args.wait)
    except UpdatePending as err:
        print(f"onward: {err}", file=sys.stderr)
        return 3
    except UpdateFailed as err:
        emit({"status": "failed", "error": err.error}, args.output, lambda c: print(
            f"failed: {c['error'].get('type', '')}: {c['error'].get('message', '')}"))
        return 1
    emit(value, args.output, value_text)
    return 0


def _cmd_tasks(eng: Any, args: argparse.Namespace) -> int:
    if args.status not in TASK_STATUSES:
        raise BadInput(f"unknown task status {args.status!r}; use one of "
                       f"{', '.join(TASK_STATUSES)}")
    emit(eng.tasks(args.status), args.output, lambda data: tasks_text(data, args.status))
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
    extra = _json_arg(args.query_input, "--input")
    extra = extra if isinstance(extra, list) else ([] if extra is None else [extra])
    emit(eng.query(args.id, args.name, *extra), args.output, value_text)
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

    def text(_: Any) -> None:
        if handle.created:
            print(f"reset {args.id}: new run {handle.run_id} continues from event "
                  f"{args.event}")
        else:
            print(f"{args.id} was already reset to event {args.event} a moment ago: new run "
                  f"{handle.run_id}")
    emit({"id": handle.id, "run_id": handle.run_id, "created": handle.created,
          "event": args.event}, args.output, text)
    return 0


def _cmd_replay(eng: Any, args: argparse.Namespace) -> int:
    report = eng.replay(args.ids or None, all_runs=args.all)
    emit(report, args.output, replay_text)
    return 1 if any(not r["ok"] for r in report) else 0


@contextmanager
def _worker_logging(level: str, fmt: str) -> Iterator[None]:
    """The worker's logging (``onward.*`` on stderr) while it runs; afterwards the
    ``onward`` logger is as it was, so an in-process ``main()`` leaves no handler behind
    (on a stream that may be closed by then)."""
    logger = logging.getLogger("onward")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    configure_logging(level, fmt)
    try:
        yield
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def _cmd_worker(eng: Any, args: argparse.Namespace) -> int:
    with _worker_logging(args.log_level, args.log_format):
        return _run_worker(eng, args)


def _run_worker(eng: Any, args: argparse.Namespace) -> int:
    from .reload import watch_code
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


COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "start": _cmd_start, "list": _cmd_list, "show": _cmd_show, "result": _cmd_result,
    "tasks": _cmd_tasks, "task": _cmd_task, "query": _cmd_query, "update": _cmd_update,
    "signal": _simple("signal"), "cancel": _simple("cancel"),
    "terminate": _simple("terminate"), "retry": _cmd_retry,
    "pause": _simple("pause"), "resume": _simple("resume"), "reset": _cmd_reset,
    "replay": _cmd_replay, "worker": _cmd_worker, "schedule": run_schedule,
}


# --------------------------------------------------------------------------- without a database


def _cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate import migrate
    print(migrate(args.source, args.target))
    return 0


def _cmd_completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode
    print(shellcode(["onward"], shell=args.shell), end="")
    return 0


WITHOUT_DB: dict[str, Callable[[argparse.Namespace], int]] = {
    "migrate": _cmd_migrate, "completion": _cmd_completion,
}


def _complete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request (argcomplete's protocol: ``$_ARGCOMPLETE``,
    ``$COMP_LINE``, ``$COMP_POINT``; answers on fd 8) and exit. argcomplete is imported
    only then: an ordinary start does not pay for it."""
    import argcomplete
    argcomplete.autocomplete(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``onward`` command; returns its exit status."""
    try:
        parser = build_parser()
        if "_ARGCOMPLETE" in os.environ:
            _complete(parser)
        arguments = list(sys.argv[1:] if argv is None else argv)
        for position, argument in enumerate(arguments, 1):
            try:
                argument.encode("utf-8")
            except UnicodeEncodeError:
                raise BadInput(f"argument {position} is not valid UTF-8 text") from None
        try:
            args = parser.parse_args(arguments)
        except SystemExit as done:  # --help and --version: printed, nothing else to do
            return done.code if isinstance(done.code, int) else 0
        if args.command in WITHOUT_DB:
            return WITHOUT_DB[args.command](args)
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
