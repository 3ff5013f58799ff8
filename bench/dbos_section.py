"""The dbos section: DBOS Transact on SQLite, the same three-step workflow, each phase in a
child interpreter (``bench.dbos_bench``), as DBOS sets SQLite up and with WAL set by hand.

``--quick`` runs the sequential figure only (the queue drain and the fsync count are the
slow part: a DBOS child takes seconds to import and launch).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .common import BenchError, run_child
from .report import Report, Row, ratio
from .shape_sections import leaves_out, limit_now, vs_now
from .sizes import Sizes


def dbos_json(done: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    """The JSON line a DBOS child printed (BenchError naming what failed otherwise)."""
    if done.returncode != 0:
        raise BenchError(f"DBOS {what} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    for line in reversed(done.stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise BenchError(f"DBOS {what} printed no figures: {done.stdout[-400:]}")


def section_dbos(rep: Report, tmp: Path, sizes: Sizes) -> None:
    """DBOS as it sets SQLite up (rollback journal), and with WAL set by hand; Onward's
    "× DBOS" ratios compare with WAL set by hand (the issue's reference)."""
    leaves_out(rep, "DBOS under concurrent callers: its concurrent figure is a queue drain "
                    "(enqueued first, polled every 10 ms), like Onward's drain")
    if importlib.util.find_spec("dbos") is None:
        rep.figures["dbos"] = None
        rep.note("skipped: `import dbos` fails (`pip install --group bench` installs it)")
        return
    now = limit_now(rep, tmp, sizes, "dbos")
    limit = (rep.figures.get("limit") or {}).get("txn_per_s")
    full = sizes.dbos_full
    runs = {setup: _dbos_run(tmp, sizes, setup, full) for setup in ("default", "wal")}
    fsyncs, how = _dbos_fsyncs(tmp, sizes) if full else (None, "not counted in --quick")
    runs["default"]["seq"].update(fsyncs_per_workflow=fsyncs, fsync_method=how)
    kinds = ("seq", "concurrent") if full else ("seq",)
    best = {kind: max((r[kind] for r in runs.values()), key=lambda f: f["steps_per_s"])
            for kind in kinds}
    rep.figures["dbos"] = {"version": _dbos_version(), **runs, "best": best}
    rep.note(f"DBOS {_dbos_version()} on a SQLite system database, as DBOS sets it up "
             f"(journal_mode={runs['default']['sqlite'].get('journal_mode')}) and with "
             "journal_mode=WAL set by hand; Onward's × DBOS uses WAL by hand"
             + ("" if full else "; --quick: sequential only"))
    for setup, label in (("default", "as set up"), ("wal", "WAL by hand")):
        seq = runs[setup]["seq"]
        rep.add(Row("dbos", f"{label}: sequential ({seq['workflows']}): steps/s",
                    seq["steps_per_s"], "steps/s", ratio(seq["steps_per_s"], limit),
                    note=f"{seq['workflows_per_s']:.0f} wf/s; "
                         f"{vs_now(seq['steps_per_s'], now)}"))
        if not full:
            continue
        conc = runs[setup]["concurrent"]
        rep.add(Row("dbos", f"{label}: concurrent ({conc['workflows']}, queue, 32): steps/s",
                    conc["steps_per_s"], "steps/s", ratio(conc["steps_per_s"], limit),
                    note=f"{conc['workflows_per_s']:.0f} wf/s; enqueued first in "
                         f"{conc['enqueue_seconds']:.1f}s; queue polled every "
                         f"{conc['queue']['polling_interval_sec']}s; timed from launch"))
    if full:
        rep.add(Row("dbos", "as set up: sequential: fsyncs per workflow", fsyncs, "fsync",
                    note=how))


def _dbos_run(tmp: Path, sizes: Sizes, setup: str, concurrent: bool) -> dict[str, Any]:
    """One DBOS set-up: the sequential and (if ``concurrent``) the queue-drained figures,
    each in a child."""
    py = [sys.executable, "-m", "bench.dbos_bench"]
    wal = ["--wal"] if setup == "wal" else []
    seq = dbos_json(run_child([*py, "seq", "--db", str(tmp / f"dbos-seq-{setup}.sqlite"),
                                "--n", str(sizes.seq), *wal], timeout=600), "seq")
    seq_wf = seq["workflows"] / seq["seconds"]
    seq_fig = {**seq, "workflows_per_s": seq_wf, "steps_per_s": 3 * seq_wf}
    if not concurrent:
        return {"sqlite": seq.get("sqlite") or {}, "seq": seq_fig}
    conc_db = str(tmp / f"dbos-conc-{setup}.sqlite")
    enq = dbos_json(run_child([*py, "enqueue", "--db", conc_db, "--n", str(sizes.concurrent),
                                "--concurrency", "32", "--poll", "0.01", *wal], timeout=600),
                     "enqueue")
    drain = dbos_json(run_child([*py, "drain", "--db", conc_db, "--n", str(sizes.concurrent)],
                                 timeout=900), "drain")
    conc_wf = drain["workflows"] / drain["seconds"]
    return {
        "sqlite": seq.get("sqlite") or {},
        "seq": seq_fig,
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
