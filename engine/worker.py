"""The worker: one dispatcher thread that turns the store's queues into progress.

Each turn of the dispatcher is one write transaction that records finished attempts,
fires due timers, runs the workflow tasks they make due (on cached instances), takes
over work from dead workers, and claims new attempts; attempts start only after that
transaction is durable. Many runs' steps share one commit when the worker is busy.

The worker is the dispatcher only; the parts of a turn live beside their subject:
membership, heartbeats and reaping in ``liveness``, timers in ``timers``, recording attempt
outcomes in ``attempts.record_outcomes``, claims whose commit is in doubt in ``claims``,
reporting committed turns (logs, metrics, traces) in ``worklog``. It depends on the
``runtime``, never on ``Engine``.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from . import attempts, history, schedules
from .advance import AdvanceOutcome
from .attempts import Attempt, Ending, record_outcomes
from .claims import ClaimsInDoubt
from .errors import DatabaseCorrupt, StoreError, error_json, safe_str
from .executor import ActivityExecutor, Outcome
from .group_commit import GroupCommitter
from .history import RunRow
from .instance import WorkflowTaskError
from .liveness import Membership
from .runtime import Runtime
from .store import queues
from .store.base import Tx
from .timers import fire_due_timers, next_due
from .turn_reads import locked_runs
from .worklog import TurnReporter, WorkflowTask, note_workflow_task, report_started, report_turn

log = logging.getLogger("onward.worker")

MAINTENANCE_INTERVAL = 0.25
BATCH = 200
OVERRUN_PAUSE = 0.25
"""After a turn in which workflow code ran into its deadline (holding the write lock that
long), the dispatcher waits this long before its next turn so that other writers (starts,
operator commands, other workers) get their turn: SQLite's busy handler polls every 0.1 s."""


class InlineTaskFailed(Exception):
    """A start's first workflow task, run without a savepoint, failed to be recorded: its
    transaction is lost and the start is done again with the task isolated."""


class Worker:
    """Runs workflow tasks and activity attempts for one engine until stopped."""

    def __init__(self, runtime: Runtime, *, concurrency: int = 8,
                 lease_ttl: float | None = None, poll_interval: float = 0.02,
                 worker_id: str | None = None, tracer_provider: Any = None) -> None:
        """``tracer_provider``: an OpenTelemetry TracerProvider to emit spans to (see
        engine/tracing.py); without one, spans are emitted when the ``OTEL_*`` environment
        asks for them and opentelemetry is installed."""
        self.runtime = runtime
        self.store = runtime.store
        self.session = runtime.store.session()
        self.clock = runtime.clock
        self.concurrency = max(1, concurrency)
        self.lease_ttl = lease_ttl if lease_ttl is not None else runtime.lease_ttl
        self.poll_interval = poll_interval
        self.worker_id = worker_id or runtime.new_id("worker")
        self.outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._heartbeats: dict[tuple[str, int], tuple[Attempt, Any]] = {}
        self._hb_lock = threading.Lock()
        self._wake = threading.Event()
        self._news = False
        """Something besides this worker's own outcomes asked for a look at the store."""
        self._news_lock = threading.Lock()  # (a wake between reading and clearing is kept)
        self._stopping = threading.Event()
        self._draining = False
        self._thread: threading.Thread | None = None
        self._next_due = 0.0
        # Upkeep is paced by time.monotonic(), not by the engine's clock, which may step
        # (when it follows the database server's): a step back must not pause heartbeats.
        self._next_maintenance = 0.0
        self._next_reap = 0.0
        self._next_heartbeat = 0.0
        self.membership = Membership(self.worker_id, lease_ttl=self.lease_ttl,
                                     concurrency=self.concurrency,
                                     activity_names=runtime.registry.activity_names)
        self._token: Any = None
        self._backlog = False
        self.doubts = ClaimsInDoubt(self.worker_id)
        """Claims of transactions whose commit failed, kept under ``runtime.advance_lock``."""
        self._queued = False
        """Ready attempts may be waiting for room in this worker (claim on the next turn)."""
        self._retry_stuck = True
        self._isolate = False
        """Give each run's workflow task its own savepoint (after a turn failed without)."""
        self._overran = False
        """Workflow code ran into its deadline in this turn: advance no more runs in it."""
        self.executor = ActivityExecutor(
            self.concurrency, runtime.registry.activity, self.outcomes, self._wake.set,
            self._on_heartbeat)
        self.executor.settle_inline = self._settle_inline
        self.committer = runtime.committer if getattr(self.session, "shares_writer", False) \
            else GroupCommitter(self.session.write, runtime.advance_lock,
                                on_commit=runtime.feed.publish)
        """Where this worker's turns commit: with the engine's other writes when they share
        a connection (SQLite), else on the worker's own session (PostgreSQL)."""
        self.inline_settled = 0
        self.ticks = 0
        self.error: str | None = None
        self.reporters: list[TurnReporter] = []
        """Told about each committed turn, after the engine's (``runtime.reporters``)."""
        from .tracing import tracing_for
        spans = tracing_for(tracer_provider)
        if spans is not None:
            self.reporters.append(spans)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Worker:
        """Register with the store, recover what dead workers left, and begin working."""
        verdict = self.store.check_integrity()
        if verdict != "ok":
            raise DatabaseCorrupt(f"{self.store.url} fails its integrity check ({verdict}); "
                                  "restore it from a backup")
        now = self.clock()
        with self.session.write() as tx:
            self.membership.register(tx, now)
            history.register_workflow_types(tx, self.runtime.registry.workflow_names(), now)
            self.membership.reap(tx, now)
        self.runtime.feed.add_listener(self.wake)
        self._thread = threading.Thread(target=self._run, name="onward-dispatcher",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop claiming work, let running attempts finish (up to ``grace`` s), deregister."""
        if self._thread is None:
            return
        if sys.is_finalizing():
            return  # threads are frozen mid-step: the next worker reaps this one's attempts
        self._draining = True
        deadline = time.monotonic() + grace
        while self.executor.busy and time.monotonic() < deadline:
            self.wake()
            time.sleep(0.01)
        self._stopping.set()
        self.wake()
        self._thread.join()
        self._thread = None
        self.runtime.feed.remove_listener(self.wake)
        self.executor.shutdown(wait=False)
        try:
            with self.session.write() as tx:
                self._apply_outcomes(tx, self._drain(), self.clock(), [], set())
                self.doubts.hand_back(tx)
                self.membership.release(tx, self.clock())
        except StoreError as err:
            log.warning("worker %s could not deregister: %s", self.worker_id, err)
        else:
            self.runtime.feed.publish(tx)
            self.report_commit(tx)
        for reporter in self.reporters:
            close = getattr(reporter, "close", None)
            if close is not None:
                close()
        self.session.close()

    def wake(self) -> None:
        """Ask the dispatcher to look at the store now."""
        with self._news_lock:
            self._news = True
        self._wake.set()

    def retry_stuck_runs(self) -> None:
        """Retry stuck runs on the next turn (after new code was loaded)."""
        self._retry_stuck = True
        self.wake()

    # -- the dispatcher ---------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                did = self._tick()
                backoff = 0.0
                self.error = None
            except StoreError as err:
                backoff = min(max(backoff * 2, 0.1), 5.0)
                self.error = str(err)
                log.warning("worker %s: %s; retrying in %.1fs", self.worker_id, err, backoff)
                self._wake.wait(backoff)
                self._wake.clear()
                self._backlog = True  # wake-ups were consumed meanwhile: look everywhere
                continue
            except BaseException:  # noqa: BLE001 - the dispatcher must survive and report
                log.exception("worker %s: unexpected error", self.worker_id)
                backoff = min(max(backoff * 2, 0.1), 5.0)
                self._wake.wait(backoff)
                self._wake.clear()
                self._backlog = True  # wake-ups were consumed meanwhile: look everywhere
                continue
            if self._overran:  # the write lock was held a deadline long: let others in
                self._stopping.wait(OVERRUN_PAUSE)
                self._overran = False
            elif not did:  # the next turn consumes the wake-up (clearing it here could
                self._wake.wait(self.poll_interval)  # lose one that came during this turn)

    def _drain(self) -> list[Outcome]:
        items: list[Outcome] = []
        while len(items) < 1024:
            try:
                items.append(self.outcomes.get_nowait())
            except queue.Empty:
                break
        return items

    def _tick(self) -> bool:
        now = self.clock()
        woken = self._wake_requested()  # before draining: a later wake means new outcomes
        outcomes = self._drain()
        with self._hb_lock:
            beats, self._heartbeats = self._heartbeats, {}
        maintenance = time.monotonic() >= self._next_maintenance
        token = self.session.change_token()
        changed = token != self._token or woken or self._backlog
        if not (outcomes or beats or maintenance or changed or self.doubts.attempts or
                now >= self._next_due):
            return False
        self._token = token
        self._backlog = False
        if not (outcomes or beats or maintenance or self._retry_stuck or self.doubts.attempts) and \
                not self._work_visible(now):
            return False  # woken by news that needs no write (e.g. a run started eagerly)
        self.ticks += 1
        dispatch: list[Attempt] = []
        touched: set[str] = set()

        def turn(tx: Tx) -> None:  # (done again, afresh, if its batch is)
            dispatch.clear()
            touched.clear()
            self.doubts.settle(tx, now, dispatch)
            self._apply_outcomes(tx, outcomes, now, dispatch, touched)
            for attempt, details in beats.values():
                told = attempts.record_heartbeat(tx, attempt.run_id, attempt.ref,
                                                 self.worker_id, attempt.attempt,
                                                 details, now)
                if told == "lost":
                    self.executor.abandon(attempt.run_id, attempt.ref)
                elif told == "cancel":
                    self.executor.cancel(attempt.run_id, attempt.ref, attempt.attempt)
            if self._retry_stuck:
                self._mark_stuck_pending(tx)
            scan = changed or maintenance or now >= self._next_due
            if scan:
                self._fire_timers(tx, now, dispatch, touched)
                self._advance_pending(tx, dispatch, touched)
            if maintenance:
                self._maintain(tx, now, dispatch, touched)
            free = self.concurrency - self.executor.busy - len(dispatch)
            if not self._draining and free > 0 and (scan or self._queued):
                claimed = attempts.claim(
                    tx, self.worker_id,
                    self.runtime.registry.activity_names() + self.membership.orphans,
                    free, now,
                    self.runtime.registry.limits())
                dispatch.extend(claimed)
                self._queued = len(claimed) == free
                self._backlog = self._backlog or self._queued
            if scan or touched:
                self._next_due = next_due(tx, now,
                                          limited=bool(self.runtime.registry.limits()))

        try:  # joins whatever else this process is committing (group commit)
            _, tx = self.committer.run_job(
                turn, undo=lambda _err: self._undo(dispatch, touched), locked=True,
                background=True)
        except BaseException as err:
            for outcome in outcomes:
                self.outcomes.put(outcome)
            if not self._isolate and isinstance(err, Exception) and \
                    not isinstance(err, StoreError):
                # One run's workflow task failed and took the turn with it: do the turn
                # again at once, each run in its own savepoint, so only that run is held.
                self._isolate = self._backlog = True
                return True
            raise
        self._isolate = False
        self._retry_stuck = False
        self.dispatch(dispatch)  # after the committer published the turn's events
        self.report_commit(tx)
        self.runtime.feed.notify(tx)
        return bool(outcomes or dispatch or touched)

    def _settle_inline(self, outcome: Outcome) -> bool:
        """Record an outcome in the thread that produced it, through the group committer.

        When the worker is quiet this commits at once and spares the hand-off to the
        dispatcher (a sequential workflow then runs step after step without waiting on
        another thread); while something else commits (a turn, starts, other outcomes) it
        joins the next commit. Outcomes already queued for the dispatcher go with it.
        """
        if self._draining or self._thread is None or not self.outcomes.empty() or \
                not self.committer.idle:  # busy: the dispatcher's next turn takes it along
            return False
        dispatch: list[Attempt] = []
        touched: set[str] = set()

        def settle(tx: Tx) -> None:
            dispatch.clear()
            touched.clear()
            now = self.clock()
            self.doubts.settle(tx, now, dispatch)
            self._apply_outcomes(tx, [outcome], now, dispatch, touched)

        try:  # a turn or a start committing now takes this along in its next commit
            _, tx = self.committer.run_job(
                settle, undo=lambda _err: self._undo(dispatch, touched), locked=True,
                background=True)
        except Exception:  # noqa: BLE001 - the dispatcher retries it the ordinary way
            return False
        self.inline_settled += 1
        self.dispatch(dispatch)
        self.report_commit(tx)
        self.runtime.feed.notify(tx)
        if self._backlog or self._queued:
            self.wake()
        return True

    def _undo(self, dispatch: list[Attempt], touched: set[str]) -> None:
        """A transaction of this worker's failed (its commit too, maybe): its claims are in
        doubt and the instances it advanced ran ahead (under ``runtime.advance_lock``)."""
        self.doubts.add(dispatch)
        for run_id in touched:
            self.runtime.cache.evict(run_id)

    @property
    def reporting(self) -> bool:
        """Whether anything (metrics, traces) is told about committed turns."""
        return bool(self.runtime.reporters or self.reporters)

    def report_commit(self, tx: Tx) -> None:
        """Log the failures ``tx`` (now committed) recorded and tell the reporters
        (metrics, traces) about it (see ``worklog``)."""
        report_turn(tx, [*self.runtime.reporters, *self.reporters] if self.reporting else [])

    def dispatch(self, claimed: list[Attempt]) -> None:
        """Start attempts claimed in a transaction that has now committed."""
        if self.reporting:
            report_started(claimed, [*self.runtime.reporters, *self.reporters])
        for attempt in claimed:
            self.executor.submit(attempt)

    def start_inline(self, tx: Tx, run: RunRow, *, isolate: bool = False) -> list[Attempt]:
        """Run a new run's first workflow task inside the transaction that starts it.

        The caller holds ``runtime.advance_lock``, inserted ``run`` not due
        (``insert_run(runs_inline=True)``: this saves it, due or not), and dispatches the
        returned attempts after its commit. Saves a commit and a round trip per run (an
        eager start). Without ``isolate`` the task runs without a savepoint and a failure
        to record it raises InlineTaskFailed (the transaction is lost): the caller does
        the start again with ``isolate``, which holds the run instead."""
        if self._draining:
            history.save_run_state(tx, run)  # due: the dispatcher of some worker runs it
            return []
        claimed: list[Attempt] = []
        with self.doubts.guard(claimed):
            self.doubts.settle(tx, self.clock(), claimed)
            if isolate:
                self._advance(tx, run, claimed, set(), isolate=True)  # a failure holds it
                return claimed
            try:
                self._advance(tx, run, claimed, set(), isolate=False)
            except StoreError:
                raise
            except Exception as err:
                raise InlineTaskFailed(f"{type(err).__name__}: {safe_str(err)}") from err
        return claimed

    def claims_in_doubt(self, claimed: list[Attempt]) -> None:
        """Attempts claimed in a transaction whose commit failed (the caller still holds
        ``runtime.advance_lock``): it may have committed, its acknowledgement lost. The
        next transaction finds out, and starts those that are this worker's."""
        if claimed:
            self.doubts.add(claimed)
            self.wake()

    def _work_visible(self, now: float) -> bool:
        """A cheap read-only look for due work, before taking the write lock."""
        registry = self.runtime.registry
        workflows, activities = registry.workflow_names(), registry.activity_names()
        with self.session.read() as tx:
            if queues.has_due_timer(tx, now) or schedules.has_due(tx, now):
                return True
            if queues.due_workflow_tasks(tx, workflows, 1, claim=False):
                return True
            free = self.concurrency - self.executor.busy
            if free > 0 and queues.has_ready_attempt(tx, activities, now):
                return True
        return False

    def _wake_requested(self) -> bool:
        """Whether :meth:`wake` was called since the last turn. (Outcomes and heartbeats
        only set the event: a turn records them without looking for other work.)"""
        self._wake.clear()
        with self._news_lock:
            news, self._news = self._news, False
        return news

    def _on_heartbeat(self, attempt: Attempt, details: Any) -> None:
        with self._hb_lock:
            self._heartbeats[(attempt.run_id, attempt.ref)] = (attempt, details)
        self._wake.set()

    # -- steps of a turn ----------------------------------------------------------------
    def _advance(self, tx: Tx, run: RunRow, dispatch: list[Attempt], touched: set[str],
                 isolate: bool | None = None) -> None:
        """Run the workflow task of ``run``, claiming what it schedules when we have room.

        Without ``isolate`` (the usual turn) a failure aborts the whole transaction and the
        caller does the work again isolated: savepoints cost two statements per run."""
        if self._overran:  # leave it due: the next turn runs it, after others had the lock
            history.save_run_state(tx, run)
            self._backlog = True
            return
        if isolate is None:
            isolate = self._isolate
        touched.add(run.run_id)
        registry = self.runtime.registry
        limits = registry.limits()
        room = [self.concurrency - self.executor.busy - len(dispatch)]

        def eager(name: str) -> str | None:
            if room[0] <= 0 or name in limits:
                self._queued = True
            if self._draining or room[0] <= 0 or name in limits or \
                    registry.activity(name) is None:
                return None
            room[0] -= 1
            return self.worker_id

        advancer = self.runtime.advancer
        reporting = self.reporting  # (workflow tasks are noted for the reporters alone)
        began = time.time() if reporting else 0.0
        runs_code = reporting and bool(run.is_open and not run.paused and
                                       registry.workflow(run.workflow))
        if not isolate:
            outcome: AdvanceOutcome = advancer.advance(tx, run, eager)
        else:
            try:
                with tx.savepoint():  # a failure here is this run's alone: others go on
                    outcome = advancer.advance(tx, run, eager)
            except StoreError:
                raise
            except Exception as err:  # noqa: BLE001 - held and reported, never fatal
                self._hold_broken(tx, run, err)
                if reporting:
                    note_workflow_task(tx, WorkflowTask(run, began, time.time(), False))
                return
        if runs_code:  # (a closed or paused run, or one without code here, ran nothing)
            note_workflow_task(tx, WorkflowTask(run, began, time.time(), not run.stuck))
        dispatch.extend(outcome.claimed)
        if outcome.overran:
            self._overran = self._backlog = True
            log.warning("run %s held: %s", run.workflow_id, run.stuck_reason)
        if advancer.woke_others or run.wf_pending:
            advancer.woke_others = False
            self._backlog = True

    def _hold_broken(self, tx: Tx, run: RunRow, err: Exception) -> None:
        """Hold a run whose workflow task could not even be recorded (say, a result too
        large to store): its savepoint is rolled back and the run is marked stuck."""
        self.runtime.cache.evict(run.run_id)  # (logged once committed: report_commit)
        fresh = history.get_run(tx, run.run_id)
        if fresh is None:
            return
        events = history.load_events(tx, run.run_id)
        fresh.last_seq = events[-1].seq if events else 0
        self.runtime.advancer.hold(tx, fresh, WorkflowTaskError(
            f"the workflow task could not be recorded: {type(err).__name__}: "
            f"{safe_str(err)[:2000]}", kind="engine",
            details={"error": error_json(err)}))

    def _apply_outcomes(self, tx: Tx, outcomes: list[Outcome], now: float,
                        dispatch: list[Attempt], touched: set[str]) -> None:
        """Record the executor's outcomes of this worker's attempts, settling each run."""
        endings = (Ending(o.attempt.run_id, o.attempt.ref, self.worker_id, o.attempt.attempt,
                          o.ok, o.result, o.error, o.provider) for o in outcomes)
        for run in record_outcomes(tx, endings, now, save=False):
            self._settle(tx, run, dispatch, touched)

    def _settle(self, tx: Tx, run: RunRow, dispatch: list[Attempt], touched: set[str]) -> None:
        if run.wf_pending and not run.paused:
            self._advance(tx, run, dispatch, touched)
        else:
            history.save_run_state(tx, run)

    def _fire_timers(self, tx: Tx, now: float, dispatch: list[Attempt],
                     touched: set[str]) -> None:
        schedules.fire_due(tx, self.runtime.advancer, self.runtime.new_id, now)
        for run in fire_due_timers(tx, now, BATCH):
            self._settle(tx, run, dispatch, touched)

    def _advance_pending(self, tx: Tx, dispatch: list[Attempt], touched: set[str]) -> None:
        names = self.runtime.registry.workflow_names()
        if not names:
            return
        due = queues.due_workflow_tasks(tx, names, BATCH)
        if len(due) >= BATCH:  # more may be due: the next turn looks again (outcomes alone
            self._backlog = True  # do not make a turn look; due timers are in next_due)
        for run in locked_runs(tx, due, self.runtime.cache, touched):  # (read together
            if run.wf_pending:                                     # on PostgreSQL)
                self._advance(tx, run, dispatch, touched)

    def _mark_stuck_pending(self, tx: Tx) -> None:
        queues.requeue_stuck_runs(tx, self.runtime.registry.workflow_names())

    def _maintain(self, tx: Tx, now: float, dispatch: list[Attempt], touched: set[str]) -> None:
        beat = time.monotonic()
        self._next_maintenance = beat + MAINTENANCE_INTERVAL
        for run in record_outcomes(tx, self._timed_out(tx, now), now):
            self._settle(tx, run, dispatch, touched)
        if self.executor.busy:
            self._tell_stopped(tx)
        if beat >= self._next_heartbeat:
            self._next_heartbeat = beat + self.lease_ttl / 3
            self._sync_clock()
            self.membership.beat(tx, now)
        if beat >= self._next_reap:
            self._next_reap = beat + 1.0
            self.membership.reap(tx, now, lambda run: self._settle(tx, run, dispatch, touched))
            self.membership.find_orphans(tx, now)

    def _tell_stopped(self, tx: Tx) -> None:
        """Tell running attempts that workflow code canceled (maybe another worker's turn
        did), and those whose rows were withdrawn (their run closed): a heartbeat raises,
        an async attempt is cancelled, without waiting for the attempt to heartbeat."""
        for run_id, ref, attempt in attempts.cancels_for(tx, self.worker_id):
            self.executor.cancel(run_id, ref, attempt)
        running = self.executor.running_attempts()  # before the read: any started later
        held = set(queues.attempts_held_by(tx, self.worker_id))  # is not missed by it
        for run_id, ref, attempt in running:
            if (run_id, ref, attempt) not in held:
                self.executor.abandon(run_id, ref)

    def _timed_out(self, tx: Tx, now: float) -> Iterator[Ending]:
        """Attempts past a deadline, as endings to record (this worker's are abandoned)."""
        for run_id, ref, owner, attempt, which in attempts.expired(tx, now):
            if owner == self.worker_id:
                self.executor.abandon(run_id, ref)
            error = {"type": f"{which}Timeout",
                     "message": f"{which.lower().replace('toclose', '-to-close')} "
                                "timeout passed"}
            yield Ending(run_id, ref, owner, attempt, False, error=error, timeout=True,
                         final=which == "ScheduleToClose")

    def _sync_clock(self) -> None:
        """Follow the server's clock; a failed reading keeps the last offset."""
        try:
            self.runtime.sync_clock()
        except StoreError as err:
            log.warning("worker %s could not read the server's clock: %s", self.worker_id, err)
