"""The visibility section: list-filter queries on a large store (1,000,000 runs in full).

The runs are bulk-loaded (``Tx.copy_rows``: rows of ``runs``, ``search_attrs``,
``run_meta`` and open ``manual_tasks``), not started through the engine: they have no
events, which queries do not read. Each query goes through ``Engine.list(query=...,
limit=100)`` or ``Engine.count`` (parse, type check, SQL, rows to dicts) and is timed
warm (its first run is not counted). Left out: queries while workers write, and
PostgreSQL in the section (``python -m bench.visibility_bench N postgresql://...`` times it
by hand). Known slow: a count of several terms that each
match many runs (one attribute term is counted in its index; in a count of several, the
term matching fewest runs drives and the others test its runs one by one); lists without
a limit over many runs; ORDER BY with two keys over many runs.

    python -m bench --only visibility          (or --quick: 20,000 runs)
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z
WORKFLOWS = ("reimbursement", "order", "hello", "billing", "onboarding")
STATUSES = (("running", 10), ("completed", 70), ("failed", 10), ("canceled", 3),
            ("terminated", 3), ("continued_as_new", 4))
ATTR_TYPES = {"employee": "keyword", "amount": "number", "vip": "bool",
              "due": "datetime", "tags": "keyword_list"}


@dataclass
class Record:
    """One run as loaded: its row and its attributes (the Python model tests read)."""

    run_id: str
    workflow_id: str
    workflow: str
    status: str
    started: float
    closed: float | None
    stuck: int
    paused: int
    retrying: int
    attrs: dict[str, Any] = field(default_factory=dict)
    assignees: list[str | None] = field(default_factory=list)
    """Open manual tasks' assignees (None: a task nobody is assigned)."""


@dataclass(frozen=True)
class Domains:
    """The values records draw from: few (tests, so queries match) or many (the bench)."""

    employees: tuple[str, ...]
    amounts: int
    tags: tuple[str, ...]
    assignees: tuple[str, ...]


BENCH_DOMAINS = Domains(tuple(f"emp-{i:04d}" for i in range(1000)), 5000,
                        tuple(f"tag-{i}" for i in range(20)), ("ana", "ben", "chen"))
SMALL_DOMAINS = Domains(("ada", "Bob", "bob", "émile", "Zoë", "a\"b"), 20,
                        ("red", "green", "blue", "é"), ("ana", "ben"))


def _iso(ts: float) -> str:
    from datetime import UTC, datetime
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def make_records(n: int, seed: int = 1, domains: Domains = BENCH_DOMAINS
                 ) -> Iterator[Record]:
    """``n`` runs with attributes drawn at random (the same for the same seed)."""
    rng = random.Random(seed)
    names = [s for s, _ in STATUSES]
    weights = [w for _, w in STATUSES]
    for i in range(n):
        status = rng.choices(names, weights)[0]
        started = BASE_TIME + i * 0.5 + rng.random() * 0.25
        closed = None if status == "running" else started + rng.randint(1, 86_400)
        is_open = status == "running"
        rec = Record(f"run-{i:07d}", f"wf-{i:07d}", rng.choice(WORKFLOWS), status, started,
                     closed, int(is_open and rng.random() < 0.1),
                     int(is_open and rng.random() < 0.05),
                     int(is_open and rng.random() < 0.1))
        if rng.random() < 0.9:
            rec.attrs["employee"] = rng.choice(domains.employees)
        if rng.random() < 0.8:
            rec.attrs["amount"] = rng.randint(0, domains.amounts)
        if rng.random() < 0.5:
            rec.attrs["vip"] = rng.random() < 0.3
        if rng.random() < 0.3:
            rec.attrs["due"] = _iso(BASE_TIME + rng.randint(0, 48) * 3600)
        if rng.random() < 0.4:
            rec.attrs["tags"] = rng.sample(domains.tags, rng.randint(1, 3))
        if is_open and rng.random() < 0.3:
            rec.assignees = [rng.choice([*domains.assignees, None])
                             for _ in range(rng.randint(1, 2))]
        yield rec


def _attr_rows(rec: Record) -> Iterator[tuple[Any, ...]]:
    from onward.search_attributes import stored_rows
    for name, value in rec.attrs.items():
        for pos, (kw, num) in enumerate(stored_rows(ATTR_TYPES[name], value)):
            yield rec.run_id, name, pos, kw, num


def load(store: Any, records: list[Record]) -> None:
    """Bulk-load ``records`` into an open store (one transaction)."""
    with store.write() as tx:
        for name, kind in ATTR_TYPES.items():
            tx.execute("INSERT INTO search_attr_types (name, type) VALUES (?, ?) "
                       "ON CONFLICT (name) DO NOTHING", (name, kind))
        tx.copy_rows("runs", ("run_id", "workflow_id", "workflow", "status", "input",
                              "started", "updated", "closed", "last_seq", "wf_pending",
                              "stuck", "paused", "retrying", "is_current", "step", "lineage"),
                     ((r.run_id, r.workflow_id, r.workflow, r.status, "[]", r.started,
                       r.closed or r.started, r.closed, 1, 0, r.stuck, r.paused, r.retrying,
                       1, r.status, r.run_id) for r in records))
        tx.copy_rows("search_attrs", ("run_id", "name", "pos", "kw", "num"),
                     (row for r in records for row in _attr_rows(r)))
        tx.copy_rows("run_meta", ("run_id", "search_attributes", "memo"),
                     ((r.run_id, json.dumps(r.attrs), None) for r in records if r.attrs))
        tx.copy_rows("manual_tasks", ("task_id", "run_id", "workflow_id", "workflow", "ref",
                                      "kind", "assignee", "created", "status"),
                     ((f"task-{r.run_id}-{k}", r.run_id, r.workflow_id, r.workflow, k,
                       "approve", who, r.started, "open")
                      for r in records for k, who in enumerate(r.assignees)))


QUERIES = {
    "attribute =, 100 rows": ("list", 'employee = "emp-0042"'),
    "attribute range, 100 rows": ("list", "amount BETWEEN 1000 AND 1010"),
    "keyword list contains, 100 rows": ("list", 'tags = "tag-7" AND employee = "emp-0007"'),
    "status + type (built-in), 100 rows": ("list", 'ExecutionStatus = "Running" AND '
                                                    'WorkflowType = "order"'),
    "StartTime range, 100 rows": ("list", 'StartTime BETWEEN "2026-01-02T00:00:00Z" AND '
                                          '"2026-01-02T01:00:00Z"'),
    "TaskAssignee =, 100 rows": ("list", 'TaskAssignee = "chen"'),
    "count attribute =": ("count", 'employee = "emp-0042"'),
    "count type group-by ExecutionStatus": ("count", 'WorkflowType = "order"'),
    "broad: amount > 100 (80% of runs), first 100": ("list", "amount > 100"),
    "count broad: amount > 100": ("count", "amount > 100"),
    "ORDER BY amount DESC over every run, first 100": ("list", "ORDER BY amount DESC"),
    "count Retrying AND WorkflowType AND amount (the flag drives)": (
        "count", 'Retrying = true AND WorkflowType = "order" AND amount > 10'),
    "known slow: count vip AND amount (both match many)": ("count",
                                                           'vip = true AND amount > 10'),
}


def build(db: Path | str, n: int) -> dict[str, Any]:
    """A store of ``n`` bulk-loaded runs (an SQLite file or a postgresql:// URL); its size
    and the seconds it took."""
    from onward.runtime import open_store
    t0 = time.perf_counter()
    records = list(make_records(n))
    store = open_store(str(db), create=True)
    try:
        load(store, records)
    finally:
        store.close()
    size = db.stat().st_size if isinstance(db, Path) else 0
    return {"runs": n, "seconds": time.perf_counter() - t0, "db_bytes": size}


def queries(db: Path | str, reps: int) -> dict[str, dict[str, float]]:
    """Median and max milliseconds of each of ``QUERIES``, warm."""
    from onward import Engine
    results: dict[str, dict[str, float]] = {}
    with Engine(db, create=False) as eng:
        for label, (kind, query) in QUERIES.items():
            group = "ExecutionStatus" if "group-by" in label else None

            def run(kind: str = kind, query: str = query, group: str | None = group) -> int:
                if kind == "list":
                    return len(eng.list(query=query, limit=100))
                return int(eng.count(query, group_by=group)["count"])
            rows = run()
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                run()
                times.append((time.perf_counter() - t0) * 1000)
            results[label] = {"median_ms": statistics.median(times), "max_ms": max(times),
                              "reps": reps, "rows": rows}
    return results


if __name__ == "__main__":  # pragma: no cover - a manual run
    import sys
    import tempfile
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    # a second argument: a postgresql:// URL (an empty schema) instead of an SQLite file
    path: Path | str = sys.argv[2] if len(sys.argv) > 2 else Path(tempfile.mkdtemp()) / "v.db"
    print(build(path, size))
    for name, fig in queries(path, 5).items():
        print(f"{name:50s} {fig['median_ms']:8.1f} ms (max {fig['max_ms']:.1f}, "
              f"{fig['rows']} rows)")
