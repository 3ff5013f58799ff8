"""The soak's checks once every run closed: no repeated work, the bank paid once per
claim, recovery after each kill, nothing left behind, nobody taken for dead."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import apsw

from onward import Engine

from .mix import OP_PREFIX, Kill, SoakReport


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


def check_history(engine: Engine, exec_log: Path, report: SoakReport, samples: bool,
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
        check_bank(engine, recorded, report, data)


def check_bank(engine: Engine, recorded: dict[str, list[tuple[str, int, dict[str, Any]]]],
                report: SoakReport, data: Path) -> None:
    from onward.plugins import bank  # the sample provider, read from this process
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


def check_recovery(engine: Engine, kills: list[Kill], report: SoakReport) -> None:
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


def check_leftovers(engine: Engine, kills: list[Kill], report: SoakReport) -> None:
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


def check_false_deaths(engine: Engine, kills: list[Kill], report: SoakReport) -> None:
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




def integrity(db: Path) -> str:
    conn = apsw.Connection(str(db))
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:5])


