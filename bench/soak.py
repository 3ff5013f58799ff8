"""Crash soak: several workers on one database, a mix of flows, and a killer with SIGKILL.

    python -m bench.soak [--runs N --workers W --kills K --seconds S --concurrency C --seed X]
                         [--db postgresql://...] [--pid-namespaces] [--operators N]

For ``S`` seconds runs are started at an even pace while a killer sends SIGKILL to a random
worker at random moments (``K`` in all) and restarts it, and a scripted operator answers
manual tasks and sends signals through the Engine API. Then every worker is left alone
until each run has closed. The mix: parallel activities, durable timers, signals, manual
tasks, child workflows, continue-as-new, a timer racing a signal, and (when the sample
flows are present) the reimbursement flow paying through the bank provider.

At the end it checks that every run reached its expected result; that no completed activity
ran again (per idempotency key, from the activities' execution log and the bank's call log
against history: no attempt number ran twice, nothing ran after its completed attempt, no
execution went unrecorded); that each bank key was paid at most once, and exactly once per
paid claim; that the database passes ``PRAGMA integrity_check``. It prints the figures:
runs, kills, activity executions, re-executions inside the allowed in-flight window,
duplicates (must be 0), and recovery after each kill (median and max).

``--db postgresql://…`` runs it on a fresh schema of that server (dropped afterwards unless
kept). ``--pid-namespaces`` starts every worker in a PID namespace of its own
(``unshare --pid --fork --mount-proc``, as root): same host and boot id, overlapping pids;
no worker may then take another for dead (each 'worker lost' must name a killed worker).
``--operators N`` adds N operator threads that, during the chaos, start (two clients at the
same moment), rerun, signal, cancel (twice), terminate, retry and reset (by workflow id and
by an old run id, which must be refused naming the current run) a small set of ids of
their own (``op-*``, the saga and chain flows of tests/flows/stateful.py); checked: one run
made per successful start, at most one open run per id, no completed activity repeated, no
signal handled twice, every canceled run compensated.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

from engine import Engine
from engine.errors import BadInput, OnwardError, RunStillOpen, WorkflowFailed

REPO = Path(__file__).resolve().parent.parent
SOAK_FLOWS = REPO / "tests" / "flows" / "soak.py"
OPERATOR_FLOWS = REPO / "tests" / "flows" / "stateful.py"
OP_PREFIX = "op-"
SAMPLE_FLOWS = REPO / "sample_flows"
PLUGINS = REPO / "plugins"

TASK_ADD = 5       # what the operator adds when answering a "review" task
SIGNAL_GO = 10     # what the operator sends as signal "go" to soak_signal runs


# --------------------------------------------------------------------------- configuration


@dataclass
class SoakConfig:
    """How big and how violent a soak is."""

    runs: int = 200
    workers: int = 3
    kills: int = 10
    seconds: float = 60.0
    """Length of the chaos phase: runs are started and kills land within it."""
    concurrency: int = 4
    seed: int | None = None
    settle_timeout: float = 300.0
    """After the chaos phase: how long the runs may take to close."""
    samples: bool = True
    """Include the sample reimbursement flow (bank provider) when it is present."""
    step_delay: float = 0.2
    directory: Path | None = None
    """Where the database, logs and provider data go (a fresh temp dir if None)."""
    keep: bool = False
    log: Callable[[str], None] = print
    db: str | None = None
    """A PostgreSQL URL (``postgresql://…``): the soak runs on a fresh schema of it."""
    pid_namespaces: bool = False
    """Start every worker in a PID namespace of its own (``unshare``; needs root)."""
    operators: int = 0
    """Operator threads steering ``op-*`` ids concurrently (0: none)."""
    operator_ids: int = 4


@dataclass
class RunSpec:
    """One run the soak starts, with what the operator must do and what it must return."""

    id: str
    kind: str
    workflow: str
    args: list[Any]
    expected: Any
    signal_after: float | None = None


@dataclass
class Kill:
    """One SIGKILL: when, whom (worker id and pid)."""

    at: float
    pid: int
    worker_id: str | None


@dataclass
class SoakReport:
    """The soak's figures and every violation found."""

    runs: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    seconds: float = 0.0
    settle_seconds: float = 0.0
    executions: int = 0
    in_flight_reruns: int = 0
    worker_lost: int = 0
    duplicates: int = 0
    violations: list[str] = field(default_factory=list)
    wrong_results: list[str] = field(default_factory=list)
    bank_deposits: int = 0
    bank_problems: list[str] = field(default_factory=list)
    takeover: list[float] = field(default_factory=list)
    next_event: list[float] = field(default_factory=list)
    integrity: str = ""
    leftovers: list[str] = field(default_factory=list)
    operator_errors: list[str] = field(default_factory=list)
    torn_log_lines: int = 0
    directory: str = ""
    store: str = "sqlite"
    false_deaths: list[str] = field(default_factory=list)
    operations: dict[str, int] = field(default_factory=dict)
    operator_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.violations and not self.wrong_results and not self.bank_problems
                and self.integrity == "ok" and not self.leftovers
                and not self.operator_errors and self.duplicates == 0
                and not self.false_deaths and not self.operator_problems)

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        ops = ", ".join(f"{k} {n}" for k, n in sorted(self.operations.items()))
        out = [
            f"store: {self.store}",
            f"runs: {self.runs} ({kinds})",
            f"kills: {self.kills} in a {self.seconds:.0f} s chaos phase; all runs closed "
            f"{self.settle_seconds:.1f} s after it",
            f"activity executions: {self.executions}",
            f"re-executions inside the in-flight window (attempt cut by a kill, run again "
            f"as the next attempt): {self.in_flight_reruns}; 'worker lost' attempts "
            f"recorded: {self.worker_lost}",
            f"duplicates (attempt ran twice, ran after completing, completed twice, or "
            f"unrecorded): {self.duplicates}",
            f"bank: {self.bank_deposits} deposits, "
            + ("each key paid exactly once" if not self.bank_problems
               else f"{len(self.bank_problems)} problems"),
            "recovery after a kill, takeover of the victim's attempts: "
            + _stats(self.takeover),
            "recovery after a kill, next history event: " + _stats(self.next_event),
            f"wrong or missing results: {len(self.wrong_results)}",
            f"integrity check: {self.integrity}",
            f"workers taken for dead while alive: {len(self.false_deaths)}",
        ]
        if self.operations:
            out.append(f"operator calls: {ops}; problems: {len(self.operator_problems)}")
        if self.torn_log_lines:
            out.append(f"torn execution-log lines (ignored): {self.torn_log_lines}")
        for title, items in (("violation", self.violations),
                             ("wrong result", self.wrong_results),
                             ("bank", self.bank_problems), ("leftover", self.leftovers),
                             ("operator error", self.operator_errors),
                             ("false death", self.false_deaths)):
            out += [f"  {title}: {item}" for item in items[:20]]
        out += _grouped("operator check", self.operator_problems)
        out.append(f"verdict: {'OK' if self.ok else 'FAILED'}  (files in {self.directory})")
        return out


def _grouped(title: str, problems: list[str], examples: int = 2) -> list[str]:
    """Problems counted by kind (the text before the first colon), with a few examples."""
    kinds: dict[str, list[str]] = collections.defaultdict(list)
    for problem in problems:
        kinds[problem.split(":", 1)[0]].append(problem)
    out = []
    for kind, items in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        out.append(f"  {title}: {len(items)} x {kind}")
        out += [f"      e.g. {item[:300]}" for item in items[:examples]]
    return out


def _stats(values: list[float]) -> str:
    if not values:
        return "n/a (no samples)"
    return (f"median {statistics.median(values):.2f} s, max {max(values):.2f} s "
            f"(n={len(values)})")


# --------------------------------------------------------------------------- the mix


def sample_flows_available() -> bool:
    """True when the reimbursement flow and the providers it uses are in the repo."""
    needed = [SAMPLE_FLOWS / "reimbursement.py", PLUGINS / "bank.py", PLUGINS / "notify.py"]
    return all(p.exists() for p in needed)


def make_specs(count: int, rng: random.Random, samples: bool) -> list[RunSpec]:
    """``count`` runs of a weighted mix of flows, each with its expected result."""
    kinds = ["fan", "timer", "signal", "task", "parent", "loop", "mixed"]
    weights = [3, 2, 2, 2, 2, 2, 1]
    if samples:
        kinds.append("reimbursement")
        weights.append(2)
    specs = []
    for i in range(count):
        kind = rng.choices(kinds, weights)[0]
        base = rng.randint(0, 1000)
        ident = f"soak-{i:05d}-{kind}"
        if kind == "fan":
            n = rng.randint(2, 5)
            specs.append(RunSpec(ident, kind, "soak_fan", [n, base],
                                 sum(base + j + 1 for j in range(n))))
        elif kind == "timer":
            specs.append(RunSpec(ident, kind, "soak_timer",
                                 [round(rng.uniform(0.05, 0.5), 3), base], base + 2))
        elif kind == "signal":
            specs.append(RunSpec(ident, kind, "soak_signal", [base], base + SIGNAL_GO + 1,
                                 signal_after=rng.uniform(0.0, 1.0)))
        elif kind == "task":
            specs.append(RunSpec(ident, kind, "soak_task", [base], base + TASK_ADD + 1))
        elif kind == "parent":
            specs.append(RunSpec(ident, kind, "soak_parent", [base], base + 3))
        elif kind == "loop":
            until = rng.randint(1, 3)
            specs.append(RunSpec(ident, kind, "soak_loop", [0, until, base],
                                 base + until + 1))
        elif kind == "mixed":
            specs.append(RunSpec(ident, kind, "soak_mixed", [base], base + 3,
                                 signal_after=rng.uniform(0.0, 0.4)))
        else:
            cents = rng.randint(100, 99_999)
            claim = {"claim_id": ident, "employee": f"emp{i}", "manager": "soak-manager",
                     "account": f"ACC-{i:05d}", "cents": cents, "direct_deposit": True,
                     "retry_seconds": 0.05}
            specs.append(RunSpec(ident, kind, "reimbursement", [claim],
                                 {"status": "paid", "method": "deposit", "cents": cents}))
    return specs


# --------------------------------------------------------------------------- workers


class WorkerProc:
    """``onward worker`` in a subprocess (in a PID namespace of its own if asked)."""

    def __init__(self, db: str, env: dict[str, str], flows: list[Path], plugins: list[Path],
                 concurrency: int, log: Path, pid_namespace: bool = False) -> None:
        args = [sys.executable, "-m", "engine.cli", "worker", "--db", db,
                "--concurrency", str(concurrency), "--no-watch"]
        for f in flows:
            args += ["--flows", str(f)]
        for p in plugins:
            args += ["--plugins", str(p)]
        if pid_namespace:  # unshare forks the worker as pid 1 of a new namespace
            args = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL",
                    *args]
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=env,
                                         cwd=REPO)
        self.log = log
        self.worker_id: str | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> WorkerProc:
        """Wait for the worker's first line (printed once it has registered)."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line.startswith(b"worker "):
            self.kill()
            tail = self.log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"worker {self.pid} did not start ({line!r}): {tail}")
        self.worker_id = line.split()[1].decode()
        return self

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _inner(self) -> list[int]:
        """The processes ``unshare`` forked (the worker itself), if it is a wrapper."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill(self) -> None:
        if self.proc.poll() is None:
            for pid in self._inner():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc.poll() is None:
            for pid in self._inner() or [self.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


class Pool:
    """The worker processes, with kill-and-restart."""

    def __init__(self, make: Callable[[], WorkerProc], size: int) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.workers = [make() for _ in range(size)]
        for w in self.workers:
            w.wait_ready()

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
        fresh = self._make().wait_ready()
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
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
               ONWARD_TEST_LOG=str(exec_log), ONWARD_DATA=str(data),
               ONWARD_SOAK_DELAY=str(config.step_delay))
    env.pop("ONWARD_TIME_SHIFT", None)

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

    def make_worker() -> WorkerProc:
        return WorkerProc(db, env, flows, plugins, config.concurrency,
                          root / f"worker-{next(counter)}.log", config.pid_namespaces)

    engine = Engine(db, flows=[str(f) for f in flows])
    try:
        _soak(config, rng, engine, db, make_worker, specs, report, exec_log, samples, data)
    finally:
        engine.close()
        if not schema:
            report.integrity = _integrity(Path(db))
        elif report.ok or not config.keep:
            pg_drop_schema(str(config.db), schema)
    for line in report.lines():
        config.log(line)
    if report.ok and not config.keep and config.directory is None:
        shutil.rmtree(root, ignore_errors=True)
    return report


def _soak(config: SoakConfig, rng: random.Random, engine: Engine, db: str,
          make_worker: Callable[[], WorkerProc], specs: list[RunSpec], report: SoakReport,
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
    _check_history(engine, exec_log, report, samples, data)
    _check_recovery(engine, kills, report)
    _check_leftovers(engine, kills, report)
    _check_false_deaths(engine, kills, report)
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


# --------------------------------------------------------------------------- checks


def read_executions(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The activities' execution log (lines), and how many lines were torn."""
    if not path.exists():
        return [], 0
    lines, torn = [], 0
    for text in path.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            torn += 1
    return lines, torn


def bank_calls(data: Path) -> list[tuple[str, int]]:
    """(idempotency key, attempt) of every bank.deposit call, from the bank's own log."""
    path = data / "bank.sqlite3"
    if not path.exists():
        return []
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [(k, a) for k, a in conn.execute(
            "SELECT idempotency_key, attempt FROM calls ORDER BY id")]
    finally:
        conn.close()


def attempt_events(engine: Engine) -> dict[str, list[tuple[str, int, dict[str, Any]]]]:
    """Per idempotency key: (event type, attempt, attrs) of its attempt outcomes."""
    found: dict[str, list[tuple[str, int, dict[str, Any]]]] = collections.defaultdict(list)
    with engine.store.read() as tx:
        rows = tx.execute(
            "SELECT r.lineage, e.type, e.attrs FROM events e JOIN runs r ON r.run_id = e.run_id "
            "WHERE e.type IN ('ActivityAttemptFailed', 'ActivityCompleted') "
            f"AND r.workflow_id NOT LIKE '{OP_PREFIX}%' "
            "ORDER BY e.run_id, e.seq")
    for lineage, kind, attrs_text in rows:
        attrs = json.loads(attrs_text)
        found[f"{lineage}-{attrs['ref']}"].append((kind, int(attrs["attempt"]), attrs))
    return found


def find_repeats(executed: dict[str, list[int]],
                 recorded: dict[str, list[tuple[str, int, dict[str, Any]]]]
                 ) -> tuple[list[str], int, int]:
    """Violations of "no repeated work", in-flight re-executions, 'worker lost' attempts."""
    violations: list[str] = []
    reruns = lost = 0
    for key, events in recorded.items():
        completed = [a for kind, a, _ in events if kind == "ActivityCompleted"]
        lost += sum(1 for kind, _, attrs in events if kind == "ActivityAttemptFailed"
                    and attrs.get("error", {}).get("type") == "WorkerLost")
        if len(completed) > 1:
            violations.append(f"{key} completed {len(completed)} times")
    for key, attempts in executed.items():
        events = recorded.get(key, [])
        counts = collections.Counter(attempts)
        twice = sorted(a for a, n in counts.items() if n > 1)
        if twice:
            violations.append(f"{key}: attempt(s) {twice} ran more than once")
        completed = [a for kind, a, _ in events if kind == "ActivityCompleted"]
        if completed and any(a > completed[0] for a in attempts):
            violations.append(f"{key}: ran after its attempt {completed[0]} completed "
                              f"(executed attempts {sorted(attempts)})")
        seen = {a for _, a, _ in events}
        unrecorded = sorted(set(attempts) - seen)
        if unrecorded:
            violations.append(f"{key}: attempt(s) {unrecorded} ran but are not in history")
        cut = {a for kind, a, attrs in events if kind == "ActivityAttemptFailed"
               and attrs.get("error", {}).get("type") == "WorkerLost"}
        reruns += sum(1 for a in set(attempts) if a in cut)
    return violations, reruns, lost


def _check_history(engine: Engine, exec_log: Path, report: SoakReport, samples: bool,
                   data: Path) -> None:
    lines, report.torn_log_lines = read_executions(exec_log)
    lines = [x for x in lines if "phase" not in x]  # the operators' flows log twice: apart
    executed: dict[str, list[int]] = collections.defaultdict(list)
    for line in lines:
        executed[str(line["key"])].append(int(line["attempt"]))
    calls = bank_calls(data) if samples else []
    for key, attempt in calls:
        executed[key].append(attempt)
    report.executions = len(lines) + len(calls)
    recorded = attempt_events(engine)
    report.violations, report.in_flight_reruns, report.worker_lost = find_repeats(
        executed, recorded)
    report.duplicates = len(report.violations)
    if samples:
        _check_bank(engine, recorded, report, data)


def _check_bank(engine: Engine, recorded: dict[str, list[tuple[str, int, dict[str, Any]]]],
                report: SoakReport, data: Path) -> None:
    from plugins import bank  # the sample provider, read from this process
    ledger = bank.ledger_rows(data)
    paid = collections.Counter(row["idempotency_key"] for row in ledger)
    receipts = {row["idempotency_key"]: row["receipt"] for row in ledger}
    deposits = {key: events for key, events in recorded.items()
                if any(attrs.get("name") == "bank.deposit" for _, _, attrs in events)}
    report.bank_deposits = len(deposits)
    for key, count in paid.items():
        if count > 1:
            report.bank_problems.append(f"{key} paid {count} times")
        if key not in deposits:
            report.bank_problems.append(f"{key} paid, but no run recorded that deposit")
    for key, events in deposits.items():
        done = [attrs for kind, _, attrs in events if kind == "ActivityCompleted"]
        if paid.get(key, 0) != 1:
            report.bank_problems.append(f"{key} paid {paid.get(key, 0)} times (expected 1)")
        elif done and done[0]["result"]["receipt"] != receipts[key]:
            report.bank_problems.append(f"{key}: history's receipt is not the ledger's")


def _check_recovery(engine: Engine, kills: list[Kill], report: SoakReport) -> None:
    with engine.store.read() as tx:
        for kill in kills:
            nxt = tx.scalar("SELECT min(time) FROM events WHERE time > ?", (kill.at,))
            if nxt is not None:
                report.next_event.append(nxt - kill.at)
            if kill.worker_id is None:
                continue
            taken = tx.scalar(
                "SELECT min(time) FROM events WHERE type = 'ActivityAttemptFailed' AND "
                "time >= ? AND attrs LIKE ?", (kill.at - 1.0, f"%{kill.worker_id} %"))
            if taken is not None:
                report.takeover.append(max(0.0, taken - kill.at))


def _check_leftovers(engine: Engine, kills: list[Kill], report: SoakReport) -> None:
    """Work or registrations left behind once every worker stopped. A worker killed near
    the end may still be registered (with no attempts: every run closed): on another host
    or PID namespace it is reaped only when its lease runs out, by a worker still running."""
    killed = {k.worker_id for k in kills}
    with engine.store.read() as tx:
        for what, sql in (
                ("open runs", "SELECT count(*) FROM runs WHERE status = 'running'"),
                ("stuck runs", "SELECT count(*) FROM runs WHERE stuck = 1"),
                ("activity tasks", "SELECT count(*) FROM activity_tasks"),
                ("timers", "SELECT count(*) FROM timers"),
                ("open manual tasks", "SELECT count(*) FROM manual_tasks WHERE status = 'open'")):
            n = tx.scalar(sql)
            if n:
                report.leftovers.append(f"{n} {what}")
        registered = [r[0] for r in tx.execute("SELECT worker_id FROM workers")]
    stopped = [w for w in registered if w not in killed]
    if stopped:
        report.leftovers.append(f"{len(stopped)} registered workers after shutdown "
                                "(stopped, not killed)")


def _check_false_deaths(engine: Engine, kills: list[Kill], report: SoakReport) -> None:
    """'worker lost' attempts that name a worker nobody killed."""
    killed = [k.worker_id for k in kills if k.worker_id]
    with engine.store.read() as tx:
        rows = tx.execute("SELECT r.workflow_id, e.attrs FROM events e JOIN runs r "
                          "ON r.run_id = e.run_id WHERE e.type = 'ActivityAttemptFailed'")
    for wid, attrs_text in rows:
        attrs = json.loads(attrs_text)
        error = attrs.get("error") or {}
        if error.get("type") != "WorkerLost":
            continue
        message = str(error.get("message", ""))
        if not any(f"worker {w} " in message for w in killed):
            report.false_deaths.append(f"{wid} attempt {attrs.get('attempt')}: {message}")


# --------------------------------------------------------------------------- checks of
# the operators' flows (tests/flows/stateful.py logs a start and an end line per execution)


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


def _integrity(db: Path) -> str:
    conn = apsw.Connection(str(db))
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:5])


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="length of the chaos phase (runs start and kills land in it)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--settle", type=float, default=300.0,
                        help="seconds the runs may take to close after the chaos phase")
    parser.add_argument("--no-samples", action="store_true",
                        help="synthetic flows only (no reimbursement through the bank)")
    parser.add_argument("--dir", type=Path, help="keep the database and logs here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir even if OK")
    parser.add_argument("--db", help="postgresql://… : run on a fresh schema of this server")
    parser.add_argument("--pid-namespaces", action="store_true",
                        help="every worker in a PID namespace of its own (unshare; root)")
    parser.add_argument("--operators", type=int, default=0,
                        help="operator threads steering op-* ids during the chaos")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed}")
    report = run_soak(SoakConfig(
        runs=args.runs, workers=args.workers, kills=args.kills, seconds=args.seconds,
        concurrency=args.concurrency, seed=seed, settle_timeout=args.settle,
        samples=not args.no_samples, directory=args.dir, keep=args.keep, db=args.db,
        pid_namespaces=args.pid_namespaces, operators=args.operators))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
