"""``python -m bench`` keeps working: quick runs of its sections, figures not judged.

Timings belong to the benchmark itself; these only check that it runs, reports every
figure and a "leaves out" line per section, that every caller got its own results, and
count what is deterministic (commits per sequential workflow).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).parents[2]


def _bench(tmp_path: Path, sections: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", sections, "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["errors"] == {}
    assert done.stdout.count("leaves out: ") == len(sections.split(",")), done.stdout
    return report, done.stdout


@pytest.mark.timeout(300)
def test_quick_bench_reports_every_shape_with_its_starts_counted(tmp_path: Path) -> None:
    report, _ = _bench(tmp_path, "limit,seq,drain,stream,threads,processes")
    figures = report["figures"]
    limit, seq = figures["limit"], figures["seq"]
    assert limit["txn_per_s"] > 0 and limit["workflow_sql_per_s"] > 0
    assert seq["workflows"] == 50
    # the start and one per step; a dispatcher turn of upkeep may add one now and then
    assert 4.0 <= seq["commits_per_workflow"] <= 4.1
    assert 0 < seq["p50_ms"] <= seq["p99_ms"]
    assert figures["drain"]["inprocess"]["workflows"] == 200
    drained = figures["drain"]["processes"]
    # Both processes were launched; at --quick's 200 runs the first may drain them all
    # before the second has registered (a process start is a few tenths of a second).
    assert drained["processes"] == 2 and 1 <= drained["workers_registered"] <= 2
    stream = figures["stream"]
    assert stream["workflows"] == 200
    # the starts are counted: never more commits than one sequential workflow makes
    assert 0 < stream["commits_per_workflow"] <= 4.1
    for callers in ("8", "32"):
        threads = figures["threads"][callers]
        assert threads["failures"] == []
        assert len(threads["per_caller_calls"]) == int(callers)
        assert min(threads["per_caller_calls"]) >= 1  # every caller got its own result
        assert threads["calls"] == sum(threads["per_caller_calls"])
        assert 0 < threads["p50_ms"] <= threads["p99_ms"]
    for variant, worker_processes in (("in_process_workers", 0), ("worker_process", 1)):
        processes = figures["processes"][variant]
        assert processes["worker_processes"] == worker_processes
        assert processes["processes"] == 2 and len(processes["per_process_calls"]) == 2
        assert min(processes["per_process_calls"]) >= 8  # each of a client's 8 callers did one
    # with the runs in a worker process, a client's own commits are its starts: one each
    # at most (group commit may make it fewer)
    assert 0 < figures["processes"]["worker_process"]["commits_per_workflow"] <= 1.05
    labels = {row["label"] for row in report["rows"]}
    assert {"a 3-step workflow's SQL alone, sequential: steps/s",
            "sequential: durable steps/s", "32 caller threads: p99 start → result",
            "2 client processes × 8 callers, 1 worker process, start → result: wf/s"
            } <= labels
    drained = {row["section"] for row in report["rows"] if row["vs_drain"] is not None}
    assert {"stream", "threads", "processes"} <= drained


@pytest.mark.timeout(300)
def test_quick_bench_runs_dbos_and_dura_or_says_why_not(tmp_path: Path) -> None:
    report, stdout = _bench(tmp_path, "dbos,dura")
    figures = report["figures"]
    if figures["dbos"] is None:
        assert "skipped: `import dbos` fails" in stdout
    else:
        assert figures["dbos"]["wal"]["seq"]["workflows"] == 50
    if figures["dura"] is None:
        assert "skipped dura: " in stdout
    else:
        dura, onward = figures["dura"]["dura"], figures["dura"]["onward"]
        assert dura["workflows"] == onward["workflows"] == 50
        assert dura["python"] == onward["python"]
        assert tuple(int(x) for x in dura["python"].split(".")[:2]) >= (3, 13)
        assert 4.0 <= onward["commits_per_workflow"] <= 4.1
        assert figures["dura"]["onward_vs_dura"] > 0


def test_latency_percentiles_are_per_call_and_in_milliseconds() -> None:
    from bench.shapes import latency_stats
    stats = latency_stats([k / 1000 for k in range(1, 101)])  # 1 ms .. 100 ms
    assert stats["p50_ms"] == pytest.approx(51.0)
    assert stats["p99_ms"] == pytest.approx(100.0)
    assert stats["max_ms"] == pytest.approx(100.0)
    assert stats["mean_ms"] == pytest.approx(50.5)


def test_summary_markdown_has_every_row_its_ratios_and_verdict() -> None:
    from bench.report import Report, Row
    rep = Report()
    rep.rows += [Row("threads", "32 caller threads: wf/s", 882.0, "wf/s", vs_limit=0.31,
                     vs_drain=0.336, target="≥ 0.9× drain", ok=False),
                 Row("dura", "Onward seq: wf/s", 700.0, "wf/s", vs_dura=0.9)]
    lines = rep.markdown().splitlines()
    assert lines[2] == ("| threads | 32 caller threads: wf/s | 882 wf/s | 0.31 × limit, "
                        "0.34 × drain | ≥ 0.9× drain: MISS |")
    assert lines[3] == "| dura | Onward seq: wf/s | 700 wf/s | 0.90 × dura |  |"


def test_a_ratio_just_under_its_target_is_not_rounded_up_to_it() -> None:
    from bench.report import fmt_ratio
    assert fmt_ratio(0.8996) == "0.899" and fmt_ratio(1.2496) == "1.249"
    assert fmt_ratio(0.9996) == "0.999" and fmt_ratio(4.996) == "4.996"
    assert fmt_ratio(0.336) == "0.34" and fmt_ratio(0.9004) == "0.90"
