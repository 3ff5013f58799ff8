"""The soak itself: a pool of worker processes, a killer, an operator answering tasks and
signals, and the run from the first start to the last check."""

from __future__ import annotations

import collections
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onward import Engine
from onward.errors import BadInput, OnwardError, RunStillOpen, WorkflowFailed
from tests.helpers import WorkerProcess, env_for

from .checks import (
    check_false_deaths,
    check_history,
    check_leftovers,
    check_recovery,
    integrity,
)
from .mix import (
    OPERATOR_FLOWS,
    PLUGINS,
    REPO,
    SAMPLE_FLOWS,
    SIGNAL_GO,
    SOAK_FLOWS,
    TASK_ADD,
    Kill,
    RunSpec,
    SoakConfig,
    SoakReport,
    make_specs,
    sample_flows_available,
)
from .steering import Steering

READY_TIMEOUT = 60.0
"""Seconds a (re)started worker may take to register."""


class Pool:
    """The worker processes, with kill-and-restart."""

    def __init__(self, make: Callable[[], WorkerProcess], size: int) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.workers = [make() for _ in range(size)]
        for w in self.workers:
            w.wait_ready(READY_TIMEOUT)

    def kill_one(self, rng: random.Random, engine: Engine) -> Kill | None:
        """SIGKILL a random worker, mostly (7 in 10) one that is running attempts."""
        busy = _busy_workers(engine)
        with self._lock:
            live = [w for w in self.workers if w.alive()]
            if not live:
                return None
            working = [w for w in live if w.worker_id in busy]
            victim = rng.choice(working if working and rng.random() < 0.7 else live)
        victim.kill()
        kill = Kill(time.time(), victim.pid, victim.worker_id)
        with self._lock:
            self.workers.remove(victim)
        return kill

    def restart(self) -> None:
        fresh = self._make().wait_ready(READY_TIMEOUT)
        with self._lock:
            self.workers.append(fresh)

    def fill(self, size: int) -> None:
        while len([w for w in self.workers if w.alive()]) < size:
            self.restart()

    def stop_all(self) -> list[int | None]:
        with self._lock:
            workers, self.workers = self.workers, []
        return [w.stop() for w in workers]

    def kill_all(self) -> None:
        with self._lock:
            workers, self.workers = self.workers, []
        for w in workers:
            w.kill()


def _busy_workers(engine: Engine) -> set[str]:
    with engine.store.read() as tx:
        return {owner for (owner,) in tx.execute(
            "SELECT DISTINCT owner FROM activity_tasks WHERE owner IS NOT NULL")}


# --------------------------------------------------------------------------- the operator


class Operator(threading.Thread):
    """Answers manual tasks and sends signals, through the Engine API, until stopped."""

    def __init__(self, engine: Engine, specs: list[RunSpec], started: dict[str, float],
                 errors: list[str]) -> None:
        super().__init__(name="soak-operator", daemon=True)
        self.engine = engine
        self.signals = [s for s in specs if s.signal_after is not None]
        self.started = started
        self.errors = errors
        self.stop_event = threading.Event()
        self.tasks_done = 0
        self.signals_sent = 0

    def run(self) -> None:
        pending = list(self.signals)
        while not self.stop_event.is_set():
            try:
                pending = self._send_signals(pending)
                self._answer_tasks()
            except OnwardError as err:  # a busy store is retried on the next round
                self.errors.append(f"operator: {err}")
            self.stop_event.wait(0.05)

    def _send_signals(self, pending: list[RunSpec]) -> list[RunSpec]:
        later = []
        now = time.monotonic()
        for spec in pending:
            t0 = self.started.get(spec.id)
            if t0 is None or now < t0 + (spec.signal_after or 0):
                later.append(spec)
                continue
            value = SIGNAL_GO if spec.kind == "signal" else 0
            try:
                self.engine.signal(spec.id, "go", value)
                self.signals_sent += 1
            except BadInput as err:
                if spec.kind == "signal":  # a soak_signal run cannot close without it
                    self.errors.append(f"signal to {spec.id} refused: {err}")
        return later

    def _answer_tasks(self) -> None:
        for task in self.engine.tasks():
            if task["kind"] == "review":
                result: Any = {"add": TASK_ADD}
            elif task["kind"] == "approve":
                result = {"approved": True}
            else:
                result = None
            try:
                self.engine.complete_task(task["task_id"], result, by="soak-operator")
                self.tasks_done += 1
            except BadInput as err:
                self.errors.append(f"task {task['task_id']} of {task['id']}: {err}")


# --------------------------------------------------------------------------- the soak


def run_soak(config: SoakConfig) -> SoakReport:
    """Run one soak; the report (its ``ok`` says whether every check passed)."""
    rng = random.Random(config.seed)
    root = config.directory or Path(tempfile.mkdtemp(prefix="onward-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    data, exec_log = root / "provider-data", root / "executions.jsonl"
    data.mkdir(exist_ok=True)
    schema = f"onward_soak_{uuid.uuid4().hex[:10]}" if config.db else None
    db = pg_url_for(config.db, schema) if config.db and schema else str(root / "onward.db")
    samples = config.samples and sample_flows_available()
    flows = [SOAK_FLOWS] + ([SAMPLE_FLOWS] if samples else []) \
        + ([OPERATOR_FLOWS] if config.operators else [])
    plugins = [PLUGINS] if samples else []
    env = env_for(data, ONWARD_TEST_LOG=str(exec_log), ONWARD_SOAK_DELAY=str(config.step_delay))

    specs = make_specs(config.runs, rng, samples)
    report = SoakReport(runs=len(specs), directory=str(root),
                        by_kind=dict(collections.Counter(s.kind for s in specs)),
                        store=f"PostgreSQL schema {schema}" if schema else "SQLite")
    config.log(f"soak in {root} on {report.store}: {len(specs)} runs, {config.workers} "
               f"workers x {config.concurrency}"
               + (" (each in a PID namespace of its own)" if config.pid_namespaces else "")
               + f", {config.kills} kills over {config.seconds:.0f} s"
               + (f", {config.operators} operators" if config.operators else "")
               + ("" if samples else " (sample flows not available: synthetic flows only)"))

    counter = iter(range(1_000_000))

    def make_worker() -> WorkerProcess:
        return WorkerProcess(db, flows=flows, plugins=plugins, concurrency=config.concurrency,
                             env=env, extra=["--no-watch"], cwd=REPO,
                             log=root / f"worker-{next(counter)}.log",
                             pid_namespace=config.pid_namespaces)

    engine = Engine(db, flows=[str(f) for f in flows])
    try:
        _soak(config, rng, engine, db, make_worker, specs, report, exec_log, samples, data)
    finally:
        engine.close()
        if not schema:
            report.integrity = integrity(Path(db))
        elif report.ok or not config.keep:
            pg_drop_schema(str(config.db), schema)
    for line in report.lines():
        config.log(line)
    if report.ok and not config.keep and config.directory is None:
        shutil.rmtree(root, ignore_errors=True)
    return report


def _soak(config: SoakConfig, rng: random.Random, engine: Engine, db: str,
          make_worker: Callable[[], WorkerProcess], specs: list[RunSpec], report: SoakReport,
          exec_log: Path, samples: bool, data: Path) -> None:
    """The chaos phase, the settling, and every check."""
    pool = Pool(make_worker, config.workers)
    started: dict[str, float] = {}
    operator = Operator(engine, specs, started, report.operator_errors)
    steering = Steering(engine, db, config, report) if config.operators else None
    kills: list[Kill] = []
    try:
        operator.start()
        if steering:
            steering.start()
        killer = threading.Thread(target=_killer, name="soak-killer", daemon=True,
                                  args=(pool, config, rng, engine, kills, report.leftovers))
        t0 = time.monotonic()
        killer.start()
        pace = config.seconds / max(1, len(specs))
        for i, spec in enumerate(specs):
            _sleep_until(t0 + i * pace)
            engine.start(spec.workflow, *spec.args, id=spec.id)
            started[spec.id] = time.monotonic()
        killer.join()
        _sleep_until(t0 + config.seconds)
        if steering:
            steering.stop()
        pool.fill(config.workers)
        chaos_end = time.monotonic()
        report.seconds = chaos_end - t0
        report.kills = len(kills)
        config.log(f"chaos over after {report.seconds:.0f} s ({len(kills)} kills); "
                   "waiting for the runs to close")
        _collect_results(engine, specs, chaos_end + config.settle_timeout, report)
        if steering:
            steering.close_all(chaos_end + config.settle_timeout)
        report.settle_seconds = time.monotonic() - chaos_end
    finally:
        operator.stop_event.set()
        operator.join(timeout=10)
        if steering:
            steering.stop()
        codes = pool.stop_all()
    if any(code not in (0, None) for code in codes):
        report.leftovers.append(f"a worker exited with status {codes} on SIGTERM")
    check_history(engine, exec_log, report, samples, data)
    check_recovery(engine, kills, report)
    check_leftovers(engine, kills, report)
    check_false_deaths(engine, kills, report)
    if steering:
        steering.check(exec_log)
    if config.db:
        report.integrity = engine.store.check_integrity()


def pg_url_for(base: str, schema: str) -> str:
    """``base`` with ``schema`` as its search path (and as the connections' name)."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}&application_name={schema}"


def pg_drop_schema(base: str, schema: str) -> None:
    """End the connections that used ``schema`` and drop it."""
    import psycopg
    with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _killer(pool: Pool, config: SoakConfig, rng: random.Random, engine: Engine,
            kills: list[Kill], problems: list[str]) -> None:
    """SIGKILL a worker at ``config.kills`` random moments; restart it soon after."""
    start = time.monotonic()
    moments = sorted(rng.uniform(0.05, 0.95) * config.seconds for _ in range(config.kills))
    try:
        for moment in moments:
            _sleep_until(start + moment)
            kill = pool.kill_one(rng, engine)
            if kill is None:
                continue
            kills.append(kill)
            time.sleep(rng.uniform(0.0, 0.5))
            pool.restart()
    except Exception as err:  # noqa: BLE001 - reported with the soak's other problems
        problems.append(f"killer stopped: {err}")


def _collect_results(engine: Engine, specs: list[RunSpec], deadline: float,
                     report: SoakReport) -> None:
    for spec in specs:
        handle = engine.handle(spec.id)
        try:
            got = handle.result(timeout=max(0.0, deadline - time.monotonic()))
        except RunStillOpen as err:
            shown = engine.show(spec.id, history=False)
            report.wrong_results.append(f"{spec.id}: {err}; step: {shown['step']}; "
                                        f"stuck: {shown['stuck_reason']}")
            continue
        except WorkflowFailed as err:
            report.wrong_results.append(f"{spec.id}: {err}")
            continue
        if got != spec.expected:
            report.wrong_results.append(f"{spec.id}: got {got!r}, expected {spec.expected!r}")


