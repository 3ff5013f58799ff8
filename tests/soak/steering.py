"""Operator threads steering ``op-*`` ids during the chaos, and their checks (the flows of
tests/flows/stateful.py log a start and an end line per execution)."""

from __future__ import annotations

import collections
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onward import Engine
from onward.errors import BadInput

from .checks import read_executions
from .mix import OP_PREFIX, OPERATOR_FLOWS, SoakConfig, SoakReport


def activity_events(engine: Engine, prefix: str = "") -> list[dict[str, Any]]:
    """Activity outcome events of runs whose workflow id starts with ``prefix``."""
    with engine.store.read() as tx:
        rows = tx.execute(
            "SELECT r.workflow_id, r.run_id, r.lineage, e.type, e.time, e.attrs FROM events e "
            "JOIN runs r ON r.run_id = e.run_id WHERE e.type IN ('ActivityCompleted', "
            "'ActivityAttemptFailed', 'ActivityFailed') AND r.workflow_id LIKE ?",
            (prefix + "%",))
    out = []
    for wid, run_id, lineage, kind, when, attrs_text in rows:
        attrs = json.loads(attrs_text)
        out.append({"id": wid, "run_id": run_id, "type": kind, "time": when,
                    "key": f"{lineage}-{attrs.get('ref')}", "attempt": attrs.get("attempt"),
                    "name": attrs.get("name"),
                    "error": (attrs.get("error") or {}).get("type")})
    return out


def repeated_work(events: list[dict[str, Any]], lines: list[dict[str, Any]]) -> list[str]:
    """Completed activities that ran to their end more than once, except for attempts a kill
    cut (recorded as WorkerLost), which may run again under the same key. A completion that
    a reset copied into the new run (same attempt, same time) counts once."""
    completions: dict[str, set[tuple[int, float]]] = collections.defaultdict(set)
    lost: dict[str, set[int]] = collections.defaultdict(set)
    for e in events:
        if e["type"] == "ActivityCompleted":
            completions[e["key"]].add((int(e["attempt"]), float(e["time"])))
        elif e["type"] == "ActivityAttemptFailed" and e["error"] == "WorkerLost":
            lost[e["key"]].add(int(e["attempt"]))
    ended: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for x in lines:
        if x.get("phase") == "end" and x.get("ok"):
            ended[x["key"]][int(x["attempt"])] += 1
    problems = []
    for key, done in sorted(completions.items()):
        if len(done) > 1:
            problems.append(f"activity {key} completed {len(done)} times "
                            f"(attempts {sorted(a for a, _ in done)})")
        attempts = {a for a, _ in done}
        for attempt, n in sorted(ended[key].items()):
            if n > 1:
                problems.append(f"activity {key} attempt {attempt} ran to its end {n} times")
            if attempt not in attempts and attempt not in lost[key]:
                problems.append(f"activity {key} ran to its end at attempt {attempt}, but "
                                f"completed at {sorted(attempts)} and no kill cut it")
    return problems


def signal_problems(lines: list[dict[str, Any]], expected: dict[str, list[str]]
                    ) -> list[str]:
    """Items handled twice (under two keys), and ``expected`` items never handled."""
    handled: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for x in lines:
        label = str(x.get("label", ""))
        if label.startswith("item:") and x.get("phase") == "end" and x.get("ok"):
            handled[(x["id"], label[5:])].add(x["key"])
    problems = [f"signal item {item} to {wid} handled {len(keys)} times (keys {sorted(keys)})"
                for (wid, item), keys in sorted(handled.items()) if len(keys) > 1]
    for wid, items in sorted(expected.items()):
        missing = [i for i in items if (wid, i) not in handled]
        if missing:
            problems.append(f"signal item(s) {missing} to {wid} never handled")
    return problems


def compensation_problems(runs: list[dict[str, Any]], events: list[dict[str, Any]]
                          ) -> list[str]:
    """Canceled runs whose history has no completed compensation."""
    compensated = {e["run_id"] for e in events
                   if e["type"] == "ActivityCompleted" and e["name"] == "sf.compensate"}
    return [f"run {r['workflow_id']}/{r['run_id']} canceled without completing its "
            "compensation" for r in runs
            if r["status"] == "canceled" and r["run_id"] not in compensated]


def run_rows(engine: Engine, prefix: str = "") -> list[dict[str, Any]]:
    """Runs (of ids starting with ``prefix``) as dicts, oldest first."""
    cols = ("run_id", "workflow_id", "workflow", "status", "stuck", "stuck_reason",
            "is_current", "continued_from", "reset_from", "lineage", "started")
    with engine.store.read() as tx:
        rows = tx.execute(f"SELECT {', '.join(cols)} FROM runs WHERE workflow_id LIKE ? "
                          "ORDER BY started, run_id", (prefix + "%",))
    return [dict(zip(cols, row, strict=True)) for row in rows]


def open_run_problems(runs: list[dict[str, Any]]) -> list[str]:
    """Ids with more than one open run, or not exactly one current run."""
    by_id: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in runs:
        by_id[r["workflow_id"]].append(r)
    problems = []
    for wid, rs in sorted(by_id.items()):
        open_runs = [r["run_id"] for r in rs if r["status"] == "running"]
        if len(open_runs) > 1:
            problems.append(f"{wid} has {len(open_runs)} open runs: {open_runs}")
        current = sum(1 for r in rs if r["is_current"])
        if current != 1:
            problems.append(f"{wid} has {current} current runs")
    return problems


class Steering:
    """Operator threads steering ``op-*`` ids at the same time as each other and the killer:
    starts from two clients at once, reruns, signals, double cancels, terminates, retries
    and resets (by id, and by an old run id: refused, naming the current run)."""

    ACTIONS = ("start", "start", "rerun", "signal", "signal", "finish", "fail", "cancel",
               "terminate", "retry", "retry_old", "reset_old")

    def __init__(self, engine: Engine, db: str, config: SoakConfig, report: SoakReport
                 ) -> None:
        self.engine = engine
        self.config = config
        self.report = report
        self.second = Engine(db, flows=[str(OPERATOR_FLOWS)])
        self.ids = [f"{OP_PREFIX}{i}" for i in range(config.operator_ids)]
        self.made: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.items = iter(range(10**9))
        self.threads = [threading.Thread(target=self._loop, args=(random.Random(
            (config.seed or 0) * 1000 + n),), name=f"soak-steer-{n}", daemon=True)
            for n in range(config.operators)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=60)

    def _count(self, what: str) -> None:
        with self.lock:
            self.report.operations[what] = self.report.operations.get(what, 0) + 1

    def _problem(self, text: str) -> None:
        with self.lock:
            self.report.operator_problems.append(text)

    def _loop(self, rng: random.Random) -> None:
        while not self.stop_event.is_set():
            wid = rng.choice(self.ids)
            action = rng.choice(self.ACTIONS)
            try:
                getattr(self, f"_{action}")(wid, rng)
                self._count(action)
            except BadInput:
                self._count(f"{action} refused")
            except Exception as err:  # noqa: BLE001 - every other answer is a finding
                self._problem(f"{action} raised {type(err).__name__}: {wid}: {err}")
            self.stop_event.wait(rng.uniform(0.0, 0.1))

    def _start(self, wid: str, rng: random.Random) -> None:
        workflow = "sf_chain" if int(wid[len(OP_PREFIX):]) % 2 else "sf_saga"
        barrier = threading.Barrier(2)
        results: list[Any] = [None, None]

        def run(i: int, eng: Engine) -> None:
            barrier.wait()
            try:
                results[i] = eng.start(workflow, id=wid)
            except Exception as err:  # noqa: BLE001 - reported below
                results[i] = err

        threads = [threading.Thread(target=run, args=(i, eng))
                   for i, eng in enumerate((self.engine, self.second))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        errors = [r for r in results if isinstance(r, Exception)]
        created = [r for r in results if not isinstance(r, Exception) and r.created]
        with self.lock:
            self.made[wid] += len(created)
        if len(created) > 1:
            self._problem(f"two clients starting one id at once both created a run: {wid}: "
                          f"{created}")
        if errors:
            raise errors[0]

    def _rerun(self, wid: str, rng: random.Random) -> None:
        workflow = "sf_chain" if int(wid[len(OP_PREFIX):]) % 2 else "sf_saga"
        handle = self.engine.start(workflow, id=wid, rerun=True)
        if handle.created:
            with self.lock:
                self.made[wid] += 1

    def _signal(self, wid: str, rng: random.Random) -> None:
        self.engine.signal(wid, "item", f"s{next(self.items)}")

    def _finish(self, wid: str, rng: random.Random) -> None:
        self.engine.signal(wid, "item", "finish")

    def _fail(self, wid: str, rng: random.Random) -> None:
        self.engine.signal(wid, "item", "fail")

    def _cancel(self, wid: str, rng: random.Random) -> None:
        self.engine.cancel(wid)
        time.sleep(rng.uniform(0.0, 0.6))  # the second lands before or during compensation
        with contextlib.suppress(BadInput):
            self.second.cancel(wid)

    def _terminate(self, wid: str, rng: random.Random) -> None:
        self.engine.terminate(wid, "soak operator")

    def _retry(self, wid: str, rng: random.Random) -> None:
        self.engine.retry(wid)

    def _old_run(self, wid: str) -> tuple[str, str] | None:
        runs = run_rows(self.engine, wid)
        old = [r["run_id"] for r in runs if r["workflow_id"] == wid and not r["is_current"]]
        current = [r["run_id"] for r in runs if r["workflow_id"] == wid and r["is_current"]]
        return (old[0], current[0]) if old and current else None

    def _by_old_run(self, wid: str, what: str, call: Callable[[str], Any]) -> None:
        pair = self._old_run(wid)
        if pair is None:
            return
        old, current = pair
        try:
            call(old)
        except BadInput as err:
            if current not in str(err) and _newest_run(self.engine, wid) not in str(err):
                self._problem(f"{what} by an old run id refused without naming the current "
                              f"run: {wid} old {old}, current {current}: {err}")
            return
        self._problem(f"{what} by an old run id accepted: {wid} old {old}, current {current}")

    def _retry_old(self, wid: str, rng: random.Random) -> None:
        self._by_old_run(wid, "retry", self.engine.retry)

    def _reset_old(self, wid: str, rng: random.Random) -> None:
        self._by_old_run(wid, "reset", lambda run_id: self.engine.reset(run_id, 2))

    def close_all(self, deadline: float) -> None:
        """After the chaos: finish every open run of the operators' ids and wait (20 s at
        most) for them to close; terminate by run id any still open (a figure: one open run
        per id is the rule, so each run terminated here beside a current one is a finding)."""
        self.report.operator_problems += [
            f"more than one open (or not one current) run per id at the end of the chaos: {p}"
            for p in open_run_problems(run_rows(self.engine, OP_PREFIX))]
        for wid in self.ids:
            with contextlib.suppress(BadInput):
                self.engine.signal(wid, "item", "finish")
        deadline = min(deadline, time.monotonic() + 20)
        while time.monotonic() < deadline:
            if not any(r["status"] == "running" for r in run_rows(self.engine, OP_PREFIX)):
                return
            self.engine.wait_for_change(0.2)
        for r in run_rows(self.engine, OP_PREFIX):
            if r["status"] == "running":
                with contextlib.suppress(BadInput):
                    self.engine.terminate(r["run_id"], "soak: still open after the chaos")
                self._count("terminated after the chaos")

    def check(self, exec_log: Path) -> None:
        """The operators' checks (see the module docstring)."""
        self.second.close()
        runs = run_rows(self.engine, OP_PREFIX)
        events = activity_events(self.engine, OP_PREFIX)
        lines = [x for x in read_executions(exec_log)[0] if "phase" in x]
        problems = [f"{kind}: {p}" for kind, found in (
            ("more than one open (or not one current) run per id", open_run_problems(runs)),
            ("completed activity ran again", repeated_work(events, lines)),
            ("signal handled twice", signal_problems(lines, {})),
            ("canceled without completing the compensation",
             compensation_problems(runs, events))) for p in found]
        for wid in self.ids:
            fresh = sum(1 for r in runs if r["workflow_id"] == wid
                        and not r["continued_from"] and not r["reset_from"])
            if fresh != self.made[wid]:
                problems.append(f"runs made by start/rerun differ from the starts that said "
                                f"'created': {wid}: {fresh} in the store, {self.made[wid]} "
                                "reported")
        self.report.operator_problems += problems


def _newest_run(engine: Engine, wid: str) -> str:
    current = [r["run_id"] for r in run_rows(engine, wid)
               if r["workflow_id"] == wid and r["is_current"]]
    return current[0] if current else "?"


