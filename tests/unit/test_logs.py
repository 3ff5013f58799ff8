"""How a real ``onward worker`` logs: records on stderr (one JSON object per line with
``--log-format json``), nothing on stdout, no chatter from watchfiles, and one
"reloaded" line per edit of a flows file, however the editor saves it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from onward import Engine
from tests.helpers import WorkerProcess, wait_until

FLOWS = str(Path(__file__).parents[1] / "flows" / "basic.py")
ORDERS = Path(__file__).parents[1] / "flows" / "v1" / "orders.py"
BANNER = ("worker ", "stopping: ")
"""The worker's own lines on stderr (plain text: the banner and its goodbye)."""


def records(log: Path) -> list[dict[str, Any]]:
    """The JSON log records in a worker's stderr (every line but the banner lines)."""
    lines = [line for line in log.read_text().splitlines() if not line.startswith(BANNER)]
    return [json.loads(line) for line in lines]


def test_json_logs_are_one_object_per_line_with_the_runs_fields(tmp_path: Path) -> None:
    db = tmp_path / "onward.db"
    with WorkerProcess(db, flows=[FLOWS], extra=["--log-format", "json"]) as worker, \
            Engine(db, flows=[FLOWS]) as eng:  # a client: the worker runs the run
        handle = eng.start("retrying", 1, id="json-logged")
        assert handle.result(timeout=30) == "ok after 2"
        wait_until(lambda: [r for r in records(worker.log_path)
                            if r.get("workflow_id") == "json-logged"],
                   message="the failed attempt logged")
    logged = records(worker.log_path)
    assert logged and all({"time", "level", "logger", "message"} <= set(r) for r in logged)
    [attempt] = [r for r in logged if r.get("workflow_id") == "json-logged"]
    assert attempt["level"] == "WARNING" and attempt["logger"] == "onward.worker"
    assert (attempt["run_id"], attempt["activity"], attempt["attempt"]) == (
        handle.run_id, "flaky", 1)
    assert "flaky failure 1" in attempt["message"] and "retry at" in attempt["message"]


def _version(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def test_each_edit_of_a_flows_file_reloads_once_and_stdout_stays_empty(
        tmp_path: Path) -> None:
    """Written in place, replaced by a rename (how many editors save), saved unchanged,
    replaced again: three reloads, logged once each; watchfiles says nothing even at
    DEBUG; the worker writes nothing on stdout."""
    flows = tmp_path / "orders.py"
    original = ORDERS.read_text()
    flows.write_text(original)
    out = tmp_path / "stdout.txt"  # (WorkerProcess drops stdout: the wrapper keeps it)
    worker = WorkerProcess(tmp_path / "o.db", flows=[flows], extra=["--log-level", "DEBUG"],
                           prefix=["sh", "-c", 'exec "$@" >"$0"', str(out)])
    err = worker.log_path
    try:
        worker.wait_ready()

        def reloads() -> list[str]:
            return [line.rsplit("version ", 1)[1].rstrip(")") for line in
                    err.read_text().splitlines() if "onward.reload: reloaded" in line]

        def edit(text: str, *, atomic: bool = False) -> None:
            if atomic:
                spare = tmp_path / "orders.py.new"
                spare.write_text(text)
                os.replace(spare, flows)
            else:
                flows.write_text(text)

        in_place = original + "# edited in place\n"
        # the watcher may not watch yet: write until the first reload shows
        wait_until(lambda: edit(in_place) or reloads(), interval=0.5,
                   message="the first reload")
        renamed = original + "# replaced by a rename\n"
        edit(renamed, atomic=True)
        wait_until(lambda: len(reloads()) >= 2, message="the reload after a rename")
        edit(renamed)  # saved again, unchanged: nothing to reload
        wait_until(lambda: "nothing to reload" in err.read_text(),
                   message="the unchanged save seen")
        last = original + "# the last edit\n"
        edit(last, atomic=True)  # a rename again: the watcher survived the first one
        wait_until(lambda: _version(last) in reloads(), message="the last reload")
        assert reloads() == [_version(in_place), _version(renamed), _version(last)]
    finally:
        assert worker.stop() == 0
    text = err.read_text()
    assert "change detected" not in text and "changes detected" not in text
    assert out.exists() and out.read_text() == ""
