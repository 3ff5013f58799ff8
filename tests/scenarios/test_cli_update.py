"""``onward update`` from another process than the run's worker: exit 0 with the result,
1 when the handler failed, 2 when rejected (nothing recorded), 3 while no worker answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import REPO, WorkerProcess, cli, cli_json

pytestmark = pytest.mark.slow
FLOWS = str(REPO / "tests" / "flows" / "handlers.py")


def history_types(db: Path, ident: str) -> list[str]:
    return [e["type"] for e in cli_json("show", ident, "--db", str(db), "--json")["history"]]


def test_update_exit_statuses(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    assert cli("start", "approval", "--id", "c1", "--input", '["claim-9"]', "--flows", FLOWS,
               "--db", str(db)).returncode == 0
    pending = cli("update", "c1", "amend", "--input", '"early"', "--wait", "0.3",
                  "--update-id", "first", "--db", str(db))
    assert pending.returncode == 3 and "still pending" in pending.stderr
    with WorkerProcess(db, flows=[FLOWS]) as worker:
        worker.wait_ready()
        rejected = cli("update", "c1", "approve", "--input", '[""]', "--db", str(db))
        assert rejected.returncode == 2 and "who approves?" in rejected.stderr
        failed = cli("update", "c1", "amend", "--input", '"bad"', "--db", str(db), "--json")
        assert failed.returncode == 1
        assert json.loads(failed.stdout)["error"]["message"] == "cannot amend with 'bad'"
        stored = cli("update", "c1", "amend", "--input", '"again"', "--update-id", "first",
                     "--db", str(db), "--json")  # the same id: the first request's outcome
        assert stored.returncode == 0 and json.loads(stored.stdout) == 1
        done = cli("update", "c1", "approve", "--input", '["dana"]', "--db", str(db), "--json")
        assert done.returncode == 0 and json.loads(done.stdout) == "approved by dana"
        result = cli("result", "c1", "--wait", "20", "--db", str(db), "--json")
        assert json.loads(result.stdout) == "claim-9: approved by dana"
    types = history_types(db, "c1")
    assert types.count("UpdateAccepted") == 3  # amend early, amend bad, approve; no rejection
    closed = cli("update", "c1", "approve", "--input", '["x"]', "--db", str(db))
    assert closed.returncode == 2 and "it has completed" in closed.stderr
    again = cli("update", "c1", "amend", "--update-id", "first", "--db", str(db), "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == 1  # asked before: answered
