"""The sections that load Onward in the shapes applications do (and dura beside it).

    dura       dura 1.3 and Onward's seq shape on the same Python >= 3.13 (a venv of its own)
    seq        one caller: start → result, one after another
    drain      runs pre-started with no worker, then drained (the only shape that leaves
               starts out): an in-process worker, and 2 worker processes
    stream     one caller starts runs back to back while the worker drains them
    threads    8 and 32 caller threads in one process, each start → result in a loop
    processes  2 client processes, each with its own Engine and 8 callers: with an in-process
               worker each, and with none (one ``onward worker`` process runs the runs)

Each prints a "leaves out" line, then figures with their ratios: "× limit" (steps/s over the
1-row commit rate), "× drain" (over the in-process drain), "× DBOS" (DBOS with WAL set by
hand, same shape) and "× dura" (same Python).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from . import onward_bench as ob
from . import shapes
from .common import BenchError, run_child
from .limit import commit_rate
from .report import Report, Row, ratio
from .sizes import Sizes


# -- shared helpers -----------------------------------------------------------------------
def limit_of(rep: Report) -> float | None:
    """The 1-row commit rate of section ``limit`` (None when it did not run: callers then
    use the rate re-measured just before their figure)."""
    return (rep.figures.get("limit") or {}).get("txn_per_s")


def dbos_of(rep: Report, kind: str) -> float | None:
    """DBOS's steps/s with WAL set by hand (its faster set-up) for ``seq``/``concurrent``."""
    return (((rep.figures.get("dbos") or {}).get("wal") or {}).get(kind) or {}).get(
        "steps_per_s")


def drain_of(rep: Report) -> float | None:
    """The in-process drain's workflows/s (section ``drain``), the "× drain" reference."""
    return ((rep.figures.get("drain") or {}).get("inprocess") or {}).get("workflows_per_s")


def at_least(value: float | None, floor: float) -> bool | None:
    return None if value is None else value >= floor


def limit_now(rep: Report, tmp: Path, sizes: Sizes, name: str) -> float:
    """The 1-row commit rate re-measured just before a throughput figure (disks are shared)."""
    rate, _, _ = commit_rate(tmp / f"limit-recheck-{name}.db", 1, sizes.limit_seconds / 4)
    rep.figures.setdefault("limit_rechecks", {})[name] = rate
    return rate


def vs_now(value: float, now: float) -> str:
    return f"limit re-measured just before: {now:,.0f} txn/s, {value / now:.2f}× that"


def leaves_out(rep: Report, text: str) -> None:
    rep.note(f"leaves out: {text}")


def _json_line(done: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    if done.returncode != 0:
        raise BenchError(f"{what} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    for line in reversed(done.stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise BenchError(f"{what} printed no figures: {done.stdout[-400:]}")


# -- dura ---------------------------------------------------------------------------------
def section_dura(rep: Report, tmp: Path, sizes: Sizes) -> None:
    from .py313 import venv_python
    leaves_out(rep, "concurrency and dura's worker pool: dura has no call that waits for a "
                    "result, so one thread spawns, claims, runs and completes each task "
                    "(no hand-off, no polling: its most favourable set-up)")
    python, how = venv_python()
    if python is None:
        rep.figures["dura"] = None
        rep.note(f"skipped dura: {how}")
        return
    rep.note(how)
    rounds: dict[str, list[dict[str, Any]]] = {"dura": [], "onward": []}
    for k in range(2):  # alternated, so neither always runs on the disk's better moment
        rounds["dura"].append(_json_line(run_child(
            [str(python), "-m", "bench.dura_bench", "--db", str(tmp / f"dura-{k}.db"),
             "--n", str(sizes.seq)], timeout=600), "dura"))
        onward_dir = tmp / f"dura-onward-{k}"
        onward_dir.mkdir()
        rounds["onward"].append(_json_line(run_child(
            [str(python), "-m", "bench.seq_child", "--dir", str(onward_dir),
             "--n", str(sizes.seq)], timeout=600), "Onward seq on dura's Python"))
    dura, onward = (max(rounds[who], key=lambda f: f["workflows_per_s"])
                    for who in ("dura", "onward"))
    rates = {who: ", ".join(f"{f['workflows_per_s']:.0f}" for f in figs)
             for who, figs in rounds.items()}
    rep.note(f"each ran twice, alternated; the better of each is used: dura {rates['dura']}, "
             f"Onward {rates['onward']} wf/s")
    vs = ratio(onward["workflows_per_s"], dura["workflows_per_s"])
    rep.figures["dura"] = {"dura": dura, "onward": onward, "onward_vs_dura": vs,
                           "rounds": rounds}
    rep.note(f"dura {dura['dura']} on Python {dura['python']}: SQLite journal_mode="
             f"{dura['sqlite']['journal_mode']}, synchronous={dura['sqlite']['synchronous']}; "
             "each step a checkpoint (6 commits per workflow)")
    rep.add(Row("dura", f"dura, sequential ({sizes.seq}): workflows/s",
                dura["workflows_per_s"], "wf/s", ratio(dura["steps_per_s"], limit_of(rep)),
                note=f"p50 {dura['p50_ms']:.2f} ms, p99 {dura['p99_ms']:.2f} ms"))
    rep.add(Row("dura", f"Onward seq on the same Python {onward['python']}: wf/s",
                onward["workflows_per_s"], "wf/s", ratio(onward["steps_per_s"], limit_of(rep)),
                target="≥ 1.25× dura", ok=at_least(vs, 1.25), vs_dura=vs,
                note=f"p50 {onward['p50_ms']:.2f} ms, p99 {onward['p99_ms']:.2f} ms; "
                     f"{onward['commits_per_workflow']:.2f} commits per workflow"))


# -- seq ----------------------------------------------------------------------------------
def section_seq(rep: Report, tmp: Path, sizes: Sizes) -> None:
    leaves_out(rep, "concurrency: one caller, one run at a time (the in-process worker's "
                    "threads run the steps)")
    now = limit_now(rep, tmp, sizes, "seq")
    fig = ob.sequential(tmp, sizes.seq, sizes.probe)
    rep.figures["seq"] = fig
    limit, dbos = limit_of(rep) or now, dbos_of(rep, "seq")
    sqlite = fig["sqlite"]
    rep.note(f"engine's SQLite connection: journal_mode={sqlite['journal_mode']}, "
             f"synchronous={sqlite['synchronous']} (2 = FULL)")
    vs_dbos = ratio(fig["steps_per_s"], dbos)
    rep.add(Row("seq", f"sequential ({sizes.seq}): workflows/s", fig["workflows_per_s"],
                "wf/s", vs_dbos=vs_dbos, target="≥ 5× DBOS (WAL)", ok=at_least(vs_dbos, 5.0),
                note=f"p50 {fig['p50_ms']:.2f} ms, p99 {fig['p99_ms']:.2f} ms"))
    vs = ratio(fig["steps_per_s"], limit)
    rep.add(Row("seq", "sequential: durable steps/s", fig["steps_per_s"], "steps/s",
                vs, vs_dbos, "≥ 0.5× limit", at_least(vs, 0.5),
                note=vs_now(fig["steps_per_s"], now)))
    shaped = (rep.figures.get("limit") or {}).get("workflow_sql_per_s")
    if shaped:
        engine_us = 1e6 / fig["workflows_per_s"] - 1e6 / shaped
        budget_us = 6e6 / limit - 1e6 / shaped  # what 0.5× leaves beside the SQL alone
        if engine_us > 0:
            rep.note(f"per workflow: the SQL alone {1e6 / shaped:,.0f} µs, the engine "
                     f"{engine_us:,.0f} µs more; 0.5× the limit would leave it "
                     f"{budget_us:,.0f} µs")
        else:
            rep.note(f"per workflow: the SQL alone measured {1e6 / shaped:,.0f} µs in section "
                     "limit, more than a whole workflow here: the disk's rate moved between "
                     "the two")
    rep.add(Row("seq", "sequential: SQLite commits per workflow",
                fig["commits_per_workflow"], "commits",
                note=f"{fig['commits_per_step']:.2f} per step"))
    rep.add(Row("seq", "sequential: fsyncs per workflow", fig["fsyncs_per_workflow"],
                "fsync", note=fig.get("fsync_note", "")))


# -- drain --------------------------------------------------------------------------------
def section_drain(rep: Report, tmp: Path, sizes: Sizes) -> None:
    leaves_out(rep, "the starts: runs are pre-started with no worker running, and the clock "
                    "starts with the worker (every other shape counts its starts)")
    now = limit_now(rep, tmp, sizes, "drain")
    limit, dbos = limit_of(rep) or now, dbos_of(rep, "concurrent")
    a = ob.concurrent_inprocess(tmp, sizes.concurrent)
    rep.figures["drain"] = {"inprocess": a}
    rep.note(f"started {a['workflows']} runs in {a['start_seconds']:.1f}s "
             f"({a['starts_per_s']:.0f}/s, one commit each, not timed), then drained")
    vs = ratio(a["steps_per_s"], limit)
    rep.add(Row("drain", f"1 in-process worker ×32 ({sizes.concurrent}): wf/s",
                a["workflows_per_s"], "wf/s", vs_dbos=ratio(a["steps_per_s"], dbos)))
    rep.add(Row("drain", "1 in-process worker ×32: steps/s", a["steps_per_s"],
                "steps/s", vs, ratio(a["steps_per_s"], dbos), "≥ 1.0× limit",
                at_least(vs, 1.0), note=vs_now(a["steps_per_s"], now)))
    rep.add(Row("drain", "1 in-process worker ×32: commits per workflow",
                a["commits_per_workflow"], "commits", note="start excluded"))
    now = limit_now(rep, tmp, sizes, "drain-processes")
    b = ob.concurrent_processes(tmp, sizes.concurrent)
    rep.figures["drain"]["processes"] = b
    vs = ratio(b["steps_per_s"], limit)
    rep.add(Row("drain", f"2 worker processes ×32 ({sizes.concurrent}): wf/s",
                b["workflows_per_s"], "wf/s", vs_dbos=ratio(b["steps_per_s"], dbos),
                vs_drain=ratio(b["workflows_per_s"], a["workflows_per_s"])))
    rep.add(Row("drain", "2 worker processes ×32: steps/s", b["steps_per_s"],
                "steps/s", vs, ratio(b["steps_per_s"], dbos), "≥ 1.0× limit",
                at_least(vs, 1.0),
                note=f"{vs_now(b['steps_per_s'], now)}; "
                     f"{b['steps_per_s_incl_process_start']:.0f} steps/s counting "
                     f"interpreter start, {b['seconds_incl_process_start']:.2f}s"))


# -- stream -------------------------------------------------------------------------------
def section_stream(rep: Report, tmp: Path, sizes: Sizes) -> None:
    leaves_out(rep, "a caller waiting on each result before its next start (one caller "
                    "starts all runs back to back; results are read after the last start)")
    now = limit_now(rep, tmp, sizes, "stream")
    fig = shapes.stream(tmp, sizes.stream)
    rep.figures["stream"] = fig
    vs_drain = ratio(fig["workflows_per_s"], drain_of(rep))
    rep.add(Row("stream", f"1 caller streams {sizes.stream} starts, worker ×32: wf/s",
                fig["workflows_per_s"], "wf/s", ratio(fig["steps_per_s"], limit_of(rep) or now),
                target="≥ 0.9× drain", ok=at_least(vs_drain, 0.9), vs_drain=vs_drain,
                note=f"first start → last completion, {fig['seconds']:.2f}s; starts ran at "
                     f"{fig['starts_per_s']:,.0f}/s; {vs_now(fig['steps_per_s'], now)}"))
    rep.add(Row("stream", "stream: SQLite commits per workflow (start included)",
                fig["commits_per_workflow"], "commits"))


# -- threads ------------------------------------------------------------------------------
def section_threads(rep: Report, tmp: Path, sizes: Sizes) -> None:
    leaves_out(rep, "other processes: one Engine and its in-process worker (×32) serve all "
                    "caller threads; each caller waits for its own result before starting "
                    "again")
    rep.figures["threads"] = {}
    for callers in (8, 32):
        now = limit_now(rep, tmp, sizes, f"threads-{callers}")
        fig = shapes.threads(tmp, callers, sizes.thread_seconds)
        rep.figures["threads"][callers] = fig
        _closed_loop_rows(rep, "threads", f"{callers} caller threads", fig, now,
                          strict=callers == 32)


def _closed_loop_rows(rep: Report, section: str, who: str, fig: dict[str, Any],
                      now: float, *, strict: bool) -> None:
    """wf/s (with its ratios), p50 and p99 of callers that each start → result in a loop."""
    vs_drain = ratio(fig["workflows_per_s"], drain_of(rep))
    rep.add(Row(section, f"{who}, start → result: wf/s", fig["workflows_per_s"], "wf/s",
                ratio(fig["steps_per_s"], limit_of(rep) or now), vs_drain=vs_drain,
                target="≥ 0.9× drain" if strict else "",
                ok=at_least(vs_drain, 0.9) if strict else None,
                note=f"{fig['calls']:,} calls in {fig['seconds']:.2f}s; "
                     f"{fig.get('commits_what', 'commits per workflow')}: "
                     f"{fig['commits_per_workflow']:.2f}; "
                     f"{vs_now(fig['steps_per_s'], now)}"))
    rep.add(Row(section, f"{who}: p50 start → result", fig["p50_ms"], "ms"))
    rep.add(Row(section, f"{who}: p99 start → result", fig["p99_ms"], "ms",
                target="≤ 25 ms" if strict else "",
                ok=fig["p99_ms"] <= 25 if strict else None,
                note=f"max {fig['max_ms']:.1f} ms, mean {fig['mean_ms']:.1f} ms"))


# -- processes ----------------------------------------------------------------------------
def section_processes(rep: Report, tmp: Path, sizes: Sizes) -> None:
    leaves_out(rep, "more machines: all processes share one SQLite file and 2 cores; "
                    "a run may be completed by another process than its caller's")
    rep.figures["processes"] = {}
    for workers, who in ((0, "2 client processes × 8 callers, in-process workers"),
                         (1, "2 client processes × 8 callers, 1 worker process")):
        now = limit_now(rep, tmp, sizes, f"processes-{workers}w")
        fig = shapes.processes(tmp, 2, 8, sizes.process_seconds, worker_processes=workers)
        rep.figures["processes"]["in_process_workers" if not workers else "worker_process"] \
            = fig
        rep.note(f"{who}: {fig['worker']}; calls per client process: "
                 f"{', '.join(f'{c:,}' for c in fig['per_process_calls'])}")
        _closed_loop_rows(rep, "processes", who, fig, now, strict=False)
