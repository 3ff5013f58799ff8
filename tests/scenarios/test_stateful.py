"""Stateful property test: operator and client interleavings against real workers and stores.

A hypothesis ``RuleBasedStateMachine`` drives, on a fresh SQLite file or PostgreSQL schema per
example, two real ``onward worker`` processes and two client ``Engine`` objects on the same
database. Its rules start ids (the same id from both clients at once, too), rerun closed ids,
send signals, cancel (repeatedly, also while the compensation runs), terminate, retry and reset
(by workflow id, by the current run id and by an old run id), let runs continue as new, and
SIGKILL workers (idle, or while they run an activity or a compensation) and restart them.

After every step the test waits (bounded) until the system is quiet: no run due a workflow
task, no activity queued or running. Then it checks the model and the store:

- at most one open run, and exactly one current run, per workflow id; no run stuck;
- runs created by start/rerun: exactly as many as the model expects (a start of an existing
  id starts nothing, also when two clients race);
- every completed activity ran to its end exactly once, unless its attempt was cut by a kill
  (then the rerun carried the same idempotency key);
- every signal handled exactly once across continue-as-new, retry and reset; none lost while
  its chain of runs is open or completed;
- every canceled run completed its compensation, even when canceled twice; no closed run
  keeps a queued activity or a timer;
- each step's own answer: the existing run on start, a refusal on rerun of an open id, a
  refusal naming the current run on retry/reset by an old run id, the expected status;
- ``store.check_integrity() == "ok"``.

Budget: ``ONWARD_STATEFUL_EXAMPLES`` (default 10) examples of up to ``ONWARD_STATEFUL_STEPS``
(default 20) steps per store, from a fixed seed so CI is reproducible
(``ONWARD_STATEFUL_SEED=N`` picks another, ``random`` a fresh one each run). Shrinking is off
by default (the failing steps are printed in full); ``ONWARD_STATEFUL_SHRINK=1`` shrinks a
failure to its minimal steps. ``ONWARD_STATEFUL_SKIP`` leaves named checks out (see ``SKIP``),
to look past a known break.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from onward import Engine
from onward.errors import BadInput
from tests import pg
from tests.helpers import REPO, WorkerProcess, env_for, wait_until
from tests.soak import (
    activity_events,
    compensation_problems,
    repeated_work,
    signal_problems,
)

pytestmark = pytest.mark.slow

FLOWS = REPO / "tests" / "flows" / "stateful.py"
IDS = ("a", "b", "c")
TYPES = ("sf_saga", "sf_chain")
QUIET_TIMEOUT = 40.0


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


EXAMPLES = _env_int("ONWARD_STATEFUL_EXAMPLES", 10)
STEPS = _env_int("ONWARD_STATEFUL_STEPS", 20)
SEED = os.environ.get("ONWARD_STATEFUL_SEED", "14")
SHRINK = os.environ.get("ONWARD_STATEFUL_SHRINK") == "1"
SKIP = set(filter(None, os.environ.get("ONWARD_STATEFUL_SKIP", "").split(",")))
"""Checks to leave out while a known break awaits its fix (to look for the others): runs,
stuck, status, repeats, signals, compensation, leftovers, integrity; old-run (no retry/reset
by an old run id), race (no concurrent starts)."""


# --------------------------------------------------------------------------- reading the store


def _read(engine: Engine, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with engine.store.read() as tx:
        return list(tx.execute(sql, params))


def _not_quiet(engine: Engine) -> list[str]:
    """What is still due or running: runs due a workflow task, queued or running attempts.

    Both are read in one snapshot: read apart, a commit between the reads that hands a
    run's work to a new run (continue-as-new, reset: the old run's activity withdrawn, the
    new run due its first workflow task) would show neither, and call the system quiet
    while it was busy at every instant."""
    with engine.store.read() as tx:
        due = list(tx.execute(
            "SELECT workflow_id, run_id, step FROM runs WHERE status = 'running' AND "
            "wf_pending = 1 AND stuck = 0 AND paused = 0"))
        queued = list(tx.execute(
            "SELECT r.workflow_id, r.run_id, r.status, a.ref, a.attempt, a.owner "
            "FROM activity_tasks a JOIN runs r ON r.run_id = a.run_id "
            "WHERE r.status = 'running'"))
    busy = [f"run {w}/{r} due a workflow task ({step})" for w, r, step in due]
    busy += [f"activity {ref} of {w}/{r} ({status}) attempt {a} (owner {o})"
             for w, r, status, ref, a, o in queued]
    return busy


def _leftovers(engine: Engine) -> list[str]:
    """Queue rows of closed runs (closing a run withdraws them in the same transaction)."""
    return [f"activity {ref} of {status} run {w}/{r} still queued (attempt {a}, owner {o})"
            for w, r, status, ref, a, o in _read(
                engine, "SELECT r.workflow_id, r.run_id, r.status, a.ref, a.attempt, a.owner "
                "FROM activity_tasks a JOIN runs r ON r.run_id = a.run_id "
                "WHERE r.status <> 'running'")] + \
        [f"timer {ref} of {status} run {w}/{r} still set" for w, r, status, ref in _read(
            engine, "SELECT r.workflow_id, r.run_id, r.status, t.ref FROM timers t "
            "JOIN runs r ON r.run_id = t.run_id WHERE r.status <> 'running'")]


def wait_for_quiet(engine: Engine, timeout: float = QUIET_TIMEOUT) -> None:
    """Bounded wait until nothing is due or running; names what was still busy if not."""
    seen: list[str] = []

    def quiet() -> bool:
        seen[:] = _not_quiet(engine)
        return not seen

    try:
        wait_until(quiet, timeout=timeout, interval=0.05)
    except AssertionError:
        raise AssertionError(f"not quiet after {timeout} s: " + "; ".join(seen[:5])) from None


def _runs(engine: Engine) -> list[dict[str, Any]]:
    cols = ("run_id", "workflow_id", "workflow", "status", "stuck", "stuck_reason",
            "is_current", "continued_from", "reset_from", "lineage", "started")
    return [dict(zip(cols, row, strict=True)) for row in _read(
        engine, f"SELECT {', '.join(cols)} FROM runs ORDER BY started, run_id")]


def _log_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = []
    for text in path.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue  # a line being written right now
    return lines


# --------------------------------------------------------------------------- the machine


class Databases:
    """Fresh databases of one kind for each example, removed afterwards."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def make(self, folder: Path) -> tuple[str, str | None]:
        """A database (path or URL) and the PostgreSQL schema to drop, if any."""
        if self.kind == "sqlite":
            return str(folder / "onward.db"), None
        schema = f"onward_test_sf_{uuid.uuid4().hex[:10]}"
        return pg.url_for(schema), schema


class IdModel:
    """What the model knows of one workflow id."""

    def __init__(self, workflow: str) -> None:
        self.workflow = workflow
        self.fresh = 1          # runs made by start/rerun
        self.items: list[str] = []   # items sent to the current chain (since the last rerun)
        self.expect: str | None = "running"


class OnwardMachine(RuleBasedStateMachine):
    """Clients, operators and a killer against two real workers on a fresh database."""

    databases: Databases

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="onward-stateful-"))
        self.db, self.schema = self.databases.make(self.folder)
        self.log = self.folder / "executions.jsonl"
        self.env = env_for(ONWARD_TEST_LOG=str(self.log), ONWARD_SF_STEP="0.15",
                           ONWARD_SF_COMPENSATE="0.4")
        self.clients: list[Engine] = []
        self.workers: list[WorkerProcess] = []
        self.worker_count = 0
        try:
            self.clients += [Engine(self.db, flows=[str(FLOWS)]) for _ in range(2)]
            for _ in range(2):
                self._spawn()
            for w in self.workers:
                w.wait_ready()
        except BaseException:
            self.teardown()
            raise
        self.engine = self.clients[0]
        self.model: dict[str, IdModel] = {}
        self.item_counter = 0

    # -- workers -------------------------------------------------------------------------
    def _spawn(self) -> WorkerProcess:
        self.worker_count += 1
        w = WorkerProcess(self.db, flows=[FLOWS], concurrency=4, env=self.env,
                          extra=["--no-watch"],
                          log=self.folder / f"worker-{self.worker_count}.log")
        self.workers.append(w)
        return w

    def _alive(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.proc.poll() is None]

    def _kill(self, worker: WorkerProcess) -> None:
        worker.kill()
        self.workers.remove(worker)

    def _kill_pid(self, pid: int) -> None:
        for w in self._alive():
            if w.pid == pid:
                self._kill(w)
                return

    def teardown(self) -> None:
        for w in list(self.workers):
            w.kill()
        for eng in self.clients:
            eng.close()
        if self.schema:
            pg.drop_schema(self.schema)
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------
    def _current(self, wid: str) -> dict[str, Any] | None:
        for r in _runs(self.engine):
            if r["workflow_id"] == wid and r["is_current"]:
                return r
        return None

    def _old_run_ids(self, wid: str) -> list[str]:
        return [r["run_id"] for r in _runs(self.engine)
                if r["workflow_id"] == wid and not r["is_current"]]

    def _next_item(self) -> str:
        self.item_counter += 1
        return f"i{self.item_counter}"

    def _wait_for_line(self, wid: str, label: str, run_id: str | None = None) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for x in reversed(_log_lines(self.log)):
                if x.get("id") == wid and x.get("label") == label and \
                        x.get("phase") == "start" and (run_id is None or x["run_id"] == run_id):
                    return x
            return None
        return wait_until(found, timeout=QUIET_TIMEOUT,  # type: ignore[no-any-return]
                          message=f"activity {label} of {wid} to start")

    def _ident(self, wid: str, how: str) -> tuple[str, str | None]:
        """The identifier an operator passes: the workflow id, the current run id or an old
        run id; and the current run id when ``how`` is "old" (None if there is no old run)."""
        current = self._current(wid)
        if how == "id" or current is None:
            return wid, None
        if how == "run":
            return current["run_id"], None
        old = self._old_run_ids(wid)
        if not old:
            return wid, None
        return old[0], current["run_id"]

    def _refused_naming(self, what: str, call: Any, current_run_id: str) -> None:
        try:
            call()
        except BadInput as err:
            assert current_run_id in str(err), (
                f"{what} by an old run id was refused without naming the current run "
                f"{current_run_id}: {err}")
            return
        raise AssertionError(f"{what} by an old run id was accepted (the current run is "
                             f"{current_run_id}): it must be refused, naming the current run")

    # -- starting ------------------------------------------------------------------------
    @initialize()
    def two_ids(self) -> None:
        """Every example begins with a saga ("a") and a chain ("b") waiting for signals."""
        for wid, workflow in (("a", "sf_saga"), ("b", "sf_chain")):
            self.start(wid, workflow, race=False)

    @rule(wid=st.sampled_from(IDS), workflow=st.sampled_from(TYPES), race=st.booleans())
    def start(self, wid: str, workflow: str, race: bool) -> None:
        """Start ``wid`` from one client, or from both at once."""
        race = race and "race" not in SKIP
        before = self._current(wid)
        handles = self._together([lambda eng=eng: eng.start(workflow, id=wid)
                                  for eng in (self.clients if race else self.clients[:1])])
        created = [h for h in handles if h.created]
        run_ids = {h.run_id for h in handles}
        if before is None:
            assert len(created) == 1 and len(run_ids) == 1, (
                f"start of new id {wid} from {len(handles)} clients: {handles!r} "
                f"({len(created)} created)")
            self.model[wid] = IdModel(workflow)
        else:
            assert not created and run_ids == {before["run_id"]}, (
                f"start of existing id {wid} (run {before['run_id']}) gave {handles!r}")

    @rule(wid=st.sampled_from(IDS), race=st.booleans())
    def rerun(self, wid: str, race: bool) -> None:
        """``start --rerun``: a new run once the last one closed; refused while it is open."""
        race = race and "race" not in SKIP
        before = self._current(wid)
        workflow = self.model[wid].workflow if wid in self.model else "sf_saga"
        outcomes = self._together([lambda eng=eng: eng.start(workflow, id=wid, rerun=True)
                                   for eng in (self.clients if race else self.clients[:1])],
                                  refusals=True)
        created = [h for h in outcomes if not isinstance(h, BadInput) and h.created]
        if before is not None and before["status"] == "running":
            assert not created, f"rerun of open id {wid} started {created!r}"
            assert all(isinstance(h, BadInput) for h in outcomes), outcomes
            return
        assert len(created) == 1, (f"rerun of closed id {wid} from {len(outcomes)} clients: "
                                   f"{outcomes!r} ({len(created)} runs created)")
        for h in outcomes:
            assert isinstance(h, BadInput) or h.run_id == created[0].run_id, outcomes
        if wid in self.model:
            self.model[wid].fresh += 1
            self.model[wid].items = []
            self.model[wid].expect = "running"
        else:
            self.model[wid] = IdModel(workflow)

    def _together(self, calls: list[Any], refusals: bool = False) -> list[Any]:
        """Run the calls in threads released at once; their results (or refusals)."""
        barrier = threading.Barrier(len(calls))
        results: list[Any] = [None] * len(calls)

        def run(i: int) -> None:
            barrier.wait()
            try:
                results[i] = calls[i]()
            except BadInput as err:
                results[i] = err if refusals else AssertionError(f"refused: {err}")
            except Exception as err:  # noqa: BLE001 - reported below with the call
                results[i] = AssertionError(f"{type(err).__name__}: {err}")

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        errors = [r for r in results if isinstance(r, AssertionError)]
        assert not errors, f"concurrent calls failed: {errors}"
        return results

    # -- steering ------------------------------------------------------------------------
    @rule(wid=st.sampled_from(IDS), what=st.sampled_from(["item", "item", "finish", "fail"]),
          burst=st.integers(1, 3))
    def signal(self, wid: str, what: str, burst: int) -> None:
        """Send ``burst`` signals at once (items, or finish / fail as the last one)."""
        current = self._current(wid)
        payloads = [self._next_item() for _ in range(burst - 1)]
        payloads.append(self._next_item() if what == "item" else what)
        for payload in payloads:
            if current is None or current["status"] != "running":
                with pytest.raises(BadInput):
                    self.engine.signal(wid, "item", payload)
                continue
            self.engine.signal(wid, "item", payload)
            model = self.model[wid]
            if payload == "finish":
                model.expect = "completed"
                break
            if payload == "fail":
                model.expect = "failed"
                break
            model.items.append(payload)

    @rule(wid=st.sampled_from(IDS), times=st.integers(1, 3), during=st.booleans())
    def cancel(self, wid: str, times: int, during: bool) -> None:
        """Cancel, then cancel again (``during``: once the compensation is running)."""
        current = self._current(wid)
        if current is None or current["status"] != "running":
            with pytest.raises(BadInput):
                self.engine.cancel(wid)
            return
        self.engine.cancel(wid)
        self.model[wid].expect = "canceled"
        if during:
            self._wait_for_line(wid, "compensate", current["run_id"])
        for _ in range(times - 1):
            try:
                self.clients[1].cancel(wid)
            except BadInput:
                pass  # it may have closed already: a state, not a stream

    @rule(wid=st.sampled_from(IDS))
    def terminate(self, wid: str) -> None:
        current = self._current(wid)
        if current is None or current["status"] != "running":
            with pytest.raises(BadInput):
                self.engine.terminate(wid, "stateful test")
            return
        self.engine.terminate(wid, "stateful test")
        self.model[wid].expect = "terminated"

    @rule(wid=st.sampled_from(IDS), how=st.sampled_from(["id", "run", "old"]))
    def retry(self, wid: str, how: str) -> None:
        """Retry by workflow id, current run id, or an old run id (refused, naming the
        current run)."""
        ident, current_run_id = self._ident(wid, how)
        if current_run_id is not None and "old-run" in SKIP:
            return
        if current_run_id is not None:
            self._refused_naming("retry", lambda: self.engine.retry(ident), current_run_id)
            return
        current = self._current(wid)
        if current is None:
            with pytest.raises(BadInput):
                self.engine.retry(ident)
            return
        if current["status"] != "failed":
            with pytest.raises(BadInput):
                self.engine.retry(ident)
            return
        self.engine.retry(ident)
        self.model[wid].expect = "running"

    @rule(wid=st.sampled_from(IDS), how=st.sampled_from(["id", "run", "old"]),
          seq=st.integers(1, 30))
    def reset(self, wid: str, how: str, seq: int) -> None:
        """Reset to event ``seq`` (refusals allowed: a bad cut, completed work discarded)."""
        ident, current_run_id = self._ident(wid, how)
        if current_run_id is not None and "old-run" in SKIP:
            return
        if current_run_id is not None:
            self._refused_naming("reset", lambda: self.engine.reset(ident, seq),
                                 current_run_id)
            return
        if self._current(wid) is None:
            with pytest.raises(BadInput):
                self.engine.reset(ident, seq)
            return
        try:
            self.engine.reset(ident, seq)
        except BadInput:
            return
        self.model[wid].expect = None  # where the new run stands depends on the cut

    # -- the killer ----------------------------------------------------------------------
    @rule(restart=st.booleans())
    def kill_idle_worker(self, restart: bool) -> None:
        """SIGKILL a worker; restart it now, or later (one worker always stays)."""
        alive = self._alive()
        self._kill(alive[0])
        if restart or len(alive) < 2:
            self._spawn().wait_ready()

    @rule()
    def restart_worker(self) -> None:
        if len(self._alive()) < 2:
            self._spawn().wait_ready()

    @rule(wid=st.sampled_from(IDS))
    def kill_during_activity(self, wid: str) -> None:
        """Send an item and SIGKILL the worker while it runs the item's activity."""
        current = self._current(wid)
        if current is None or current["status"] != "running":
            return
        item = self._next_item()
        self.engine.signal(wid, "item", item)
        self.model[wid].items.append(item)
        line = self._wait_for_line(wid, f"item:{item}")
        self._kill_pid(int(line["pid"]))
        self._spawn().wait_ready()

    @rule(wid=st.sampled_from(IDS), again=st.booleans())
    def kill_during_compensation(self, wid: str, again: bool) -> None:
        """Cancel, SIGKILL the worker running the compensation, maybe cancel again."""
        current = self._current(wid)
        if current is None or current["status"] != "running":
            return
        self.engine.cancel(wid)
        self.model[wid].expect = "canceled"
        line = self._wait_for_line(wid, "compensate", current["run_id"])
        self._kill_pid(int(line["pid"]))
        self._spawn().wait_ready()
        if again:
            try:
                self.clients[1].cancel(wid)
            except BadInput:
                pass

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def quiet_then_consistent(self) -> None:
        """Wait for quiet, then check the model and the store."""
        wait_for_quiet(self.engine)
        runs = _runs(self.engine)
        events = activity_events(self.engine)
        lines = _log_lines(self.log)
        expected = {wid: m.items for wid, m in self.model.items()
                    if (cur := self._current_of(runs, wid)) is not None
                    and (cur["status"] == "completed"
                         or (cur["status"] == "running" and not cur["stuck"]))}
        found = {"repeats": repeated_work(events, lines),
                 "signals": signal_problems(lines, expected),
                 "compensation": compensation_problems(runs, events),
                 "leftovers": _leftovers(self.engine),
                 "integrity": [f"integrity check: {verdict}" for verdict in
                               [self.engine.store.check_integrity()] if verdict != "ok"]}
        for kind, problem in self._run_problems(runs):
            found.setdefault(kind, []).append(problem)
        problems = [f"[{kind}] {p}" for kind, ps in found.items() if kind not in SKIP
                    for p in ps]
        assert not problems, "\n".join(problems)

    def _tail(self, run_id: str, count: int = 12) -> str:
        """The last events of a run, compactly, for a failure message."""
        events = self.engine.history(run_id)[-count:]
        return ", ".join(f"{e['seq']} {e['type']}"
                         + (f"({e['attrs'].get('name')}={e['attrs'].get('payload')!r})"
                            if e["type"] == "SignalReceived" else "") for e in events)

    @staticmethod
    def _current_of(runs: list[dict[str, Any]], wid: str) -> dict[str, Any] | None:
        return next((r for r in runs if r["workflow_id"] == wid and r["is_current"]), None)

    def _run_problems(self, runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        by_id: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for r in runs:
            by_id[r["workflow_id"]].append(r)
        for wid, rs in sorted(by_id.items()):
            open_runs = [r["run_id"] for r in rs if r["status"] == "running"]
            current = [r for r in rs if r["is_current"]]
            if len(open_runs) > 1:
                problems.append(("runs", f"{wid} has {len(open_runs)} open runs: {open_runs}"))
            if len(current) != 1:
                problems.append(("runs", f"{wid} has {len(current)} current runs"))
            problems += [("stuck", f"run {wid}/{r['run_id']} stuck: {r['stuck_reason']}")
                         for r in rs if r["stuck"]]
            fresh = sum(1 for r in rs if not r["continued_from"] and not r["reset_from"])
            model = self.model.get(wid)
            if model is None:
                problems.append(("runs", f"{wid} has runs the model never started"))
                continue
            if fresh != model.fresh:
                problems.append(("runs", f"{wid} has {fresh} runs made by start/rerun, "
                                         f"expected {model.fresh}"))
            if model.expect and current and current[0]["status"] != model.expect:
                problems.append(("status", f"{wid}: current run {current[0]['run_id']} is "
                                 f"{current[0]['status']}, expected {model.expect}; its "
                                 f"history ends {self._tail(current[0]['run_id'])}"))
        return problems


# --------------------------------------------------------------------------- the tests


def _settings() -> settings:
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if SHRINK else [])
    return settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                    database=None, phases=phases,
                    suppress_health_check=list(HealthCheck), print_blob=False)


def _run(kind: str) -> None:
    machine = type(f"OnwardMachine_{kind}", (OnwardMachine,), {"databases": Databases(kind)})
    if SEED != "random":
        machine = seed(int(SEED))(machine)
    run_state_machine_as_test(machine, settings=_settings())


LONG = any(name.startswith("ONWARD_STATEFUL_") for name in os.environ)
"""A run tuned by hand (longer, shrinking): no per-test timeout."""


@pytest.mark.timeout(0 if LONG else 300)
def test_interleaved_operations_on_sqlite_keep_every_guarantee() -> None:
    _run("sqlite")


@pytest.mark.postgres
@pytest.mark.timeout(0 if LONG else 300)
def test_interleaved_operations_on_postgres_keep_every_guarantee() -> None:
    reason = pg.unavailable()
    if reason:
        pytest.skip(reason)
    _run("postgres")


# --------------------------------------------------------------------------- the checkers


def test_the_repeat_checker_allows_only_attempts_a_kill_cut() -> None:
    events = [
        {"type": "ActivityAttemptFailed", "key": "k1", "attempt": 1, "error": "WorkerLost",
         "time": 1.0},
        {"type": "ActivityCompleted", "key": "k1", "attempt": 2, "error": None, "time": 2.0},
        {"type": "ActivityCompleted", "key": "k2", "attempt": 1, "error": None, "time": 1.0},
        {"type": "ActivityCompleted", "key": "k2", "attempt": 1, "error": None, "time": 1.0},
        {"type": "ActivityCompleted", "key": "k3", "attempt": 1, "error": None, "time": 1.0},
        {"type": "ActivityCompleted", "key": "k3", "attempt": 1, "error": None, "time": 5.0},
    ]
    ok = {"phase": "end", "ok": True}
    lines = [{"key": "k1", "attempt": 1, **ok}, {"key": "k1", "attempt": 2, **ok},
             {"key": "k2", "attempt": 1, **ok},  # a reset copied its completion: still once
             {"key": "k3", "attempt": 1, **ok}, {"key": "k3", "attempt": 1, **ok}]
    problems = "\n".join(repeated_work(events, lines))
    assert "k1" not in problems and "k2" not in problems
    assert "activity k3 completed 2 times" in problems
    assert "activity k3 attempt 1 ran to its end 2 times" in problems


def test_the_signal_checker_finds_twice_handled_and_lost_items() -> None:
    ok = {"phase": "end", "ok": True}
    lines = [{"id": "a", "label": "item:i1", "key": "L-5", **ok},
             {"id": "a", "label": "item:i1", "key": "M-5", **ok},
             {"id": "a", "label": "item:i2", "key": "L-9", **ok}]
    problems = signal_problems(lines, {"a": ["i1", "i2", "i3"]})
    assert problems == ["signal item i1 to a handled 2 times (keys ['L-5', 'M-5'])",
                        "signal item(s) ['i3'] to a never handled"]


class _ReadsHandOver:
    """``engine`` as the quiet check sees it, except that ``between`` runs once, right
    after the first query of a read (a commit landing between two reads)."""

    def __init__(self, engine: Engine, between: Any) -> None:
        self._engine, self._between = engine, between
        self.store = self

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        with self._engine.store.read() as tx:
            yield self._Tx(tx, self)

    class _Tx:
        def __init__(self, tx: Any, owner: _ReadsHandOver) -> None:
            self._tx, self._owner = tx, owner

        def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
            rows = self._tx.execute(sql, params)
            between, self._owner._between = self._owner._between, None
            if between is not None:
                between()
            return rows


@pytest.mark.timeout(120)
def test_the_quiet_check_never_calls_quiet_a_run_handing_its_work_to_the_next(
        any_db: str | Path, tmp_path: Path) -> None:
    """A run whose activity is running is busy; a new run due its first workflow task is
    busy. A commit that turns the first into the second (continue-as-new, reset) between
    the check's reads must not make the check see neither and call the system quiet."""
    log = tmp_path / "executions.jsonl"
    env = env_for(ONWARD_TEST_LOG=str(log), ONWARD_SF_STEP="60")
    with Engine(any_db, flows=[str(FLOWS)]) as client:
        client.start("sf_chain", 2, 0, id="b")
        with WorkerProcess(any_db, flows=[FLOWS], concurrency=4, env=env,
                           extra=["--no-watch"], log=tmp_path / "worker.log") as worker:
            wait_until(lambda: any(x["label"] == "book" for x in _log_lines(log)))
            worker.kill()  # the book activity stays claimed, the run waits on it
        assert _not_quiet(client), "a claimed activity is work in progress"
        # the hand-over: the old run's activity withdrawn, a new run due its first task
        handed = _ReadsHandOver(client, lambda: client.reset("b", 1, discard_completed=True))
        busy = _not_quiet(handed)  # type: ignore[arg-type]
        assert busy, "the quiet check called quiet what was busy at every instant"
        assert _not_quiet(client), "the new run is due its first workflow task"
