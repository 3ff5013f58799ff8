"""What an operator can do to runs: one catalogue shared by the detail screen, the runs table,
bulk actions and the command palette. Everything here calls the engine, so it runs in thread
workers, never on the UI thread."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onward import BadInput, Engine, OnwardError


@dataclass(frozen=True)
class Operation:
    """One action on a run, with the words the confirmation dialog and the toast use."""

    name: str
    title: str
    explain: str
    danger: bool = False
    asks_reason: bool = False
    bulk: bool = False
    only_open: bool = False


OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation("retry", "Retry",
              "Retry now with today's code. A failed run restarts from just before its failed "
              "step (steps that completed before it are kept, not re-run); a stuck run "
              "replays again; an activity waiting out a backoff is attempted at once.",
              danger=True,
              bulk=True),
    Operation("pause", "Pause",
              "Hold the run: no new attempts or workflow tasks until it is resumed.",
              only_open=True),
    Operation("resume", "Resume", "Let the paused run go on.", only_open=True),
    Operation("cancel", "Cancel",
              "Ask the run to cancel: CancelledError is raised at its current await, so its "
              "cleanup (finally/except) code runs.", danger=True, bulk=True, only_open=True),
    Operation("terminate", "Terminate",
              "Stop the run at once. None of its code runs any more: no cleanup.",
              danger=True, asks_reason=True, bulk=True, only_open=True),
    Operation("reset", "Reset",
              "Start a new run of this id whose history is kept up to the selected event, "
              "then continues with today's code. An open run is terminated first.",
              danger=True),
    Operation("query", "Query", "Ask the run's query handler; nothing is recorded.",
              only_open=False),
    Operation("update", "Update",
              "Ask the run's update handler: its validator may reject the request (nothing "
              "is recorded); accepted, the handler runs and its result is recorded.",
              only_open=True),
    Operation("replay", "Replay check",
              "Replay this run's history against its workflow's file as it is on disk now "
              "(loaded afresh, even if a reload was refused) and report whether it still "
              "matches. Changes nothing."),
)}


def perform(engine: Engine, name: str, ident: str, params: dict[str, Any] | None = None
            ) -> tuple[bool, str]:
    """Run one operation on one run; (ok, what happened). Engine errors propagate."""
    params = params or {}
    if name == "retry":
        if _consented(engine, ident, None, params):
            return True, engine.retry(ident, discard_completed=True)
        return True, engine.retry(ident) or f"retried {ident}"
    if name == "pause":
        return True, engine.pause(ident) or f"paused {ident}"
    if name == "resume":
        return True, engine.resume(ident) or f"resumed {ident}"
    if name == "cancel":
        engine.cancel(ident)
        return True, f"cancel requested for {ident}"
    if name == "terminate":
        reason = params.get("reason") or "terminated from the console"
        engine.terminate(ident, reason)
        return True, f"terminated {ident}: {reason}"
    if name == "signal":
        engine.signal(ident, params["name"], params.get("payload"))
        return True, f"sent signal {params['name']!r} to {ident}"
    if name in ("query", "update"):
        return True, answer_text(name, ident, params, handler_answer(engine, name, ident,
                                                                     params))
    if name == "reset":
        seq = int(params["seq"])
        handle = (engine.reset(ident, seq, discard_completed=True)
                  if _consented(engine, ident, seq, params) else engine.reset(ident, seq))
        return True, (f"reset {ident} to event {params['seq']}: new run "
                      f"{handle.run_id[:12]} continues with today's code")
    if name == "replay":
        return replay_verdict([engine.replay_on_disk(ident)], ident)
    raise ValueError(f"unknown operation {name!r}")


def handler_answer(engine: Engine, name: str, ident: str, params: dict[str, Any]) -> Any:
    """Ask a query or an update (``name``) of ``ident``: the handler's return value."""
    args = params.get("args") or []
    if name == "query":
        return engine.query(ident, params["name"], *args)
    return engine.update(ident, params["name"], *args, timeout=params.get("timeout", 30.0))


def answer_text(name: str, ident: str, params: dict[str, Any], value: Any) -> str:
    """A query's or update's answer in one line: ``query status of X → "waiting"``."""
    return f"{name} {params['name']} of {ident} → {_brief(value)}"


def _brief(value: Any, limit: int = 200) -> str:
    """A result as one line of JSON, cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _consented(engine: Engine, ident: str, seq: int | None, params: dict[str, Any]) -> bool:
    """Whether the operator agreed to discard completed activities, and still can: the
    consent covers the ones the dialog listed (``consented``); if more have completed
    since, nothing is done and the operator is asked to look again."""
    if not params.get("discard_completed"):
        return False
    plan = engine.repair_plan(ident, seq)
    shown = set(params.get("consented") or [])
    extra = [c for c in plan["discarded_completed"] if c["seq"] not in shown]
    if extra:
        names = ", ".join(f"{c['name']} (event {c['seq']})" for c in extra)
        raise BadInput(f"{ident} changed since you confirmed: {names} also completed and "
                       "would be discarded; look again")
    return True


def replay_verdict(report: list[dict[str, Any]], ident: str) -> tuple[bool, str]:
    """Turn a replay report for one run into (ok, sentence naming the code checked)."""
    if not report:
        return False, f"{ident}: nothing to replay"
    row = report[0]
    against = checked_code(row.get("code"))
    if row.get("ok") is True:
        return True, f"replay of {ident} matches {against}"
    if row.get("ok") is None:
        return True, f"{ident} not checked: {row.get('error') or 'no history to check'}"
    where = f" at event {row['seq']}" if row.get("seq") else ""
    return False, f"replay of {ident} against {against} would break{where}: {row.get('error')}"


def checked_code(code: dict[str, Any] | None) -> str:
    """Which code a replay used, in words: the file on disk with its version, and the
    loaded version when the two differ (a reload was refused or is still to come)."""
    if not code:
        return "today's code"
    if code.get("on_disk") is None:
        source = code.get("source")
        return f"the loaded code ({source})" if source else "the loaded code"
    name = Path(str(code["source"])).name
    text = f"{name} on disk (version {code['on_disk']})"
    if code.get("loaded") and code["loaded"] != code["on_disk"]:
        text += f"; the worker still runs version {code['loaded']}, not reloaded"
    return text


def perform_many(engine: Engine, name: str, idents: Iterable[str], params: dict[str, Any],
                 cancelled: Callable[[], bool] = lambda: False
                 ) -> list[tuple[str, bool, str]]:
    """Run one operation on many runs; one (id, ok, message) each, errors included."""
    results: list[tuple[str, bool, str]] = []
    for ident in idents:
        if cancelled():
            results.append((ident, False, "skipped: the console stopped the bulk action"))
            continue
        try:
            ok, message = perform(engine, name, ident, params)
        except OnwardError as err:
            ok, message = False, str(err)
        results.append((ident, ok, message))
    return results


def start_args(value: Any) -> list[Any]:
    """Workflow input as positional arguments: a JSON list is the list, anything else one."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def export_history(show: dict[str, Any], folder: Path | None = None) -> Path:
    """Write a run's show dict as ``<id>.history.json`` (the file ``--history`` opens)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(show.get("id") or "run")).strip("._") or "run"
    path = (folder or Path.cwd()) / f"{safe}.history.json"
    path.write_text(json.dumps(show, indent=2, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")
    return path


def load_history(path: str | Path) -> dict[str, Any]:
    """Read an exported history; BadInput (exit status 2 on the CLI) if it is not one."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise BadInput(f"--history {file}: cannot read it: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise BadInput(f"--history {file}: not JSON (line {err.lineno}, column "
                          f"{err.colno}: {err.msg})") from None
    if not isinstance(data, dict) or "history" not in data or "id" not in data:
        raise BadInput(f"--history {file}: not an exported history (expected the JSON of "
                          "`onward show ID --json`, with id and history)")
    return data
