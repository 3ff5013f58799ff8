"""Interleaved schedule operations against a model (hypothesis stateful): clock moves with
worker turns, triggers, backfills, pauses, unpauses, runs closing, under a random overlap
policy. After every step: each fire time has at most one run, every fire is accounted for
exactly once (fired, skipped, missed or buffered), the runs recorded match the count, and
the policies that allow one open run leave at most one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from onward import Engine
from onward import schedules as firing
from onward.schedule_spec import fire_iso

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "scheduled.py")
T0 = 1_796_083_200.0
EVERY = 60.0
EXAMPLES = int(os.environ.get("ONWARD_SCHEDULE_EXAMPLES", "25"))


class ScheduleMachine(RuleBasedStateMachine):
    """One schedule every minute (catch-up 90 s) of a workflow that stays open."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp()
        self.now = T0
        self.eng = Engine(Path(self.folder) / "m.db", flows=[FLOWS], clock=lambda: self.now)
        self.policy: str | None = None
        self.expected = 0  # fires that reached the schedule (each must be counted once)
        self.next = T0 + EVERY
        self.paused = False
        self.overlapped = False  # an allow_all backfill may leave several runs open

    def teardown(self) -> None:
        self.eng.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _ensure(self, policy: str) -> None:
        if self.policy is None:
            self.policy = policy
            self.eng.create_schedule("m", "held", every="1m", overlap=policy, catchup="90s")

    @rule(policy=st.sampled_from(firing.OVERLAP_POLICIES),
          seconds=st.sampled_from([0.5, 30.0, 60.0, 61.0, 150.0, 400.0]))
    def advance_and_turn(self, policy: str, seconds: float) -> None:
        self._ensure(policy)
        self.now += seconds
        with self.eng.advance_lock, self.eng.store.write() as tx:
            firing.fire_due(tx, self.eng.advancer, self.eng.new_id, self.now)
        if not self.paused:
            while self.next <= self.now:
                self.expected += 1
                self.next += EVERY

    @rule(policy=st.sampled_from(firing.OVERLAP_POLICIES))
    def trigger(self, policy: str) -> None:
        self._ensure(policy)
        if self.eng.trigger_schedule("m") != "exists":
            self.expected += 1

    @rule(policy=st.sampled_from(firing.OVERLAP_POLICIES), back=st.integers(1, 6),
          span=st.integers(1, 5), override=st.sampled_from([None, "allow_all"]))
    def backfill(self, policy: str, back: int, span: int, override: str | None) -> None:
        self._ensure(policy)
        start = self.now - back * EVERY
        end = min(self.now, start + span * EVERY)
        tally = self.eng.backfill_schedule("m", start, end, override)
        self.overlapped = self.overlapped or (override is not None and tally["started"] > 0)
        self.expected += tally["started"] + tally["skipped"] + tally["buffered"]

    @rule(policy=st.sampled_from(firing.OVERLAP_POLICIES))
    def pause(self, policy: str) -> None:
        self._ensure(policy)
        self.eng.pause_schedule("m", note="held")
        self.paused = True

    @rule(policy=st.sampled_from(firing.OVERLAP_POLICIES))
    def unpause(self, policy: str) -> None:
        self._ensure(policy)
        if self.paused:
            self.next = (self.now // EVERY + 1) * EVERY
        self.eng.unpause_schedule("m")
        self.paused = False

    @rule(index=st.integers(0, 5))
    def close_a_run(self, index: int) -> None:
        open_runs = [r["id"] for r in self.eng.list(status="running", limit=100)]
        if open_runs:
            self.eng.terminate(open_runs[index % len(open_runs)])

    @invariant()
    def every_fire_counted_once_and_no_fire_time_twice(self) -> None:
        if self.policy is None:
            return
        d = self.eng.describe_schedule("m")
        counts = d["counts"]
        pending = 1 if d["buffered"] is not None else 0
        assert counts["fired"] + counts["skipped"] + counts["missed"] + pending == \
            self.expected, (counts, d["buffered"], self.expected)
        with self.eng.store.read() as tx:
            per_id = tx.execute("SELECT workflow_id, count(*) FROM runs GROUP BY workflow_id")
            recorded = tx.execute("SELECT fire_time, workflow_id FROM schedule_runs")
        assert all(n == 1 for _, n in per_id), per_id
        assert len(per_id) == len(recorded) == counts["fired"]
        assert all(wid == f"m-{fire_iso(f)}" for f, wid in recorded)
        running = len(self.eng.list(status="running", limit=1000))
        if self.policy in ("skip", "buffer_one", "terminate_other") and not self.overlapped:
            assert running <= 1, running
        assert d["paused"] is self.paused


def test_interleaved_schedule_operations_keep_their_accounts() -> None:
    run_state_machine_as_test(ScheduleMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=15, deadline=None, database=None,
        suppress_health_check=list(HealthCheck)))
