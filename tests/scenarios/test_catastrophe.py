"""The seed's catastrophe, end to end through the CLI and real worker processes.

A claim is approved, then its bank closes for good, so the deposit fails and the run
fails. The flow is patched (behind ``workflow.patched``) to pay through a new provider;
``onward replay`` passes; ``onward retry`` completes the run without asking for approval
again. A run that was already retrying on the old bank replays on the old branch and
finishes there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, WorkerProcess, cli, cli_json, env_for, wait_until

pytestmark = pytest.mark.slow

OLD_DEPOSIT = '''            await workflow.execute_activity(
                "bank.deposit", claim["account"], cents,'''
NEW_DEPOSIT = '''            await workflow.execute_activity(
                "newbank.deposit" if workflow.patched("new-bank") else "bank.deposit",
                claim["account"], cents,'''

NEW_BANK = '''
"""A second bank, for the catastrophe test: pays each idempotency key once."""
import json, os
from pathlib import Path
from onward import activity, hookimpl

@activity.defn(name="newbank.deposit")
def deposit(account, cents):
    ledger = Path(os.environ["ONWARD_DATA"]) / "newbank.jsonl"
    key = activity.info().idempotency_key
    seen = ledger.read_text().splitlines() if ledger.exists() else []
    if not any(json.loads(line)["key"] == key for line in seen):
        with open(ledger, "a") as f:
            f.write(json.dumps({"key": key, "account": account, "cents": cents}) + "\\n")
    return {"receipt": key, "bank": "newbank"}

@hookimpl
def onward_activities():
    return [deposit]
'''


def claim(claim_id: str, retry_seconds: float) -> str:
    return json.dumps({"claim_id": claim_id, "employee": "erin", "manager": "alice",
                       "account": "NL01-ERIN", "cents": 12500, "direct_deposit": True,
                       "retry_seconds": retry_seconds})


def history(ident: str, db: str, env: dict[str, str]) -> list[dict[str, object]]:
    return cli_json("show", ident, "--db", db, env=env)["history"]  # type: ignore[no-any-return]


def approve(ident: str, db: str, env: dict[str, str]) -> None:
    task = wait_until(lambda: [t for t in cli_json("tasks", "--db", db, env=env)
                               if t["id"] == ident], message=f"approval task of {ident}")[0]
    done = cli("task", "complete", task["task_id"], "--db", db, "--by", "alice",
               "--result", '{"approved": true}', env=env)
    assert done.returncode == 0, done.stderr


def test_bank_closes_patch_and_retry_pay_once(tmp_path: Path, any_db: Path | str) -> None:
    flows, plugins, data = tmp_path / "flows", tmp_path / "plugins", tmp_path / "data"
    flows.mkdir()
    data.mkdir()
    shutil.copy(REPO / "sample_flows" / "reimbursement.py", flows / "reimbursement.py")
    shutil.copytree(REPO / "plugins", plugins, ignore=shutil.ignore_patterns("__pycache__"))
    db = str(any_db)
    env = env_for(data)
    worker = WorkerProcess(db, flows=[flows], plugins=[plugins], env=env).wait_ready()

    # B: approved, then the bank has an outage; B waits out a long backoff on the old bank.
    (data / "bank.outage").touch()
    assert cli("start", "reimbursement", "--id", "B", "--db", db, "--input",
               claim("B", 3600), env=env).returncode == 0
    approve("B", db, env)
    wait_until(lambda: any(e["type"] == "ActivityAttemptFailed" for e in history("B", db, env)),
               message="B's deposit failed once (outage)")
    (data / "bank.outage").unlink()

    # A: approved, then the bank closes for good: the deposit fails and so does the run.
    (data / "bank.closed").touch()
    assert cli("start", "reimbursement", "--id", "A", "--db", db, "--input",
               claim("A", 0.05), env=env).returncode == 0
    approve("A", db, env)
    failed = cli("result", "A", "--db", db, "--wait", "30", env=env)
    assert failed.returncode == 1 and "closed for good" in failed.stdout
    worker.stop()

    # Deploy the fix: the flow pays through a new provider behind a patch.
    source = (flows / "reimbursement.py").read_text()
    assert OLD_DEPOSIT in source
    (flows / "reimbursement.py").write_text(source.replace(OLD_DEPOSIT, NEW_DEPOSIT))
    (plugins / "newbank.py").write_text(NEW_BANK)
    gate = cli("replay", "--all", "--db", db, "--flows", str(flows), env=env)
    assert gate.returncode == 0, gate.stdout + gate.stderr

    with WorkerProcess(db, flows=[flows], plugins=[plugins], env=env):
        retried = cli("retry", "A", "--db", db, "--flows", str(flows), env=env)
        assert retried.returncode == 0, retried.stderr
        paid = cli("result", "A", "--db", db, "--wait", "30", "--json", env=env)
        assert paid.returncode == 0, paid.stdout + paid.stderr
        assert json.loads(paid.stdout)["status"] == "paid"

        # B replays on the old branch: once the old bank is back, "retry now" pays it there.
        (data / "bank.closed").unlink()
        assert cli("retry", "B", "--db", db, env=env).returncode == 0
        assert cli("result", "B", "--db", db, "--wait", "30", env=env).returncode == 0

    shown = cli_json("show", "A", "--db", db, env=env)
    assert [r["status"] for r in shown["runs"]] == ["failed", "completed"]
    types = [e["type"] for e in shown["history"]]
    assert types.count("ManualTaskCreated") == 1, "approval asked only once"
    assert any(e["type"] == "MarkerRecorded" for e in shown["history"])
    newbank = [json.loads(line) for line in (data / "newbank.jsonl").read_text().splitlines()]
    assert len(newbank) == 1 and newbank[0]["cents"] == 12500
    outbox = [json.loads(line) for line in (data / "outbox.jsonl").read_text().splitlines()]
    assert sum("claim A" in json.dumps(m) or "Claim A" in json.dumps(m) for m in outbox) == 1
    b_events = history("B", db, env)
    assert not any(e["type"] == "MarkerRecorded" and e["attrs"].get("patch_id")
               for e in b_events)  # B never took the patched branch
    completed = [e for e in b_events if e["type"] == "ActivityCompleted"
                 and e["attrs"]["name"] == "bank.deposit"]
    assert len(completed) == 1
    assert cli("replay", "--all", "--db", db, "--flows", str(flows), env=env).returncode == 0
