"""Repairs never silently discard real work, and act on an id's current run only.

Driven through the ``onward`` CLI against real worker processes: the pizza saga from the
samples (charged, bake failed, refunded) and an id with an older run next to its current one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from onward.plugins import kitchen
from tests.helpers import REPO, WorkerProcess, cli, cli_json, env_for

pytestmark = pytest.mark.slow

SAMPLES = REPO / "sample_flows"
PLUGINS = REPO / "plugins"
RACES = REPO / "tests" / "flows" / "races.py"


class Onward:
    """The CLI on one database."""

    def __init__(self, db: Path, env: dict[str, str]) -> None:
        self.db, self.env = db, env

    def run(self, *args: str) -> Any:
        return cli(*args, "--db", str(self.db), env=self.env)

    def json(self, *args: str) -> Any:
        return cli_json(*args, "--db", str(self.db), env=self.env)

    def runs(self, ident: str) -> list[dict[str, Any]]:
        return [r for r in self.json("list", "--all") if r["id"] == ident]

    def result(self, ident: str) -> tuple[int, Any]:
        done = self.run("result", ident, "--wait", "30", "--json")
        assert done.returncode != 3, f"{ident} still open: {done.stderr}"
        return done.returncode, json.loads(done.stdout)


def test_retry_of_a_failed_pizza_saga_keeps_the_refund_unless_the_operator_consents(
        tmp_path: Path, db_path: Path, data_dir: Path) -> None:
    onward = Onward(db_path, env_for(data_dir))
    order = {"order_id": "o-9", "pizza": "margherita", "cents": 1150,
             "address": "1 Canal St", "retry_seconds": 0.05}
    (data_dir / "kitchen.out_of_dough").touch()
    with WorkerProcess(db_path, flows=[SAMPLES], plugins=[PLUGINS], env=onward.env,
                       log=tmp_path / "worker.log"):
        onward.json("start", "pizza_order", "--id", "o-9", "--input", json.dumps(order),
                    "--flows", str(SAMPLES))
        code, outcome = onward.result("o-9")
        assert (code, outcome["status"]) == (1, "failed")
        assert kitchen.net_charged("o-9", data_dir) == 0  # charged, then refunded
        (data_dir / "kitchen.out_of_dough").unlink()  # the kitchen has dough again

        history = onward.json("show", "o-9")["history"]
        refund = next(e for e in history if e["type"] == "ActivityCompleted"
                      and e["attrs"]["name"] == "kitchen.refund")
        bake = next(e for e in history if e["type"] == "ActivityScheduled"
                    and e["attrs"]["name"] == "kitchen.bake")

        refused = onward.run("retry", "o-9")
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip() == (
            "onward: retry would discard completed activities: kitchen.refund (event "
            f"{refund['seq']}); pass --discard-completed to accept")
        refused = onward.run("reset", "o-9", "--event", str(bake["seq"] - 1))
        assert refused.returncode == 2 and "kitchen.refund" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert [r["status"] for r in onward.runs("o-9")] == ["failed"]  # nothing changed

        # With consent the new run bakes and delivers: the operator chose that.
        done = onward.run("retry", "o-9", "--discard-completed")
        assert done.returncode == 0, done.stderr
        code, outcome = onward.result("o-9")
    assert (code, outcome["status"]) == (0, "delivered")
    assert kitchen.pizzas_baked("o-9", data_dir) == 1
    # The charge was kept from history (not taken again) and the refund really happened:
    # the free pizza the operator was warned about and accepted.
    assert kitchen.net_charged("o-9", data_dir) == 0
    assert sorted(r["status"] for r in onward.runs("o-9")) == ["completed", "failed"]


def test_retry_and_reset_by_an_old_run_id_are_refused_naming_the_current_run(
        tmp_path: Path, db_path: Path) -> None:
    onward = Onward(db_path, env_for())
    with WorkerProcess(db_path, flows=[RACES], env=onward.env, log=tmp_path / "worker.log"):
        old = onward.json("start", "fails_at_once", "--id", "x", "--flows", str(RACES))
        assert onward.result("x")[0] == 1
        assert onward.run("retry", "x").returncode == 0
        assert onward.result("x")[0] == 1
        current = onward.json("show", "x")["run_id"]
        assert current != old["run_id"]

        for command in (["retry", old["run_id"]], ["retry", old["run_id"], "--discard-completed"],
                        ["reset", old["run_id"], "--event", "1"]):
            refused = onward.run(*command)
            assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
            assert refused.stderr.strip() == (
                f"onward: run {old['run_id']} is not the current run of x; its current run "
                f"is {current} (failed): act on x")
        assert len(onward.runs("x")) == 2  # nothing started beside the current run

        # the current run's own id is accepted
        assert onward.run("retry", current).returncode == 0
    assert len(onward.runs("x")) == 3
