"""How ``onward`` commands print what they read: ``--output text`` for people (tables with a
header row), ``json`` (one indented document) and ``jsonl`` (one compact JSON object per
line: a list prints one line per item, anything else one line)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

JsonObject = dict[str, Any]


def emit(data: Any, output: str, text: Callable[[Any], None]) -> None:
    """Print ``data`` as ``output`` asks; for ``text`` call ``text(data)``."""
    if output == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif output == "jsonl":
        for item in data if isinstance(data, list) else [data]:
            print(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
    else:
        text(data)


def value_text(value: Any) -> None:
    """A result or query answer: its JSON on one line."""
    print(json.dumps(value, ensure_ascii=False))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns as wide as their widest cell, the header row first; the last column is
    not padded (it may be long)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    for row in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def _when(iso: str | None) -> str:
    """An ISO-8601 time as ``YYYY-MM-DD HH:MM:SS`` (UTC, as stored), or ``-``."""
    return iso[:19].replace("T", " ") if iso else "-"


def runs_text(runs: list[JsonObject], status: str | None) -> None:
    """``onward list``: a table of runs, or a line saying there are none."""
    if not runs:
        print("no runs" + (f" with status {status}" if status else ""))
        return
    rows = []
    for r in runs:
        flags = [f for f in ("stuck", "paused", "retrying") if r.get(f)]
        rows.append([r["id"], r["workflow"], " ".join([r["status"], *flags]),
                     _when(r.get("updated")), r.get("step") or ""])
    table(["ID", "WORKFLOW", "STATUS", "UPDATED (UTC)", "STEP"], rows)


def tasks_text(tasks: list[JsonObject], status: str) -> None:
    """``onward tasks``: a table of manual tasks, or a line saying there are none."""
    if not tasks:
        print(f"no {'' if status == 'all' else status + ' '}manual tasks")
        return
    rows = [[t["task_id"], t["kind"], t["id"], t["assignee"] or "-", t["status"],
             _when(t["deadline"]) + ("  OVERDUE" if t["overdue"] else "")] for t in tasks]
    table(["TASK", "KIND", "RUN", "ASSIGNEE", "STATUS", "DUE (UTC)"], rows)


def show_text(data: JsonObject) -> None:
    """``onward show``: the run, then its history one event a line."""
    print(f"{data['id']}  {data['workflow']}  {data['status']}"
          + ("  STUCK" if data["stuck"] else "") + ("  PAUSED" if data["paused"] else ""))
    print(f"run {data['run_id']}  started {data['started']}")
    print(f"input  {json.dumps(data['input'], ensure_ascii=False)}")
    if data["result"] is not None:
        print(f"result {json.dumps(data['result'], ensure_ascii=False)}")
    if data["error"]:
        print(f"error  {data['error'].get('type', '')}: {data['error'].get('message', '')}")
    if data["stuck_reason"]:
        print(f"stuck  {data['stuck_reason']}")
    for e in data["history"]:
        attrs = {k: v for k, v in e["attrs"].items() if k != "traceback"}
        text = json.dumps(attrs, ensure_ascii=False)
        print(f"{e['seq']:>4} {e['time'][11:23]} {e['type']:<22} "
              f"{text[:110] + '…' if len(text) > 110 else text}")


def replay_text(report: list[JsonObject]) -> None:
    """``onward replay``: each run that would break, then a count."""
    bad = [r for r in report if not r["ok"]]
    for r in bad:
        print(f"BREAKS {r['id']} (run {r['run_id']}): {r['error']}")
    print(f"replayed {len(report)} runs: {len(report) - len(bad)} ok, {len(bad)} would "
          "break")
