"""``python -m bench`` keeps working: a quick run of its first sections, figures not judged.

Timings belong to the benchmark itself; this only checks that it runs, reports every
figure, and counts what is deterministic (commits per sequential workflow).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]


def test_quick_bench_reports_the_ceiling_and_four_commits_per_sequential_workflow(
        tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "limit,onward-seq",
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["errors"] == {}
    limit, seq = report["figures"]["limit"], report["figures"]["onward-seq"]
    assert limit["txn_per_s"] > 0 and limit["workflow_sql_per_s"] > 0
    assert seq["workflows"] == 50
    # the start and one per step; a dispatcher turn of upkeep may add one now and then
    assert 4.0 <= seq["commits_per_workflow"] <= 4.1
    labels = {row["label"] for row in report["rows"]}
    assert "a 3-step workflow's SQL alone, sequential: steps/s" in labels
    assert "sequential: durable steps/s" in labels
