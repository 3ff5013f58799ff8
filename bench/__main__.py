"""``python -m bench``: every benchmark section in one sitting, figures and ratios.

    python -m bench                 full sizes (a few minutes)
    python -m bench --quick         small sizes, a smoke run (well under a minute)
    python -m bench --only limit,seq,threads
    python -m bench --keep          keep the database files (the path is printed)

Sections (run in this order, so that later lines can show ratios to earlier ones):
  limit       APSW, WAL, synchronous=FULL: 1-row commits/s and 10-row commits
  dbos        DBOS Transact on SQLite, same 3-step workflow (if ``dbos`` imports),
              as DBOS sets SQLite up and with WAL set by hand
  dura        dura 1.3 (Python >= 3.13, a venv built and cached under .bench-tmp) and
              Onward's seq shape on that same Python; skipped, saying why, without one
  seq         one caller: start → result, one after another (p50, p99)
  drain       runs pre-started with no worker, then drained: an in-process worker, and 2
              worker processes (the only shape whose starts are not counted)
  stream      one caller starts runs back to back while the worker drains them
  threads     8 and 32 caller threads in one process, each start → result in a loop
  processes   2 client processes (own Engine each), 8 callers each: with an in-process
              worker in each, and with none and one ``onward worker`` process
  updates     update round trips on an idle run
  replay      rebuild a 10,000-event history; the replay check over many histories
  recovery    kill -9 mid-activity: a new worker process, a running second worker
  memory      peak RSS of a worker process holding runs that wait on manual tasks
  postgres    the PostgreSQL store: drained by 1, 2 and 4 worker processes, recovery,
              DBOS on PostgreSQL (skipped when the server is unreachable; $ONWARD_PG_URL)
  console     the runs screen's store reads on 10,000 runs / 1,000,000 events, and the
              real console under Textual's Pilot: first rows, and every screen's main keys
              from key posted to screen refreshed (median, p90, CPU)
  visibility  list-filter queries on 1,000,000 bulk-loaded runs (bench/visibility_bench.py)

Every section prints one "leaves out:" line. Ratios: "× limit" is steps/s over the 1-row
commit rate measured on the same disk; "× drain" is over the in-process drain's wf/s;
"× DBOS" is over DBOS with WAL set by hand in the same shape; "× dura" is over dura on the
same Python. To add a section: a ``section_x(rep, tmp, sizes)`` function, its name in
SECTIONS and RUNNERS.
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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import onward_bench as ob
from .common import REPO, SCRATCH, BenchError, kill_children, remove_dir, run_child, scratch_dir
from .dbos_section import dbos_json, section_dbos
from .limit import commit_rate, commit_windows, workflow_sql_rate
from .report import Report, Row, fmt, fmt_ratio, ratio  # noqa: F401 - sections use them
from .shape_sections import dbos_of as _dbos
from .shape_sections import (
    leaves_out,
    section_drain,
    section_dura,
    section_processes,
    section_seq,
    section_stream,
    section_threads,
)
from .sizes import FULL, QUICK, Sizes

SECTIONS = ("limit", "dbos", "dura", "seq", "drain", "stream", "threads", "processes",
            "updates", "replay", "recovery", "memory", "postgres", "console",
            "visibility")
ALIASES = {"onward-seq": "seq", "onward-concurrent": "drain"}
"""Old section names still accepted by ``--only``."""
MIB = 1024 * 1024


# -- sections ---------------------------------------------------------------------------
def section_limit(rep: Report, tmp: Path, sizes: Sizes) -> None:
    leaves_out(rep, "any engine: bare APSW commits of 1 and 10 small rows, and a sequential "
                    "workflow's statements replayed with no engine (the sequential ceiling)")
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


def section_updates(rep: Report, tmp: Path, sizes: Sizes) -> None:
    leaves_out(rep, "throughput: one update at a time on one idle run")
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
    leaves_out(rep, "the worker: replay is measured in the caller's process, on finished runs")
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
    leaves_out(rep, "load: one run in flight when the worker is killed")
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
    leaves_out(rep, "running activities: every run waits on a manual task")
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
    leaves_out(rep, "the starts (runs pre-started, then drained, as in drain) and a "
                    "server on another machine (this one shares the 2 cores)")
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
                    target="≥ 466 wf/s (2× 233)" if procs == 1 else "",
                    ok=t["workflows_per_s"] >= 466 if procs == 1 else None,
                    note=f"{ratio(t['workflows_per_s'], base):.2f}× 1 worker; "
                         f"{t['workflows_per_s_incl_process_start']:.0f} wf/s counting "
                         f"interpreter start"))
        rep.add(Row("postgres", f"{procs} worker process{'es' if procs > 1 else ''}: steps/s",
                    t["steps_per_s"], "steps/s"))
    _postgres_costs(rep, fig, sizes)
    _postgres_seq(rep, fig, tmp, sizes)
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


def _postgres_costs(rep: Report, fig: dict[str, Any], sizes: Sizes) -> None:
    """Where a drain's time goes: round trips, client and server CPU per workflow."""
    from .pg_costs import drain_costs
    c = drain_costs(sizes.pg)
    fig["costs"] = c
    rep.add(Row("postgres", f"in-process worker ×32 ({sizes.pg}): round trips per workflow",
                c["round_trips"], "per wf",
                note=f"CPU per workflow: client {c['client_us']:.0f} µs, server "
                     f"{c['server_us']:.0f} µs; {c['wf_per_s']:.0f} wf/s "
                     "(python -m bench.pg_costs)"))


def _postgres_seq(rep: Report, fig: dict[str, Any], tmp: Path, sizes: Sizes) -> None:
    """The seq shape on PostgreSQL, when bench/pg_bench.py has one (``sequential``)."""
    from . import pg_bench as pg
    sequential = getattr(pg, "sequential", None)
    if sequential is None:
        rep.note("seq on PostgreSQL: not measured (bench/pg_bench.py has no sequential())")
        return
    q = sequential(tmp, sizes.seq)
    fig["seq"] = q
    trips = q.get("round_trips_per_workflow")
    rep.add(Row("postgres", f"seq: one caller, start → result ({sizes.seq}): wf/s",
                q["workflows_per_s"], "wf/s", vs_dbos=None,
                note=f"p50 {q['p50_ms']:.1f} ms, p99 {q['p99_ms']:.1f} ms; "
                     f"{q['commits_per_workflow']:.1f} commits"
                     + (f" and {trips:.1f} round trips" if trips is not None else "")
                     + " per workflow"))


def _dbos_postgres(rep: Report, fig: dict[str, Any], sizes: Sizes, base: float | None) -> None:
    from . import pg_bench as pg
    if importlib.util.find_spec("dbos") is None:
        rep.note("DBOS on PostgreSQL skipped: `import dbos` fails")
        return
    py = [sys.executable, "-m", "bench.dbos_bench"]
    with pg.fresh_database() as url:
        enq = dbos_json(run_child([*py, "enqueue", "--db", url, "--n", str(sizes.pg),
                                    "--concurrency", "32", "--poll", "0.01"], timeout=600),
                         "enqueue (PostgreSQL)")
        drain = dbos_json(run_child([*py, "drain", "--db", url, "--n", str(sizes.pg)],
                                     timeout=900), "drain (PostgreSQL)")
    wf = drain["workflows"] / drain["seconds"]
    fig["dbos"] = {**drain, "enqueue_seconds": enq["enqueue_seconds"],
                   "workflows_per_s": wf, "steps_per_s": 3 * wf}
    rep.add(Row("postgres", f"DBOS on PostgreSQL, 1 process, queue 32 ({sizes.pg}): wf/s",
                wf, "wf/s", note=f"fresh database; enqueued first in "
                f"{enq['enqueue_seconds']:.1f}s; timed from launch; Onward 1 worker is "
                f"{ratio(base, wf) or 0:.2f}× this"))


def section_console(rep: Report, tmp: Path, sizes: Sizes) -> None:
    leaves_out(rep, "a real terminal's drawing: Pilot's headless screen, reads timed in-process")
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
                * 1000, "ms",
                note="OnwardApp(eng, worker=False, pace_gc=True).run_test(size=(120, 40))"))
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
    leaves_out(rep, "key → screen updated: the terminal writing and drawing the rendered "
                    "update (headless), and the driver parsing the key's bytes")
    for label, r in p["screens"].items():
        rep.add(Row("console", f"key → screen refreshed: {label}", r["median_ms"], "ms median",
                    target="≤ 100 ms", ok=r["median_ms"] <= 100,
                    note=f"p90 {r['p90_ms']:.1f}, max {r['max_ms']:.1f} ms over {r['reps']}; "
                         f"CPU median {r['cpu_median_ms']:.1f}, p90 {r['cpu_p90_ms']:.1f} ms"))


def section_visibility(rep: Report, tmp: Path, sizes: Sizes) -> None:
    from . import visibility_bench as vb
    n = 1_000_000 if sizes is FULL else 20_000
    built = vb.build(tmp / "visibility.db", n)
    rep.note(f"visibility: bulk-loaded {n:,} runs in {built['seconds']:.0f}s "
             f"({built['db_bytes'] / MIB:.0f} MiB); no events, no concurrent writers")
    for label, r in vb.queries(tmp / "visibility.db", 9).items():
        rep.add(Row("visibility", label, r["median_ms"], "ms median", target="≤ 100 ms",
                    ok=r["median_ms"] <= 100, note=f"{r['rows']} rows; max {r['max_ms']:.1f}"))


RUNNERS: dict[str, Callable[[Report, Path, Sizes], None]] = {
    "limit": section_limit, "dbos": section_dbos, "dura": section_dura, "seq": section_seq,
    "drain": section_drain, "stream": section_stream, "threads": section_threads,
    "processes": section_processes, "updates": section_updates,
    "replay": section_replay,
    "recovery": section_recovery, "memory": section_memory,
    "postgres": section_postgres, "console": section_console,
    "visibility": section_visibility,
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
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the summary as a Markdown table here")
    parser.add_argument("--json", metavar="PATH",
                        help="write the figures here (default: .bench-tmp/results-<time>.json)")
    args = parser.parse_args(argv)
    args.sections = list(SECTIONS)
    if args.only:
        wanted = [ALIASES.get(s.strip(), s.strip()) for s in args.only.split(",") if s.strip()]
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
    if args.markdown:
        Path(args.markdown).write_text(rep.markdown())
        print(f"\nsummary as Markdown: {args.markdown}")
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
