"""``Engine.list(order="attention")``, ``Engine.next_due`` and ``Engine.recent_steps`` on
SQLite and PostgreSQL: the SQL against a plain-Python statement of the same rule, over
generated runs (hypothesis), and with paging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onward import Engine

NOW = 1_800_000_000.0

run_st = st.fixed_dictionaries({
    "status": st.sampled_from(["running", "completed", "failed", "canceled", "terminated"]),
    "stuck": st.booleans(), "retrying": st.booleans(),
    "updated": st.integers(0, 50),  # few values: ties happen
    "task": st.sampled_from([None, "open-late", "open-later", "done-late"]),
    "current": st.booleans(),
})


def rank(run: dict[str, Any]) -> int:
    """The rule, said plainly: stuck, failed, retrying, overdue task, then everything else."""
    running = run["status"] == "running"
    if running and run["stuck"]:
        return 0
    if run["status"] == "failed":
        return 1
    if running and run["retrying"]:
        return 2
    if running and run["task"] == "open-late":
        return 3
    return 4


def _fill(engine: Engine, runs: list[dict[str, Any]]) -> None:
    with engine.store.write() as tx:
        tx.execute("DELETE FROM manual_tasks")
        tx.execute("DELETE FROM runs")
        for n, run in enumerate(runs):
            tx.execute(
                "INSERT INTO runs (run_id, workflow_id, workflow, status, started, updated, "
                "stuck, retrying, is_current, lineage) VALUES (?, ?, 'w', ?, ?, ?, ?, ?, ?, ?)",
                (f"r{n}", f"id-{n:03d}", run["status"], NOW - 100, NOW - 100 + run["updated"],
                 int(run["stuck"]), int(run["retrying"]), int(run["current"]), f"r{n}"))
            if run["task"]:
                status = "open" if run["task"].startswith("open") else "completed"
                deadline = NOW - 5 if run["task"].endswith("-late") else NOW + 5
                tx.execute(
                    "INSERT INTO manual_tasks (task_id, run_id, workflow_id, workflow, ref, "
                    "kind, created, deadline, status) VALUES (?, ?, ?, 'w', 1, 'k', ?, ?, ?)",
                    (f"t{n}", f"r{n}", f"id-{n:03d}", NOW - 50, deadline, status))


def test_attention_order_matches_the_rule(any_db: str | Path) -> None:
    engine = Engine(any_db, clock=lambda: NOW)  # one engine: examples only refill tables

    @settings(max_examples=30, deadline=None)
    @given(runs=st.lists(run_st, max_size=25), page=st.integers(1, 7))
    def check(runs: list[dict[str, Any]], page: int) -> None:
        _fill(engine, runs)
        listed = [r["id"] for r in engine.list(order="attention")]
        shown = [(f"id-{n:03d}", f"r{n}", run) for n, run in enumerate(runs) if run["current"]]
        # The rule's keys, then the run id (newest-looking first) so ties have one order.
        by_run_id = sorted(shown, key=lambda s: s[1], reverse=True)
        expected = [ident for ident, _, run in sorted(
            by_run_id, key=lambda s: (rank(s[2]), -s[2]["updated"]))]
        assert listed == expected
        paged: list[str] = []
        while len(paged) < len(listed):
            paged += [r["id"] for r in engine.list(order="attention", limit=page,
                                                   offset=len(paged))]
        assert paged == listed  # pages neither repeat nor skip a run, ties included
        status = {ident: run["status"] for ident, _, run in shown}
        failed_only = [r["id"] for r in engine.list("failed", order="attention")]
        assert failed_only == [i for i in listed if status[i] == "failed"]
        for order in ("updated", "started", "id", "workflow", "status"):
            whole = [r["run_id"] for r in engine.list("all", order=order, all_runs=True)]
            pages: list[str] = []
            while len(pages) < len(whole):
                pages += [r["run_id"] for r in engine.list("all", order=order, all_runs=True,
                                                           limit=page, offset=len(pages))]
            assert pages == whole, order

    try:
        check()
    finally:
        engine.close()


def test_next_due_and_recent_steps(any_db: str | Path) -> None:
    engine = Engine(any_db, clock=lambda: NOW)
    try:
        _fill(engine, [{"status": "running", "stuck": False, "retrying": True, "updated": 99,
                        "task": "open-later", "current": True}])
        with engine.store.write() as tx:
            tx.execute("INSERT INTO activity_tasks (run_id, ref, name, args, options, attempt, "
                       "due, scheduled) VALUES ('r0', 1, 'a', '[]', '{}', 3, ?, ?)",
                       (NOW + 42, NOW - 60))
            # Fractions below one half: PostgreSQL's CAST rounds where SQLite's truncates.
            for seq, (type_, at) in enumerate([("ActivityAttemptFailed", NOW - 2.8),
                                               ("ActivityAttemptFailed", NOW - 61.8),
                                               ("MarkerRecorded", NOW - 2.6),
                                               ("MarkerRecorded", NOW - 0.7),
                                               ("MarkerRecorded", NOW - 500)], start=1):
                tx.execute("INSERT INTO events (run_id, seq, type, time, attrs) VALUES "
                           "('r0', ?, ?, ?, '{}')", (seq, type_, at))
        due = engine.next_due(["r0", "nope"])
        assert list(due) == ["r0"]
        assert due["r0"]["retry"] is not None and due["r0"]["retry"].startswith("2027-01-15")
        assert due["r0"]["deadline"] is not None
        steps = engine.recent_steps(120)
        assert len(steps["events"]) == len(steps["failures"]) == 120
        # The last entry is the second now is in; NOW - 0.7 is in the one before.
        assert steps["events"][-2] == 1 and steps["events"][-4] == 2
        assert steps["failures"][-4] == 1 and steps["failures"][-63] == 1
        assert sum(steps["events"]) == 4  # the event 500 s ago is outside the window
        assert sum(steps["failures"]) == 2
    finally:
        engine.close()
