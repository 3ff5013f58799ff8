"""The soak's configuration, its mix of runs with their expected results, and its report."""

from __future__ import annotations

import collections
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
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


