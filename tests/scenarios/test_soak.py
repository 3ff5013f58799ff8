"""A short crash soak in the normal suite: the same harness as ``python -m tests.soak``.

Three workers run a mix of flows (parallel activities, timers, signals, manual tasks,
children, continue-as-new and, when present, the reimbursement flow paying through the
bank) while a killer SIGKILLs and restarts them. Every run must reach its expected result
and no completed activity may run again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.soak import SoakConfig, find_repeats, make_specs, run_soak

pytestmark = pytest.mark.slow


def test_short_soak_with_kills_keeps_every_guarantee(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    report = run_soak(SoakConfig(runs=80, workers=3, kills=8, seconds=14, concurrency=4,
                                 seed=20240601, settle_timeout=40, directory=tmp_path,
                                 log=lines.append))
    with capsys.disabled():
        print("\n" + "\n".join("  soak | " + line for line in report.lines()))
    assert report.kills == 8
    assert report.wrong_results == [], report.wrong_results
    assert report.violations == [] and report.duplicates == 0, report.violations
    assert report.bank_problems == [], report.bank_problems
    assert report.integrity == "ok"
    assert report.leftovers == [] and report.operator_errors == []
    assert report.executions >= report.runs
    assert report.ok


# ------------------------------------------------------------------- the checker itself


def test_the_repeat_checker_tells_in_flight_reruns_from_duplicates() -> None:
    lost = {"error": {"type": "WorkerLost"}}
    recorded = {
        "k1": [("ActivityAttemptFailed", 1, lost), ("ActivityCompleted", 2, {})],
        "k2": [("ActivityCompleted", 1, {})],
        "k3": [("ActivityCompleted", 1, {})],
        "k4": [("ActivityCompleted", 1, {}), ("ActivityCompleted", 2, {})],
        "k5": [("ActivityAttemptFailed", 1, {"error": {"type": "RuntimeError"}})],
    }
    executed = {"k1": [1, 2], "k2": [1, 1], "k3": [1, 2], "k4": [1, 2], "k5": [1, 2]}
    violations, reruns, worker_lost = find_repeats(executed, recorded)
    assert reruns == 1 and worker_lost == 1
    text = "\n".join(violations)
    assert "k1" not in text
    assert "k2: attempt(s) [1] ran more than once" in text
    assert "k3: ran after its attempt 1 completed" in text
    assert "k4 completed 2 times" in text
    assert "k5: attempt(s) [2] ran but are not in history" in text


def test_the_mix_covers_every_flow_kind() -> None:
    import random
    specs = make_specs(400, random.Random(1), samples=True)
    assert {s.kind for s in specs} == {"fan", "timer", "signal", "task", "parent", "loop",
                                       "mixed", "reimbursement"}
    assert len({s.id for s in specs}) == 400


@pytest.mark.postgres
def test_short_soak_on_postgres_with_pid_namespaces_and_operators_keeps_every_guarantee(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Workers each in a PID namespace of their own, on PostgreSQL, while two operator
    threads start, rerun, signal, cancel twice, terminate, retry and reset op-* ids."""
    from tests import pg
    if pg.unavailable():
        pytest.skip(pg.unavailable() or "")
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("PID namespaces need root and unshare")
    lines: list[str] = []
    report = run_soak(SoakConfig(runs=40, workers=3, kills=5, seconds=12, concurrency=4,
                                 seed=20261207, settle_timeout=40, directory=tmp_path,
                                 log=lines.append, db=pg.BASE_URL, pid_namespaces=True,
                                 operators=2, samples=False))
    with capsys.disabled():
        print("\n" + "\n".join("  soak | " + line for line in report.lines()))
    assert report.false_deaths == [], report.false_deaths
    assert report.operator_problems == [], report.operator_problems
    assert report.violations == [] and report.wrong_results == [], report.violations
    assert report.integrity == "ok" and report.leftovers == []
    assert report.ok
