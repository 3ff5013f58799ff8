"""The sample flows end to end: real worker processes, the CLI, ``kill -9`` and clock shifts.

Each test gets its own database and provider data folder (bank ledger, printer, outbox,
kitchen). Workers run ``sample_flows/`` with the providers in ``plugins/``; the test drives
them only through ``onward`` commands and reads the providers' own records.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from onward import Engine, UpdateRejected
from onward.business import add_business_days
from onward.plugins import bank, kitchen, notify, printer
from tests.helpers import REPO, WorkerProcess, cli, cli_json, env_for, wait_until

pytestmark = pytest.mark.slow

FLOWS = REPO / "sample_flows"
PLUGINS = REPO / "plugins"


class Onward:
    """The ``onward`` CLI on one database, with one environment."""

    def __init__(self, db: Path, env: dict[str, str]) -> None:
        self.db = db
        self.env = env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--db", str(self.db), env=self.env)

    def json(self, *args: str) -> Any:
        return cli_json(*args, "--db", str(self.db), env=self.env)

    def start(self, workflow: str, wf_id: str, payload: Any) -> str:
        started = self.json("start", workflow, "--id", wf_id, "--input", json.dumps(payload),
                            "--flows", str(FLOWS))
        assert started["created"], started
        return str(started["run_id"])

    def show(self, wf_id: str) -> dict[str, Any]:
        return self.json("show", wf_id)  # type: ignore[no-any-return]

    def events(self, wf_id: str, event_type: str, name: str | None = None
               ) -> list[dict[str, Any]]:
        """Events of one type (and activity or task name, if given) in ``wf_id``'s history."""
        return [e for e in self.show(wf_id)["history"] if e["type"] == event_type
                and (name is None or name in (e["attrs"].get("name"), e["attrs"].get("kind")))]

    def query(self, wf_id: str, name: str) -> Any:
        return self.json("query", wf_id, name, "--flows", str(FLOWS))

    def wait_task(self, wf_id: str, kind: str, assignee: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((t for t in self.json("tasks") if t["id"] == wf_id
                         and t["kind"] == kind and t["assignee"] == assignee), None)
        return wait_until(find, 20, f"an open {kind!r} task for {assignee} in {wf_id}",  # type: ignore[no-any-return]
                          interval=0.05)

    def complete(self, task_id: str, result: Any, by: str) -> None:
        done = self.run("task", "complete", task_id, "--result", json.dumps(result), "--by", by)
        assert done.returncode == 0, done.stderr

    def assert_replays(self) -> None:
        """Every stored history replays against today's sample flows (no non-determinism)."""
        done = self.run("replay", "--all", "--flows", str(FLOWS))
        assert done.returncode == 0, done.stdout + done.stderr

    def result(self, wf_id: str, wait: float = 30) -> tuple[int, Any]:
        done = self.run("result", wf_id, "--wait", str(wait), "--json")
        assert done.returncode != 3, f"{wf_id} did not close within {wait}s: {done.stderr}"
        return done.returncode, json.loads(done.stdout)


def worker(db: Path, env: dict[str, str], tmp_path: Path) -> WorkerProcess:
    """A worker on the sample flows and providers, logging to ``worker.log`` in tmp_path."""
    return WorkerProcess(db, flows=[FLOWS], plugins=[PLUGINS], env=env,
                         log=tmp_path / "worker.log")


def claim(claim_id: str, *, direct_deposit: bool = True, **extra: Any) -> dict[str, Any]:
    return {"claim_id": claim_id, "employee": "erin", "manager": "alice",
            "account": "NL01-ERIN", "cents": 12_500, "direct_deposit": direct_deposit,
            "retry_seconds": 0.05, **extra}


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


# --------------------------------------------------------------------------- hello


def test_greet_says_hello(tmp_path: Path, db_path: Path, data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))
    with worker(db_path, onward.env, tmp_path):
        onward.start("greet", "hello-1", "Ada")
        assert onward.result("hello-1") == (0, "Hello, Ada!")
    completed = onward.events("hello-1", "ActivityCompleted")
    assert [e["attrs"]["provider"] for e in completed] == ["hello"]


# --------------------------------------------------------------------------- reimbursement


def test_reimbursement_is_approved_and_deposited_once(tmp_path: Path, db_path: Path,
                                                      data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))
    with worker(db_path, onward.env, tmp_path):
        onward.start("reimbursement", "claim-1", claim("claim-1"))
        task = onward.wait_task("claim-1", "approve", "alice")
        assert task["data"]["cents"] == 12_500 and "claim-1" in task["instructions"]
        assert onward.query("claim-1", "status") == "awaiting approval"

        onward.complete(task["task_id"], {"approved": True}, by="alice")
        assert onward.result("claim-1") == (0, {"status": "paid", "method": "deposit",
                                                "cents": 12_500})

    # The deadline is 3 business days after the run's start, weekends skipped.
    started = onward.events("claim-1", "WorkflowStarted")[0]["time"]
    expected = add_business_days(when(started), 3, "DE", "Europe/Berlin")  # the defaults
    assert abs((when(task["deadline"]) - expected).total_seconds()) < 0.01
    assert onward.query("claim-1", "status") == "done"

    rows = bank.ledger_rows(data_dir)
    assert [(r["account"], r["cents"]) for r in rows] == [("NL01-ERIN", 12_500)]
    assert [m["to"] for m in notify.outbox(data_dir)] == ["erin"]
    completed = onward.events("claim-1", "ManualTaskCompleted")
    assert completed[0]["attrs"]["by"] == "alice"


def test_rejected_claim_pays_nothing(tmp_path: Path, db_path: Path, data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))
    with worker(db_path, onward.env, tmp_path):
        onward.start("reimbursement", "claim-no", claim("claim-no"))
        task = onward.wait_task("claim-no", "approve", "alice")
        onward.complete(task["task_id"], False, by="alice")
        assert onward.result("claim-no") == (0, {"status": "rejected"})
    assert bank.ledger_rows(data_dir) == []
    assert not onward.events("claim-no", "ActivityScheduled", "bank.deposit")


def test_reimbursement_approved_by_update_or_signal_withdraws_the_inbox_task(
        tmp_path: Path, db_path: Path, data_dir: Path) -> None:
    """The class workflow's other ways in: the ``approve`` update (refused with a reason
    while nobody is named, then answered with the decision) and the ``decide`` signal."""
    onward = Onward(db_path, env_for(data_dir))
    with worker(db_path, onward.env, tmp_path):
        onward.start("reimbursement", "claim-u", claim("claim-u"))
        task = onward.wait_task("claim-u", "approve", "alice")
        with Engine(db_path) as eng:
            with pytest.raises(UpdateRejected, match="name who approves"):
                eng.update("claim-u", "approve", " ", timeout=20)
            assert eng.update("claim-u", "approve", "alice", timeout=20) == "approved by alice"
            # a second approval is refused: by the handler while the run still waits on
            # the deposit, or by the engine once the run has closed
            with pytest.raises(UpdateRejected,
                               match="no longer waiting|the run closed before the update"):
                eng.update("claim-u", "approve", "bob", timeout=20)
        assert onward.result("claim-u")[1] == {"status": "paid", "method": "deposit",
                                               "cents": 12_500}
        onward.start("reimbursement", "claim-s", claim("claim-s"))
        onward.wait_task("claim-s", "approve", "alice")
        assert onward.run("signal", "claim-s", "decide", "--payload",
                          '{"approved": false}').returncode == 0
        assert onward.result("claim-s") == (0, {"status": "rejected"})
    refused = onward.run("task", "complete", task["task_id"], "--result", "true")
    assert refused.returncode == 2  # the inbox task was withdrawn with the update's answer
    assert onward.json("tasks") == []
    assert [(r["account"], r["cents"]) for r in bank.ledger_rows(data_dir)] == \
        [("NL01-ERIN", 12_500)]
    onward.assert_replays()


def test_deposit_retried_through_outage_and_kill9_pays_once(tmp_path: Path, db_path: Path,
                                                             data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))
    bank.set_outage(True, data_dir)
    first = worker(db_path, onward.env, tmp_path).wait_ready()
    try:
        onward.start("reimbursement", "claim-2", claim("claim-2"))
        task = onward.wait_task("claim-2", "approve", "alice")
        onward.complete(task["task_id"], {"approved": True}, by="alice")
        wait_until(lambda: len(onward.events("claim-2", "ActivityAttemptFailed",
                                             "bank.deposit")) >= 3,
                   20, "three failed deposit attempts during the outage")
        assert onward.query("claim-2", "status") == "paying"
    finally:
        first.kill()
    assert bank.ledger_rows(data_dir) == []

    bank.set_outage(False, data_dir)
    with worker(db_path, onward.env, tmp_path):
        assert onward.result("claim-2") == (0, {"status": "paid", "method": "deposit",
                                                "cents": 12_500})

    rows = bank.ledger_rows(data_dir)
    assert len(rows) == 1 and rows[0]["cents"] == 12_500
    failed = onward.events("claim-2", "ActivityAttemptFailed", "bank.deposit")
    outage = [e["attrs"] for e in failed if e["attrs"]["error"]["type"] == "BankOutage"]
    assert len(outage) >= 3
    for attrs in outage:
        assert attrs["provider"] == "bank" and attrs["provider_version"], attrs
        assert attrs["next_retry"] is not None
    # Every attempt, before and after the kill, called the bank under the one key it paid
    # (an attempt cut by the kill may or may not have reached the bank).
    attempts = len(failed) + 1
    lost = sum(1 for e in failed if e["attrs"]["error"]["type"] == "WorkerLost")
    calls = bank.call_count(rows[0]["idempotency_key"], data_dir)
    assert attempts - lost <= calls <= attempts, (calls, attempts, lost)
    assert len(onward.events("claim-2", "ActivityCompleted", "bank.deposit")) == 1
    onward.assert_replays()


def test_approval_deadline_passing_while_no_worker_runs_goes_to_backup(
        tmp_path: Path, db_path: Path, data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))
    with worker(db_path, onward.env, tmp_path) as first:
        onward.start("reimbursement", "claim-3", claim("claim-3", backup_approver="bob"))
        late = onward.wait_task("claim-3", "approve", "alice")
        assert first.stop() == 0

    # A day after the deadline (by the engine's clock: 3 business days in Berlin, German
    # holidays skipped) a worker comes back: the deadline has passed.
    shift = (when(late["deadline"]) - datetime.now(UTC)).total_seconds() + 24 * 3600
    onward.env = env_for(data_dir, ONWARD_TIME_SHIFT=str(shift))
    with worker(db_path, onward.env, tmp_path):
        backup = onward.wait_task("claim-3", "approve", "bob")
        assert backup["deadline"] is None
        assert onward.query("claim-3", "status") == "awaiting backup approval"
        refused = onward.run("task", "complete", late["task_id"], "--result", "true")
        assert refused.returncode == 2 and "timed_out" in refused.stderr
        onward.complete(backup["task_id"], {"approved": True}, by="bob")
        assert onward.result("claim-3")[1]["status"] == "paid"

    timed_out = onward.events("claim-3", "ManualTaskTimedOut")
    assert [e["attrs"]["task_id"] for e in timed_out] == [late["task_id"]]
    assert when(timed_out[0]["time"]) >= when(late["deadline"])
    notices = [m for m in notify.outbox(data_dir) if m.get("kind") == "out_of_office"]
    assert [(m["to"], "claim-3" in m["subject"]) for m in notices] == [("alice", True)]
    assert len(bank.ledger_rows(data_dir)) == 1


def test_jammed_printer_becomes_a_task_and_the_check_prints_once(
        tmp_path: Path, db_path: Path, data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))
    printer.jam(data_dir)
    with worker(db_path, onward.env, tmp_path):
        onward.start("reimbursement", "claim-4", claim("claim-4", direct_deposit=False))
        approve = onward.wait_task("claim-4", "approve", "alice")
        onward.complete(approve["task_id"], True, by="alice")

        fix = onward.wait_task("claim-4", "fix_printer", "office")
        assert fix["instructions"] == ("The check printer is jammed: clear it, then complete "
                                       "this task")
        assert onward.query("claim-4", "status") == "waiting for printer fix"
        # Completing the task without clearing the jam: the print fails again, a new task.
        onward.complete(fix["task_id"], None, by="dana")
        wait_until(lambda: len(onward.events("claim-4", "ManualTaskCreated",
                                             "fix_printer")) == 2,
                   20, "a second fix_printer task while the printer is still jammed")
        again = onward.wait_task("claim-4", "fix_printer", "office")
        assert printer.checks(data_dir) == []

        printer.clear_jam(data_dir)
        onward.complete(again["task_id"], None, by="dana")
        assert onward.result("claim-4") == (0, {"status": "paid", "method": "check",
                                                "cents": 12_500})

    printed = printer.checks(data_dir)
    assert [(c["payee"], c["cents"]) for c in printed] == [("erin", 12_500)]
    failures = onward.events("claim-4", "ActivityFailed", "printer.print_check")
    assert [e["attrs"]["error"]["type"] for e in failures] == ["PrinterJammed"] * 2
    assert bank.ledger_rows(data_dir) == []


# --------------------------------------------------------------------------- pizza


def order(order_id: str, **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "pizza": "margherita", "cents": 1150,
            "address": "1 Canal St", "retry_seconds": 0.05, **extra}


def test_one_pizza_per_order_across_kill9_mid_bake(tmp_path: Path, db_path: Path,
                                                   data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))

    def bake_running() -> bool:
        pending = onward.show("order-1")["pending"]["activities"]
        return any(a["name"] == "kitchen.bake" and a["running"] for a in pending)

    # Hold the kitchen's file lock: the bake attempt then blocks inside the provider, so the
    # kill lands while it is in flight (the kitchen has no slow-oven switch of its own).
    with open(data_dir / "kitchen.lock", "a") as oven:
        fcntl.flock(oven, fcntl.LOCK_EX)
        first = worker(db_path, onward.env, tmp_path).wait_ready()
        try:
            onward.start("pizza_order", "order-1", order("order-1"))
            wait_until(bake_running, 20, "the bake attempt of order-1 in flight")
        finally:
            first.kill()

    with worker(db_path, onward.env, tmp_path):
        code, result = onward.result("order-1")
    assert code == 0 and result["status"] == "delivered", result

    assert kitchen.pizzas_baked("order-1", data_dir) == 1
    assert kitchen.net_charged("order-1", data_dir) == 1150
    assert [d["order_id"] for d in kitchen.deliveries(data_dir)] == ["order-1"]
    lost = onward.events("order-1", "ActivityAttemptFailed", "kitchen.bake")
    assert [e["attrs"]["error"]["type"] for e in lost] == ["WorkerLost"]
    baked = onward.events("order-1", "ActivityCompleted", "kitchen.bake")
    assert [e["attrs"]["attempt"] for e in baked] == [2]
    assert len(onward.events("order-1", "ActivityCompleted", "kitchen.charge")) == 1
    onward.assert_replays()


def test_order_cancelled_after_payment_is_refunded(tmp_path: Path, db_path: Path,
                                                   data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))
    with worker(db_path, onward.env, tmp_path):
        onward.start("pizza_order", "order-2", order("order-2", prep_seconds=120))
        wait_until(lambda: onward.events("order-2", "TimerStarted"), 20,
                   "order-2 resting after baking")
        assert onward.query("order-2", "status") == "resting"
        assert kitchen.net_charged("order-2", data_dir) == 1150

        assert onward.run("cancel", "order-2").returncode == 0
        code, outcome = onward.result("order-2")
    assert (code, outcome["status"]) == (1, "canceled")

    history = [e["type"] for e in onward.show("order-2")["history"]]
    assert history[-5:] == ["CancelRequested", "TimerCanceled", "ActivityScheduled",
                            "ActivityCompleted", "WorkflowCanceled"]
    assert len(onward.events("order-2", "ActivityCompleted", "kitchen.refund")) == 1
    assert onward.query("order-2", "status") == "refunded"
    assert kitchen.net_charged("order-2", data_dir) == 0
    assert kitchen.pizzas_baked("order-2", data_dir) == 1
    assert kitchen.deliveries(data_dir) == []


def test_order_cancelled_while_charging_waits_for_the_charge_then_refunds(
        tmp_path: Path, db_path: Path, data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))

    def charge_running() -> bool:
        pending = onward.show("order-3")["pending"]["activities"]
        return any(a["name"] == "kitchen.charge" and a["running"] for a in pending)

    # Hold the kitchen ledger's write lock: the charge attempt blocks inside the provider.
    till = sqlite3.connect(data_dir / "kitchen.sqlite3", isolation_level=None)
    try:
        till.execute("PRAGMA journal_mode=WAL")  # as the kitchen keeps it
        till.executescript(kitchen.SCHEMA)
        till.execute("BEGIN IMMEDIATE")
        with worker(db_path, onward.env, tmp_path):
            onward.start("pizza_order", "order-3", order("order-3"))
            wait_until(charge_running, 20, "the charge attempt of order-3 in flight")
            assert onward.run("cancel", "order-3").returncode == 0
            wait_until(lambda: onward.events("order-3", "CancelRequested"), 20,
                       "the cancel request in order-3's history")
            # The charge was shielded: the run waits for it instead of guessing.
            assert onward.query("order-3", "status") == "refunding"
            assert onward.show("order-3")["status"] == "running"
            till.execute("COMMIT")
            code, outcome = onward.result("order-3")
    finally:
        till.close()
    assert (code, outcome["status"]) == (1, "canceled")
    assert not onward.events("order-3", "ActivityAttemptFailed", "kitchen.charge")
    assert len(onward.events("order-3", "ActivityCompleted", "kitchen.charge")) == 1
    assert len(onward.events("order-3", "ActivityCompleted", "kitchen.refund")) == 1
    assert not onward.events("order-3", "ActivityScheduled", "kitchen.bake")
    assert kitchen.net_charged("order-3", data_dir) == 0
    assert kitchen.pizzas_baked("order-3", data_dir) == 0
    onward.assert_replays()
