"""``python -m bench``: every benchmark section in one sitting, figures and ratios.

    python -m bench                 full sizes (a few minutes)
    python -m bench --quick         small sizes, a smoke run (well under a minute)
    python -m bench --only limit,onward-seq
    python -m bench --keep          keep the database files (the path is printed)

Sections (run in this order, so that later lines can show ratios to earlier ones):
  limit              APSW, WAL, synchronous=FULL: 1-row commits/s and 10-row commits
  dbos               DBOS Transact on SQLite, same 3-step workflow (if ``dbos`` imports),
                     as DBOS sets SQLite up and with WAL set by hand
  onward-seq         workflows one after another with an in-process worker
  onward-concurrent  all started, then drained: in-process worker, and 2 worker processes
  replay             rebuild a 10,000-event history; the replay check over many histories
  recovery           kill -9 mid-activity: a new worker process, a running second worker
  memory             peak RSS of a worker process holding runs that wait on manual tasks
  postgres           the PostgreSQL store: drained by 1, 2 and 4 worker processes, recovery,
                     DBOS on PostgreSQL (skipped when the server is unreachable; $ONWARD_PG_URL)
  console            the runs screen's store reads on 10,000 runs / 1,000,000 events, and the
                     real console under Textual's Pilot (first rows, cursor keys)

Ratios are to the 1-row commit rate measured on the same disk ("× limit") and to DBOS's
figure for the same shape of work ("× DBOS", the faster of its two SQLite set-ups).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import onward_bench as ob
from .common import REPO, SCRATCH, BenchError, kill_children, remove_dir, run_child, scratch_dir
from .limit import commit_rate, commit_windows, workflow_sql_rate

SECTIONS = ("limit", "dbos", "onward-seq", "onward-concurrent", "updates", "replay",
            "recovery", "memory", "postgres", "console")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    seq: int
    concurrent: int
    activities: int
    histories: int
    waiting: int
    limit_seconds: float
    probe: tuple[int, int]
    pg: int
    console_runs: int
    console_reps: int


FULL = Sizes(seq=500, concurrent=2000, activities=5000, histories=10_000, waiting=10_000,
             limit_seconds=2.0, probe=(20, 120), pg=2000, console_runs=10_000,
             console_reps=20)
QUICK = Sizes(seq=50, concurrent=200, activities=1000, histories=1000, waiting=1000,
              limit_seconds=1.0, probe=(5, 25), pg=200, console_runs=1000, console_reps=10)


@dataclass
class Row:
    """One printed figure."""

    section: str
    label: str
    value: float | None
    unit: str
    vs_limit: float | None = None
    vs_dbos: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_ratio(value: float) -> str:
    """Two decimals, or three where two would round a miss up to its target (0.997 → 1.00)."""
    two = f"{value:.2f}"
    return f"{value:.3f}" if float(two) != value and round(value, 2) in (0.5, 1.0) else two


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return a / b


class Report:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.figures: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def add(self, row: Row) -> None:
        self.rows.append(row)
        parts = [f"  {row.label:<44} {fmt(row.value):>10} {row.unit:<12}"]
        if row.vs_limit is not None:
            parts.append(f"{fmt_ratio(row.vs_limit):>6}× limit")
        if row.vs_dbos is not None:
            parts.append(f"{row.vs_dbos:6.2f}× DBOS")
        if row.target:
            verdict = {True: "ok", False: "MISS", None: "?"}[row.ok]
            parts.append(f"[target {row.target}: {verdict}]")
        if row.note:
            parts.append(f"({row.note})")
        print("  ".join(parts), flush=True)

    def note(self, text: str) -> None:
        print(f"    {text}", flush=True)

    def table(self) -> None:
        head = ("section", "figure", "value", "unit", "×limit", "×DBOS", "target", "")
        lines = [head] + [
            (r.section, r.label, fmt(r.value), r.unit,
             "" if r.vs_limit is None else fmt_ratio(r.vs_limit),
             "" if r.vs_dbos is None else f"{r.vs_dbos:.2f}", r.target,
             "" if not r.target else {True: "ok", False: "MISS", None: "?"}[r.ok])
            for r in self.rows]
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        right = {2, 4, 5}
        print()
        print("Summary")
        for k, line in enumerate(lines):
            cells = [str(c).rjust(w) if i in right else str(c).ljust(w)
                     for i, (c, w) in enumerate(zip(line, widths, strict=True))]
            print("  " + "  ".join(cells).rstrip())
            if k == 0:
                print("  " + "  ".join("-" * w for w in widths))
        checks = self.figures.get("limit_rechecks") or {}
        if checks:
            print("  limit re-measured before throughput sections (txn/s): " + ", ".join(
                f"{k} {v:,.0f}" for k, v in checks.items()))
        for section, error in self.errors.items():
            print(f"  {section}: FAILED: {error}")


# -- sections ---------------------------------------------------------------------------
def section_limit(rep: Report, tmp: Path, sizes: Sizes) -> None:
    txn_s, txns, secs, windows = commit_windows(tmp / "limit-1.db", 1, sizes.limit_seconds)
    windows.sort()
    rows10_txn, txns10, secs10 = commit_rate(tmp / "limit-10.db", 10, sizes.limit_seconds)
    shaped_wf, shaped_n, shaped_secs = workflow_sql_rate(tmp / "limit-shaped.db",
                                                         sizes.limit_seconds)
    per_commit, how = ob.fsyncs_per_unit(tmp, "limit", sizes.probe)
    rep.figures["limit"] = {"txn_per_s": txn_s, "txns": txns, "seconds": secs,
                            "workflow_sql_per_s": shaped_wf,
                            "windows_txn_per_s": windows,
                            "rows10_txn_per_s": rows10_txn, "rows10_rows_per_s": rows10_txn * 10,
                            "fsyncs_per_commit": per_commit, "fsync_method": how}
    rep.add(Row("limit", "1-row transactions/s", txn_s, "txn/s", 1.0,
                note=f"{txns} commits in {secs:.1f}s; 0.25 s windows from "
                     f"{windows[0]:,.0f} to {windows[-1]:,.0f}" if windows else ""))
    rep.add(Row("limit", "10-row transactions: rows/s", rows10_txn * 10, "rows/s",
                rows10_txn * 10 / txn_s, note=f"{rows10_txn:.0f} txn/s"))
    rep.add(Row("limit", "fsyncs per commit", per_commit, "fsync", note=how))
    rep.add(Row("limit", "a 3-step workflow's SQL alone, sequential: steps/s", 3 * shaped_wf,
                "steps/s", 3 * shaped_wf / txn_s,
                note=f"{shaped_n} workflows × 4 commits, no engine: the sequential ceiling"))


def _dbos_json(done: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    if done.returncode != 0:
        raise BenchError(f"DBOS {what} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    for line in reversed(done.stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise BenchError(f"DBOS {what} printed no figures: {done.stdout[-400:]}")


def section_dbos(rep: Report, tmp: Path, sizes: Sizes) -> None:
    """DBOS as it sets SQLite up (rollback journal), and with WAL set by hand; Onward's
    "× DBOS" ratios compare with the faster of the two."""
    if importlib.util.find_spec("dbos") is None:
        rep.figures["dbos"] = None
        rep.note("skipped: `import dbos` fails (pip install -e '.[bench]' installs it)")
        return
    now = _limit_now(rep, tmp, sizes, "dbos")
    limit = (rep.figures.get("limit") or {}).get("txn_per_s")
    runs = {setup: _dbos_run(tmp, sizes, setup) for setup in ("default", "wal")}
    fsyncs, how = _dbos_fsyncs(tmp, sizes)
    runs["default"]["seq"].update(fsyncs_per_workflow=fsyncs, fsync_method=how)
    best = {kind: max((r[kind] for r in runs.values()), key=lambda f: f["steps_per_s"])
            for kind in ("seq", "concurrent")}
    rep.figures["dbos"] = {"version": _dbos_version(), **runs, **best}
    rep.note(f"DBOS {_dbos_version()} on a SQLite system database, as DBOS sets it up "
             f"(journal_mode={runs['default']['sqlite'].get('journal_mode')}) and with "
             "journal_mode=WAL set by hand; Onward's × DBOS uses the faster")
    for setup, label in (("default", "as set up"), ("wal", "WAL by hand")):
        seq, conc = runs[setup]["seq"], runs[setup]["concurrent"]
        rep.add(Row("dbos", f"{label}: sequential ({seq['workflows']}): steps/s",
                    seq["steps_per_s"], "steps/s", ratio(seq["steps_per_s"], limit),
                    note=f"{seq['workflows_per_s']:.0f} wf/s; "
                         f"{_vs_now(seq['steps_per_s'], now)}"))
        rep.add(Row("dbos", f"{label}: concurrent ({conc['workflows']}, queue, 32): steps/s",
                    conc["steps_per_s"], "steps/s", ratio(conc["steps_per_s"], limit),
                    note=f"{conc['workflows_per_s']:.0f} wf/s; enqueued first in "
                         f"{conc['enqueue_seconds']:.1f}s; queue polled every "
                         f"{conc['queue']['polling_interval_sec']}s; timed from launch"))
    rep.add(Row("dbos", "as set up: sequential: fsyncs per workflow", fsyncs, "fsync",
                note=how))


def _dbos_run(tmp: Path, sizes: Sizes, setup: str) -> dict[str, Any]:
    """One DBOS set-up: the sequential and the queue-drained figures, each in a child."""
    py = [sys.executable, "-m", "bench.dbos_bench"]
    wal = ["--wal"] if setup == "wal" else []
    seq = _dbos_json(run_child([*py, "seq", "--db", str(tmp / f"dbos-seq-{setup}.sqlite"),
                                "--n", str(sizes.seq), *wal], timeout=600), "seq")
    conc_db = str(tmp / f"dbos-conc-{setup}.sqlite")
    enq = _dbos_json(run_child([*py, "enqueue", "--db", conc_db, "--n", str(sizes.concurrent),
                                "--concurrency", "32", "--poll", "0.01", *wal], timeout=600),
                     "enqueue")
    drain = _dbos_json(run_child([*py, "drain", "--db", conc_db, "--n", str(sizes.concurrent)],
                                 timeout=900), "drain")
    seq_wf = seq["workflows"] / seq["seconds"]
    conc_wf = drain["workflows"] / drain["seconds"]
    return {
        "sqlite": seq.get("sqlite") or {},
        "seq": {**seq, "workflows_per_s": seq_wf, "steps_per_s": 3 * seq_wf},
        "concurrent": {**drain, "enqueue_seconds": enq["enqueue_seconds"],
                       "queue": {"worker_concurrency": enq["concurrency"],
                                 "polling_interval_sec": enq["polling_interval_sec"]},
                       "workflows_per_s": conc_wf, "steps_per_s": 3 * conc_wf},
    }


def _dbos_fsyncs(tmp: Path, sizes: Sizes) -> tuple[float | None, str]:
    """fsyncs per sequential DBOS workflow as DBOS sets SQLite up (strace, by difference)."""
    from .common import count_fsyncs, strace_path
    if strace_path() is None:
        return None, "n/a (strace not installed)"
    py = [sys.executable, "-m", "bench.dbos_bench"]
    try:
        counts = [count_fsyncs([*py, "seq", "--db", str(tmp / f"dbos-probe-{n}.sqlite"),
                                "--n", str(n)], tmp)[0] for n in sizes.probe]
    except BenchError as err:
        return None, f"n/a ({err})"
    low, high = sizes.probe
    return (counts[1] - counts[0]) / (high - low), \
        f"strace -f -c, ({counts[1]} - {counts[0]}) / ({high} - {low})"


def _dbos_version() -> str:
    try:
        from importlib.metadata import version
        return version("dbos")
    except Exception:  # noqa: BLE001
        return "?"


def _limit(rep: Report) -> float | None:
    """The 1-row commit rate of section ``limit`` (None when it did not run: callers then
    use the rate re-measured just before their figure)."""
    return (rep.figures.get("limit") or {}).get("txn_per_s")


def _dbos(rep: Report, kind: str) -> float | None:
    return ((rep.figures.get("dbos") or {}).get(kind) or {}).get("steps_per_s")


def _target_ratio(value: float | None, floor: float) -> bool | None:
    return None if value is None else value >= floor


def _limit_now(rep: Report, tmp: Path, sizes: Sizes, name: str) -> float:
    """The 1-row commit rate re-measured just before a throughput figure (disks are shared)."""
    rate, _, _ = commit_rate(tmp / f"limit-recheck-{name}.db", 1, sizes.limit_seconds / 4)
    rep.figures.setdefault("limit_rechecks", {})[name] = rate
    return rate


def _vs_now(value: float, now: float) -> str:
    return f"limit re-measured just before: {now:,.0f} txn/s, {value / now:.2f}× that"


def section_seq(rep: Report, tmp: Path, sizes: Sizes) -> None:
    now = _limit_now(rep, tmp, sizes, "onward-seq")
    fig = ob.sequential(tmp, sizes.seq, sizes.probe)
    rep.figures["onward-seq"] = fig
    limit, dbos = _limit(rep) or now, _dbos(rep, "seq")
    sqlite = fig["sqlite"]
    rep.note(f"engine's SQLite connection: journal_mode={sqlite['journal_mode']}, "
             f"synchronous={sqlite['synchronous']} (2 = FULL)")
    rep.add(Row("onward-seq", f"sequential ({sizes.seq}): workflows/s",
                fig["workflows_per_s"], "wf/s", vs_dbos=ratio(fig["steps_per_s"], dbos)))
    vs = ratio(fig["steps_per_s"], limit)
    rep.add(Row("onward-seq", "sequential: durable steps/s", fig["steps_per_s"], "steps/s",
                vs, ratio(fig["steps_per_s"], dbos), "≥ 0.5× limit", _target_ratio(vs, 0.5),
                note=_vs_now(fig["steps_per_s"], now)))
    shaped = (rep.figures.get("limit") or {}).get("workflow_sql_per_s")
    if shaped:
        engine_us = 1e6 / fig["workflows_per_s"] - 1e6 / shaped
        budget_us = 6e6 / limit - 1e6 / shaped  # what 0.5× leaves beside the SQL alone
        rep.note(f"per workflow: the SQL alone {1e6 / shaped:,.0f} µs, the engine "
                 f"{engine_us:,.0f} µs more; 0.5× the limit would leave it {budget_us:,.0f} µs")
    rep.add(Row("onward-seq", "sequential: SQLite commits per workflow",
                fig["commits_per_workflow"], "commits",
                note=f"{fig['commits_per_step']:.2f} per step"))
    rep.add(Row("onward-seq", "sequential: fsyncs per workflow", fig["fsyncs_per_workflow"],
                "fsync", note=fig.get("fsync_note", "")))


def section_concurrent(rep: Report, tmp: Path, sizes: Sizes) -> None:
    now = _limit_now(rep, tmp, sizes, "onward-concurrent")
    limit, dbos = _limit(rep) or now, _dbos(rep, "concurrent")
    a = ob.concurrent_inprocess(tmp, sizes.concurrent)
    rep.figures["onward-concurrent"] = {"inprocess": a}
    rep.note(f"started {a['workflows']} runs in {a['start_seconds']:.1f}s "
             f"({a['starts_per_s']:.0f}/s, one commit each), then drained")
    vs = ratio(a["steps_per_s"], limit)
    rep.add(Row("onward-concurrent", f"1 in-process worker ×32 ({sizes.concurrent}): wf/s",
                a["workflows_per_s"], "wf/s", vs_dbos=ratio(a["steps_per_s"], dbos)))
    rep.add(Row("onward-concurrent", "1 in-process worker ×32: steps/s", a["steps_per_s"],
                "steps/s", vs, ratio(a["steps_per_s"], dbos), "≥ 1.0× limit",
                _target_ratio(vs, 1.0), note=_vs_now(a["steps_per_s"], now)))
    rep.add(Row("onward-concurrent", "1 in-process worker ×32: commits per workflow",
                a["commits_per_workflow"], "commits", note="drain only, start excluded"))
    now = _limit_now(rep, tmp, sizes, "onward-concurrent-processes")
    b = ob.concurrent_processes(tmp, sizes.concurrent)
    rep.figures["onward-concurrent"]["processes"] = b
    vs = ratio(b["steps_per_s"], limit)
    rep.add(Row("onward-concurrent", f"2 worker processes ×32 ({sizes.concurrent}): wf/s",
                b["workflows_per_s"], "wf/s", vs_dbos=ratio(b["steps_per_s"], dbos)))
    rep.add(Row("onward-concurrent", "2 worker processes ×32: steps/s", b["steps_per_s"],
                "steps/s", vs, ratio(b["steps_per_s"], dbos), "≥ 1.0× limit",
                _target_ratio(vs, 1.0),
                note=f"{_vs_now(b['steps_per_s'], now)}; "
                     f"{b['steps_per_s_incl_process_start']:.0f} steps/s counting "
                     f"interpreter start, {b['seconds_incl_process_start']:.2f}s"))


def section_updates(rep: Report, tmp: Path, sizes: Sizes) -> None:
    fig = ob.update_round_trip(tmp, sizes.seq)
    rep.figures["updates"] = fig
    for where, label in (("in_process", "worker in the caller's process"),
                         ("other_process", "worker in another process")):
        f = fig[where]
        rep.add(Row("updates", f"update round trip, {label}: median", f["median_ms"], "ms",
                    note=f"{f['updates']} updates one after another on an idle run"))
        rep.add(Row("updates", f"update round trip, {label}: p99", f["p99_ms"], "ms",
                    note=f"max {f['max_ms']:.1f} ms"))


def section_replay(rep: Report, tmp: Path, sizes: Sizes) -> None:
    long = ob.replay_long(tmp, sizes.activities)
    rep.figures["replay"] = {"long_history": long}
    rep.note(f"built a {long['events']:,}-event history: {long['activities']:,} activities "
             f"in {long['build_seconds']:.1f}s ({long['build_steps_per_s']:.0f} steps/s in one "
             f"run); eng.replay([id]) incl. loading: {long['replay_api_seconds']:.3f}s")
    rep.add(Row("replay", f"replay a {long['events']:,}-event history: events/s",
                long["events_per_s"], "events/s", target="≥ 100,000/s",
                ok=long["events_per_s"] >= 100_000,
                note=f"best of 5: {long['replay_seconds'] * 1000:.0f} ms"))
    many = ob.replay_deploy_check(tmp, sizes.histories)
    rep.figures["replay"]["deploy_check"] = many
    scaled = many["histories"] != 10_000
    rep.add(Row("replay", f"replay check over {many['histories']:,} histories: seconds",
                many["seconds"], "s", target="< 30 s for 10,000",
                ok=many["seconds_per_10k"] < 30,
                note=(f"{many['seconds_per_10k']:.1f}s per 10,000 extrapolated; " if scaled
                      else "") + f"{many['histories_per_s']:.0f} histories/s; "
                f"{many['real_runs']} real runs, the rest SQL copies"))


def section_recovery(rep: Report, tmp: Path, sizes: Sizes) -> None:
    restart = ob.recovery_restart(tmp)
    takeover = ob.recovery_takeover(tmp)
    rep.figures["recovery"] = {"restart": restart, "takeover": takeover}
    rep.add(Row("recovery", "kill -9, new worker process → run completed", restart["seconds"],
                "s", target="≤ 1 s", ok=restart["seconds"] <= 1.0,
                note="incl. interpreter start" + (
                    f"; the new worker registered after {reg:.2f}s"
                    if (reg := restart["registered_after_seconds"]) is not None else "")))
    rep.add(Row("recovery", "kill -9, running 2nd worker takes over", takeover["seconds"], "s",
                target="≤ 5 s (lease TTL)", ok=takeover["seconds"] <= 5.0))


def section_memory(rep: Report, tmp: Path, sizes: Sizes) -> None:
    fig = ob.memory(tmp, sizes.waiting)
    rep.figures["memory"] = fig
    peak = fig["peak_rss_bytes"] / MIB
    scaled = fig["runs"] != 10_000
    est = (fig["idle_rss_bytes"] + fig["bytes_per_run"] * 10_000) / MIB
    rep.add(Row("memory", f"worker peak RSS, {fig['runs']:,} runs waiting on tasks", peak,
                "MiB", target="≤ 200 MiB for 10,000", ok=(est if scaled else peak) <= 200,
                note=(f"≈{est:.0f} MiB for 10,000 extrapolated; " if scaled else "")
                + f"idle {fig['idle_rss_bytes'] / MIB:.0f} MiB, "
                  f"{fig['bytes_per_run'] / 1024:.1f} KiB/run; all waiting after "
                  f"{fig['all_waiting_seconds']:.1f}s"))


def section_postgres(rep: Report, tmp: Path, sizes: Sizes) -> None:
    from . import pg_bench as pg
    reason = pg.unavailable()
    if reason:
        rep.figures["postgres"] = None
        rep.note(f"skipped: {reason}")
        return
    rep.note(f"PostgreSQL {pg.server_version()} at {pg.BASE_URL}; a fresh schema per "
             "measurement, dropped afterwards")
    fig: dict[str, Any] = {"server": pg.server_version(), "throughput": {}}
    rep.figures["postgres"] = fig
    base = None
    for procs in (1, 2, 4):
        t = pg.throughput(tmp, sizes.pg, procs)
        fig["throughput"][procs] = t
        if procs == 1:
            base = t["workflows_per_s"]
            rep.note(f"started {sizes.pg} runs in {t['start_seconds']:.1f}s "
                     f"({t['starts_per_s']:.0f}/s, one commit each), then drained")
        rep.add(Row("postgres", f"{procs} worker process{'es' if procs > 1 else ''} ×32 "
                    f"({sizes.pg}): wf/s", t["workflows_per_s"], "wf/s",
                    vs_dbos=ratio(t["steps_per_s"], _dbos(rep, "concurrent")),
                    note=f"{ratio(t['workflows_per_s'], base):.2f}× 1 worker; "
                         f"{t['workflows_per_s_incl_process_start']:.0f} wf/s counting "
                         f"interpreter start"))
        rep.add(Row("postgres", f"{procs} worker process{'es' if procs > 1 else ''}: steps/s",
                    t["steps_per_s"], "steps/s"))
    restart = pg.recovery_restart(tmp)
    takeover = pg.recovery_takeover(tmp)
    fig["recovery"] = {"restart": restart, "takeover": takeover}
    reg = restart["registered_after_seconds"]
    rep.add(Row("postgres", "kill -9 mid-activity, new worker: to completion",
                restart["seconds"], "s",
                note="incl. interpreter start" + (
                    f"; the new worker registered after {reg:.2f}s" if reg is not None else "")))
    rep.add(Row("postgres", "kill -9, running 2nd worker takes over", takeover["seconds"],
                "s", target="≤ 5 s (lease TTL)", ok=takeover["seconds"] <= 5.0))
    _dbos_postgres(rep, fig, sizes, base)


def _dbos_postgres(rep: Report, fig: dict[str, Any], sizes: Sizes, base: float | None) -> None:
    from . import pg_bench as pg
    if importlib.util.find_spec("dbos") is None:
        rep.note("DBOS on PostgreSQL skipped: `import dbos` fails")
        return
    py = [sys.executable, "-m", "bench.dbos_bench"]
    with pg.fresh_database() as url:
        enq = _dbos_json(run_child([*py, "enqueue", "--db", url, "--n", str(sizes.pg),
                                    "--concurrency", "32", "--poll", "0.01"], timeout=600),
                         "enqueue (PostgreSQL)")
        drain = _dbos_json(run_child([*py, "drain", "--db", url, "--n", str(sizes.pg)],
                                     timeout=900), "drain (PostgreSQL)")
    wf = drain["workflows"] / drain["seconds"]
    fig["dbos"] = {**drain, "enqueue_seconds": enq["enqueue_seconds"],
                   "workflows_per_s": wf, "steps_per_s": 3 * wf}
    rep.add(Row("postgres", f"DBOS on PostgreSQL, 1 process, queue 32 ({sizes.pg}): wf/s",
                wf, "wf/s", note=f"fresh database; enqueued first in "
                f"{enq['enqueue_seconds']:.1f}s; timed from launch; Onward 1 worker is "
                f"{ratio(base, wf) or 0:.2f}× this"))


def section_console(rep: Report, tmp: Path, sizes: Sizes) -> None:
    from . import console_bench as cb
    db = tmp / "console.db"
    built = cb.build(db, sizes.console_runs)
    rep.note(f"built {built['runs']:,} runs / {built['events']:,} events "
             f"({built['db_bytes'] / MIB:.0f} MiB): {cb.TEMPLATES} real long_history runs in "
             f"{built['template_seconds']:.1f}s, SQL copies in {built['clone_seconds']:.1f}s; "
             f"{cb.RETRYING} copies marked running+retrying")
    reads = cb.reads(db, sizes.console_reps)
    rep.figures["console"] = {"database": built, "reads": reads}
    for label, r in reads.items():
        rows = f"{r['rows']} rows; " if "rows" in r else ""
        rep.add(Row("console", label, r["median_ms"], "ms median", target="≤ 100 ms",
                    ok=r["max_ms"] <= 100,
                    note=f"{rows}max {r['max_ms']:.1f} ms over {r['reps']}"))
    p = cb.pilot(db)
    rep.figures["console"]["pilot"] = p
    rep.add(Row("console", "app start → runs table shows 200 rows", p["first_rows_seconds"]
                * 1000, "ms", note="OnwardApp(eng, worker=False).run_test(size=(120, 40))"))
    rep.add(Row("console", f"pilot.press('down') ×{p['keys']}: per key", p["key_median_ms"],
                "ms median",
                note=f"includes Pilot's own idle waits; max {p['key_max_ms']:.0f}, "
                     f"mean {p['key_mean_ms']:.0f}; cursor moved "
                     f"{p['cursor_moved']}; an unbound key costs {p['noop_key_median_ms']:.0f} "
                     f"ms median in Pilot (its idle waits)"))
    rep.add(Row("console", "key event posted → cursor moved", p["direct_median_ms"],
                "ms median", target="≤ 50 ms", ok=p["direct_median_ms"] <= 50,
                note=f"max {p['direct_max_ms']:.1f} ms; without Pilot's waits, repaint "
                     "excluded"))
    for label, r in p["screens"].items():
        rep.add(Row("console", f"key → screen updated: {label}", r["median_ms"], "ms median",
                    target="≤ 100 ms", ok=r["median_ms"] <= 100,
                    note=f"max {r['max_ms']:.1f} ms over {r['reps']}"))


RUNNERS: dict[str, Callable[[Report, Path, Sizes], None]] = {
    "limit": section_limit, "dbos": section_dbos, "onward-seq": section_seq,
    "onward-concurrent": section_concurrent, "updates": section_updates,
    "replay": section_replay,
    "recovery": section_recovery, "memory": section_memory,
    "postgres": section_postgres, "console": section_console,
}


# -- main -------------------------------------------------------------------------------
def _git() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "engine"],
                               capture_output=True, text=True, timeout=10).stdout
        changed = len(dirty.splitlines())
        return head + (f" + {changed} changed file(s) in engine/" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _environment() -> dict[str, Any]:
    import apsw
    return {"python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_start": _load(),
            "cpus": os.cpu_count(), "apsw": apsw.apsw_version(),
            "sqlite": apsw.sqlite_lib_version(), "git": _git()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke run (50 / 200 workflows, 1,000 "
                             "histories, 1,000 waiting runs)")
    parser.add_argument("--only", metavar="NAME,...",
                        help="run only these sections: " + ", ".join(SECTIONS))
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary database files")
    parser.add_argument("--json", metavar="PATH",
                        help="write the figures here (default: .bench-tmp/results-<time>.json)")
    args = parser.parse_args(argv)
    args.sections = list(SECTIONS)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in SECTIONS]
        if unknown:
            parser.error(f"unknown section(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(SECTIONS)}")
        args.sections = [s for s in SECTIONS if s in wanted]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    forced = os.environ.pop("ONWARD_SYNCHRONOUS", None)
    if forced and forced.upper() != "FULL":
        print(f"note: ignoring ONWARD_SYNCHRONOUS={forced}; the benchmarks measure the "
              "default (synchronous=FULL)")
    tmp = scratch_dir()
    env = _environment()
    began = time.perf_counter()
    print(f"onward bench{' --quick' if args.quick else ''}: {', '.join(args.sections)}")
    print(f"  python {env['python']}, SQLite {env['sqlite']} (APSW {env['apsw']}), "
          f"{env['cpus']} CPUs, load average {env['loadavg_at_start']}, git {env['git']}")
    print(f"  scratch: {tmp}")
    rep = Report()
    try:
        for name in args.sections:
            print(f"\n[{name}]", flush=True)
            t0 = time.perf_counter()
            try:
                RUNNERS[name](rep, tmp, sizes)
            except KeyboardInterrupt:
                raise
            except Exception as err:  # noqa: BLE001 - one section failing must not stop others
                rep.errors[name] = f"{type(err).__name__}: {err}"
                print(f"  FAILED: {type(err).__name__}: {err}", flush=True)
                if not isinstance(err, (BenchError, AssertionError)):  # a failed wait says why
                    traceback.print_exc()
            finally:
                kill_children()
            print(f"  ({time.perf_counter() - t0:.1f}s)", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        kill_children()
        if not args.keep:
            remove_dir(tmp)
        return 130
    total = time.perf_counter() - began
    env["loadavg_at_end"] = _load()
    rep.table()
    out = Path(args.json) if args.json else SCRATCH / time.strftime(
        "results-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": args.quick,
        "sections": args.sections, "sizes": asdict(sizes), "environment": env,
        "seconds": total, "figures": rep.figures, "rows": [asdict(r) for r in rep.rows],
        "errors": rep.errors}, indent=2, default=str) + "\n")
    if args.keep:
        print(f"\ndatabases kept in {tmp}")
    else:
        remove_dir(tmp)
    print(f"\nfigures as JSON: {out}")
    print(f"total {total:.1f}s; load average at the end {env['loadavg_at_end']} "
          f"(other processes on this machine move the figures)")
    return 1 if rep.errors else 0


if __name__ == "__main__":
    sys.exit(main())
