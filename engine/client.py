"""The Python client: ``Engine`` opens a store and starts, inspects and steers runs.

The CLI and the console are thin layers over this. An engine is an ordinary object: two
engines on two databases can live side by side in one process.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import random
import shlex
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import (
    convert,
    history,
    payloads,
    reload,
    repair,
    updates,
    views,
    visibility,
    workers_view,
)
from . import search_attributes as search_attributes_
from .advance import Advancer
from .aio import AsyncBridge, AsyncClient
from .deadline import DEFAULT_DEADLINE, check_deadline
from .errors import (
    BadInput,
    NotFound,
    StoreConflict,
    UnknownWorkflow,
)
from .events import Event, iso
from .handle import RunHandle
from .history import RunRow
from .instance import WorkflowInstance, WorkflowTaskError
from .listfilter import Query
from .registry import Registry
from .runtime import EngineClock, Runtime, default_clock, open_store, time_ordered_id
from .schedule_client import ScheduleClient
from .store import queues, runs
from .store.base import Store, Tx
from .worker import InlineTaskFailed, Worker
from .workflow import definition_of

__all__ = ["Engine", "EngineClock", "RunHandle", "default_clock", "open_store",
           "time_ordered_id"]

if TYPE_CHECKING:
    from .worker import Worker

JsonList = list[dict[str, Any]]


CONFLICT_ATTEMPTS = 5
"""How often a client write that lost to a concurrent transaction is done in all."""

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _redone_on_conflict(method: _Method) -> _Method:
    """Do a client write again when it lost to a concurrent transaction.

    On PostgreSQL a deadlock between an operator's command and a worker's turn (they lock
    a run and its queue rows in opposite orders) rolls one of them back whole; the worker
    does its turn again, and so does the operator's command, instead of reporting a
    failure for work that simply has to wait its turn. Each try starts afresh (nothing of
    the lost one was kept); after ``CONFLICT_ATTEMPTS`` the conflict is raised."""
    @functools.wraps(method)
    def redo(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                return method(*args, **kwargs)
            except StoreConflict:
                if attempt == CONFLICT_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.005 * 2 ** attempt))  # spread the retries
        raise AssertionError("unreachable")
    return cast(_Method, redo)


class Engine(AsyncClient, ScheduleClient):
    """An Onward database plus the code (flows and providers) that can run against it."""

    def __init__(
        self,
        db: str | os.PathLike[str] = "onward.db",
        *,
        flows: Iterable[str] = (),
        plugins: Iterable[str | os.PathLike[str]] = (),
        entry_points: bool = False,
        clock: Callable[[], float] | None = None,
        synchronous: str | None = None,
        lease_ttl: float = 5.0,
        create: bool = True,
        ids: Callable[[str], str] | None = None,
        cache_size: int = 2000,
        workflow_task_deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        """``workflow_task_deadline``: seconds one step of workflow code may run without
        yielding before it is stopped and its run held stuck (guarantee 6)."""
        deadline = check_deadline(workflow_task_deadline, "workflow_task_deadline")
        clock = clock or EngineClock(default_clock())
        # Code first: a bad --flows or --plugins path must not leave a new database behind.
        registry = Registry(flows, [Path(p) for p in plugins], entry_points=entry_points,
                            clock=clock)
        try:
            store = open_store(db, create=create, synchronous=synchronous)
        except BaseException:
            registry.close()
            raise
        self.runtime = Runtime(store, registry, clock, lease_ttl=lease_ttl, deadline=deadline,
                               cache_size=cache_size, ids=ids)
        """The state this engine shares with its workers, repair and reload."""
        self.store: Store = store
        self.registry = registry
        self.clock: Callable[[], float] = clock
        self.lease_ttl = lease_ttl
        self.cache = self.runtime.cache
        self.advancer = self.runtime.advancer
        self.advance_lock = self.runtime.advance_lock
        """Held while workflow instances of this engine are advanced (they are not shared)."""
        self.new_id = self.runtime.new_id
        self.sync_clock = self.runtime.sync_clock
        self.sync_clock(measure=False)  # (measured as the store opened)
        self.aio = AsyncBridge(self.runtime)
        """The threads behind the ``*_async`` methods (engine/aio.py)."""

    # -- plumbing ---------------------------------------------------------------------------
    def wait_for_close(self, timeout: float, seen: int | None = None) -> None:
        """Wait until a run closes (in this process; after the ``seen``-th close, if given)
        or anything commits elsewhere."""
        self.runtime.feed.wait_for_close(timeout, seen)

    def wait_for_change(self, timeout: float) -> None:
        """Wait until this process or another commits something, or ``timeout`` passes."""
        self.runtime.feed.wait_for_change(timeout)

    def close(self) -> None:
        """Stop async calls, in-process workers, and close the store."""
        self.aio.close()
        self.runtime.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def worker(self, concurrency: int = 8, **options: Any) -> Iterator[Worker]:
        """Run an in-process worker (the same code as ``onward worker``) for the block."""
        w = self.start_worker(concurrency=concurrency, **options)
        try:
            yield w
        finally:
            self.stop_worker(w)

    # -- starting ---------------------------------------------------------------------------
    @_redone_on_conflict
    def start(self, workflow: str | Callable[..., Any], *args: Any, id: str | None = None,  # noqa: A002
              rerun: bool = False, search_attributes: dict[str, Any] | None = None,
              memo: Any = None) -> RunHandle:
        """Start a run; an id runs once (an existing id returns its run, starting nothing).

        ``rerun``: start a new run of an id whose last run has closed. Two processes doing
        either at once make one run: the second gets the first's (``created`` False).
        ``search_attributes``: the new run's attributes (each name typed by its first value
        in the store: a value of another type raises SearchAttributeTypeError, a BadInput,
        and nothing is written; ``ScheduleId`` is accepted here, for the schedule code);
        ``memo``: free JSON shown by ``show``, not searchable."""
        attrs = dict(search_attributes) if search_attributes else {}
        if attrs or memo is not None:  # (nothing to check without either)
            visibility.check_start(attrs, memo)
        definition = None if isinstance(workflow, str) else definition_of(workflow)
        name = workflow if isinstance(workflow, str) else getattr(definition, "name", None)
        if not name:
            raise BadInput(f"{workflow!r} is not a workflow")
        arg_list = convert.to_json(list(args), "workflow input")
        typed = definition.fn if definition is not None else None  # results typed by it
        registered = self.registry.workflow(name)
        definition = definition or registered
        if definition is not None:  # refused here, naming the field, before anything is written
            convert.bind_args(definition.fn, arg_list, f"input of workflow {name}")
        if id is not None and (not isinstance(id, str) or not id.strip() or len(id) > 200):
            raise BadInput("a workflow id must be a non-empty string of at most 200 characters")
        fresh_id = id is None  # 48 random bits after the time: no earlier run to look for
        workflow_id = id or f"{name}-{time_ordered_id(random_bytes=6)}"
        now = self.clock()
        local = self.runtime.local_worker if registered is not None else None
        closes_at_start = self.runtime.feed.closes_seen
        was_open = rerun and not fresh_id and self._is_open(workflow_id)
        eager: list[Any] = []
        run_id = ""
        isolate = False  # the first workflow task in a savepoint (after it failed without)

        def write(tx: Tx) -> RunHandle | None:
            nonlocal eager, run_id
            eager, run_id = [], ""  # (a batch done again runs this again)
            self._check_workflow(tx, name)
            existing = None
            if not fresh_id:
                tx.lock_workflow_id(workflow_id)  # starts of one id, one at a time
                existing = history.current_run(tx, workflow_id)
            if existing is not None:
                if not rerun or (existing.is_open and not was_open):
                    # the id exists; or another rerun got in first: one new run
                    found = RunHandle(self, workflow_id, existing.run_id, created=False)
                    if typed is not None and existing.workflow == name:
                        found.workflow_fn = typed
                    return found
                if existing.is_open:
                    raise BadInput(f"run {workflow_id} is still {existing.status}; "
                                   "--rerun needs its last run to have closed")
            run_id = self.new_id("run")
            run = history.insert_run(tx, run_id=run_id, workflow_id=workflow_id,
                                     workflow=name, args=arg_list, now=now,
                                     first_of_id=fresh_id, runs_inline=local is not None)
            if attrs or memo is not None:
                search_attributes_.save(tx, run_id, attrs, memo, allow_system=True)
            if local is not None:  # eager start: the first workflow task rides along
                eager = local.start_inline(tx, run, isolate=isolate)
            return None

        def undo(_err: BaseException) -> None:
            if run_id:  # its instance may have run ahead of a transaction that failed
                self.cache.evict(run_id)
            if local is not None:  # the commit may have happened, unacknowledged
                local.claims_in_doubt(eager)

        try:
            found, tx = self.runtime.committer.run_job(write, undo=undo,
                                                       locked=local is not None)
        except InlineTaskFailed:  # nothing was written: again, the task held if it fails
            isolate = True
            found, tx = self.runtime.committer.run_job(write, undo=undo, locked=True)
        if found is not None:
            return found
        if local is None:
            self.runtime.feed.wrote()
            handle = RunHandle(self, workflow_id, run_id)
        else:
            local.dispatch(eager)
            local.report_commit(tx)
            self.runtime.feed.notify(tx)  # the local worker already ran the first workflow task
            handle = RunHandle(self, workflow_id, run_id, closes_at_start=closes_at_start)
        handle.workflow_fn = typed  # result() converts by its return hint
        return handle

    def _is_open(self, workflow_id: str) -> bool:
        """Whether the id's current run is open, as last committed (read before a rerun
        waits for its turn: an open run found after the wait was started meanwhile)."""
        with self.store.read() as tx:
            run = history.current_run(tx, workflow_id)
        return run is not None and run.is_open

    def _check_workflow(self, tx: Tx, name: str) -> None:
        if self.registry.has_code:
            if self.registry.workflow(name) is None:
                known = ", ".join(self.registry.workflow_names()) or "none"
                raise UnknownWorkflow(f"unknown workflow {name!r} (known: {known})")
            return
        if not runs.workflow_type_known(tx, name):
            known = ", ".join(runs.workflow_type_names(tx)) or "none registered yet"
            raise UnknownWorkflow(f"unknown workflow {name!r} (known: {known}); pass --flows "
                                  "or start a worker that has it")

    def handle(self, ident: str) -> RunHandle:
        """A handle on an existing run by workflow id or run id."""
        with self.store.read() as tx:
            run = self.runtime.find_run(tx, ident)
        return RunHandle(self, run.workflow_id, run.run_id, created=False)

    # -- reading ------------------------------------------------------------------------------
    def show(self, ident: str, *, history: bool = True) -> dict[str, Any]:
        """Status, input, result, error, links and history of a run (``onward show --json``)."""
        with self.store.read() as tx:
            run = self.runtime.find_run(tx, ident)
            return views.show(tx, run, with_history=history, now=self.clock())

    def list(self, status: str | None = None, *, search: str | None = None,
             limit: int | None = None, offset: int = 0, all_runs: bool = False,
             order: str = "updated", query: str | Query | None = None) -> JsonList:
        """Runs, newest change first; ``status`` may be a status or a filter (stuck, ...).

        ``query``: the list-filter language (``amount > 100 AND ExecutionStatus =
        "Running" ORDER BY StartTime DESC``) over every run, older runs of an id too; its
        order (default: newest start first) replaces ``order``, and each run carries its
        ``search_attributes``. A query that does not parse raises QueryError (a BadInput)
        before the store is read; one comparing a field with a value of another type
        raises it too."""
        if query is not None:
            parsed = visibility.parse_query(query, status=status, search=search)
            with self.store.read() as tx:
                return visibility.list_matching(
                    tx, parsed, self.store.schema_types, limit=limit, offset=offset,
                    planned=not self.store.plans_by_statistics)
        with self.store.read() as tx:
            return views.list_runs(tx, status=status, search=search, limit=limit,
                                   offset=offset, all_runs=all_runs, order=order,
                                   now=self.clock())

    def count(self, query: str | Query | None = None, group_by: str | None = None
              ) -> dict[str, Any]:
        """How many runs (of every id, older runs too) match ``query`` (the list-filter
        language; None: every run): ``{"count": N}``, and with ``group_by`` (a one-valued
        field) ``"groups": [{"value": V, "count": N}, ...]``, largest first. A query that
        does not parse raises QueryError (a BadInput) before the store is read."""
        parsed = visibility.parse_query(query)
        with self.store.read() as tx:
            return visibility.count(tx, parsed, group_by, self.store.schema_types,
                                    planned=not self.store.plans_by_statistics)

    def next_due(self, run_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """For runs (by ``run_id``) with queued work: ``{"retry": when the next queued
        activity attempt is due, "deadline": the earliest open manual task deadline}``
        (ISO times or None); runs with neither are left out (the console's countdowns)."""
        with self.store.read() as tx:
            return views.next_due(tx, list(run_ids))

    def recent_steps(self, seconds: int = 60) -> dict[str, Any]:
        """Events committed (``events``) and failures among them (``failures``: failed
        attempts, activities, workflow tasks and runs) in each of the last ``seconds``
        seconds, oldest first; ``from``: the epoch second of the first entry (the console's
        live header). Reads only the runs changed in that window."""
        with self.store.read() as tx:
            return views.recent_steps(tx, self.clock(), seconds)

    def counts(self) -> dict[str, int]:
        """How many current runs are in each status and filter."""
        with self.store.read() as tx:
            return views.counts(tx, self.clock())

    def tasks(self, status: str = "open") -> JsonList:
        """Manual tasks (open ones by default), oldest first."""
        with self.store.read() as tx:
            return views.tasks(tx, status, self.clock())

    def workers(self) -> JsonList:
        """Registered workers with host, pid, concurrency, heartbeat age, lease and the
        activity attempts (and so the runs) each holds."""
        with self.store.read() as tx:
            return workers_view.workers(tx, self.clock())

    def history(self, ident: str, after: int = 0) -> JsonList:
        """A run's events after ``after`` as JSON objects."""
        with self.store.read() as tx:
            run = self.runtime.find_run(tx, ident)
            return [e.to_json() for e in history.load_events(tx, run.run_id, after)]

    def workflow_types(self) -> builtins.list[str]:
        """Workflow types this engine can start (its code, else those workers registered)."""
        if self.registry.has_code:
            return list(self.registry.workflow_names())
        with self.store.read() as tx:
            return runs.workflow_type_names(tx)

    def change_token(self) -> Any:
        """Changes whenever anything commits (for live views)."""
        return self.store.change_token()

    def query(self, ident: str, name: str, *args: Any) -> Any:
        """Answer a query from the run's replayed state; writes nothing."""
        with self.store.read() as tx:
            run = self.runtime.find_run(tx, ident)
            events = history.load_events(tx, run.run_id)
        instance = self._replay(run, events)
        return instance.query(name, convert.to_json(list(args), f"arguments of query {name}"))

    def handlers(self, ident: str) -> dict[str, builtins.list[str]]:
        """The signal, query and update names the run's code handles now (its replayed
        state: function workflows set theirs while running); writes nothing."""
        with self.store.read() as tx:
            run = self.runtime.find_run(tx, ident)
            events = history.load_events(tx, run.run_id)
        found = self._replay(run, events).handlers
        return {"signals": sorted(found.signals), "queries": sorted(found.queries),
                "updates": sorted(found.updates)}

    def _replay(self, run: RunRow, events: builtins.list[Event]) -> WorkflowInstance:
        definition = self.registry.workflow(run.workflow)
        if definition is None:
            raise UnknownWorkflow(f"no code for workflow {run.workflow!r}: pass --flows with "
                                  "the module that defines it")
        instance = WorkflowInstance(definition.fn, Advancer.info_for(run),
                                    watch=self.advancer.watch, activities=self.registry.activity)
        try:
            instance.activate(events)
        except WorkflowTaskError as err:
            raise BadInput(f"run {run.workflow_id} cannot be replayed: {err}") from None
        finally:
            instance.loop.close()
        return instance

    # -- steering -----------------------------------------------------------------------------
    def _open_run(self, tx: Tx, ident: str, action: str) -> RunRow:
        run = self.runtime.find_run(tx, ident, lock=True)
        if not run.is_open:
            raise BadInput(f"cannot {action} run {run.workflow_id}: it has {run.status}")
        return run

    @_redone_on_conflict
    def signal(self, ident: str, name: str, payload: Any = None) -> None:
        """Send a signal; it is buffered until the workflow waits for ``name``."""
        if not isinstance(name, str) or not name:
            raise BadInput("a signal needs a name")
        payloads.text(name, "the signal name", limit=200)
        payload = convert.to_json(payload, f"payload of signal {name}")

        def write(tx: Tx) -> None:
            run = self._open_run(tx, ident, "signal")
            history.append(tx, run, "SignalReceived", {"name": name, "payload": payload},
                           self.clock(), wake=True)
            history.save_run_state(tx, run)

        self.runtime.committer.run(write)
        self.runtime.feed.wrote()

    def update(self, ident: str, name: str, *args: Any, update_id: str | None = None,
               timeout: float | None = None) -> Any:
        """Ask the run's update handler ``name`` with ``args``; returns its result once its
        completion is recorded (whichever process's worker runs the run).

        The request is durable before this waits. Raises UpdateRejected (its validator
        said no; nothing recorded), UpdateFailed (the handler raised), or UpdatePending
        when ``timeout`` s pass first (call again with the same ``update_id`` to go on
        waiting: a request is stored once per id)."""
        run_id, uid = self._request_update(ident, name, list(args), update_id)
        return updates.outcome(self, run_id, uid, timeout)

    @_redone_on_conflict
    def _request_update(self, ident: str, name: str, args: builtins.list[Any],
                        update_id: str | None) -> tuple[str, str]:
        return updates.request(self, ident, name, args, update_id)

    @_redone_on_conflict
    def cancel(self, ident: str) -> str:
        """Ask a run to cancel: CancelledError is raised at its current await, once.

        A request is a state, not a stream: asking a run that was already asked records
        nothing, so its compensation (``finally``/``except`` code) runs to completion.
        Says which of the two happened."""

        def write(tx: Tx) -> tuple[RunRow, bool]:
            run = self._open_run(tx, ident, "cancel")
            return run, history.request_cancel(tx, run, "", self.clock())

        run, asked = self.runtime.committer.run(write)
        if not asked:
            return (f"run {run.workflow_id} is already canceling (asked before); nothing "
                    "more recorded, its compensation goes on")
        self.runtime.feed.wrote()
        return f"asked run {run.workflow_id} to cancel"

    @_redone_on_conflict
    def terminate(self, ident: str, reason: str = "") -> None:
        """Stop a run at once, running no more of its code."""
        payloads.text(reason, "the reason")
        now = self.clock()

        def write(tx: Tx) -> None:
            run = self._open_run(tx, ident, "terminate")
            history.append(tx, run, "WorkflowTerminated", {"reason": reason}, now)
            run.error = json.dumps({"type": "Terminated",
                                    "message": reason or "terminated by an operator"})
            self.advancer.close(tx, run, "terminated", now)
            history.save_run_state(tx, run)

        # closing a run touches the instance cache, which the local worker also uses
        _, tx = self.runtime.committer.run_job(write, locked=True)
        self.runtime.feed.wrote(tx)

    def complete_task(self, task_id: str, result: Any = None, *, by: str | None = None) -> None:
        """Complete an open manual task; the first answer stands."""
        if by is not None:
            payloads.text(by, "--by", limit=200)
        result = convert.to_json(result, "task result")
        self._close_task(task_id, "completed", {"result": result, "by": by}, by=by,
                         result=payloads.dumps(result))

    def fail_task(self, task_id: str, reason: str = "", *, by: str | None = None) -> None:
        """Fail an open manual task; the workflow sees an ApplicationError with ``reason``."""
        payloads.text(reason, "the reason")
        self._close_task(task_id, "failed", {"reason": reason, "by": by}, by=by,
                         reason=reason)

    @_redone_on_conflict
    def _close_task(self, task_id: str, status: str, attrs: dict[str, Any], *,
                    by: str | None, result: str | None = None, reason: str | None = None
                    ) -> None:
        now = self.clock()

        def write(tx: Tx) -> None:
            row = queues.lock_manual_task(tx, task_id)
            if row is None:
                raise NotFound(f"no manual task {task_id!r}; `onward tasks` lists open ones")
            run_id, ref, kind, current, done_by = row
            if current != "open":
                who = f" by {done_by}" if done_by else ""
                raise BadInput(f"task {task_id} is already {current}{who}; the first answer "
                               "stands")
            run = history.get_run(tx, run_id, lock=True)
            if run is None or not run.is_open:
                raise BadInput(f"task {task_id}'s run has ended")
            queues.close_task(tx, task_id, run_id, ref, status, result=result, reason=reason,
                              by=by, now=now)
            event = "ManualTaskCompleted" if status == "completed" else "ManualTaskFailed"
            history.append(tx, run, event, {"ref": ref, "task_id": task_id, "kind": kind,
                                            **attrs}, now, wake=True)
            history.save_run_state(tx, run)

        self.runtime.committer.run(write)
        self.runtime.feed.wrote()

    # -- repair -----------------------------------------------------------------------------
    @_redone_on_conflict
    def retry(self, ident: str, *, discard_completed: bool = False) -> str:
        """Retry a failed run from just before its failed step, a stuck run's workflow task,
        or a backing-off activity now; says what it did.

        Acts on ``ident``'s current run only (NotCurrentRun for an older run's id). A cut
        that would discard completed activities raises WouldDiscardCompleted, listing
        them, unless ``discard_completed``. Two callers at once make one new run."""
        return repair.retry(self.runtime, ident, discard_completed=discard_completed)

    def repair_plan(self, ident: str, event: int | None = None) -> dict[str, Any]:
        """What a repair of ``ident``'s current run would keep and discard, changing
        nothing: the cut ``retry`` would use (``event`` None; BadInput unless the run
        failed) or a ``reset`` to ``event``.

        Returns ``{"id", "run_id", "action": "retry"|"reset", "cut", "kept"`` (events kept)
        ``, "discarded": [{"seq", "type"}], "discarded_completed": [{"seq", "ref", "name",
        "result"}]}``; the last lists activities that completed after the cut."""
        return repair.repair_plan(self.runtime, ident, event)

    @_redone_on_conflict
    def pause(self, ident: str) -> str:
        """Hold a run: no new attempts or workflow tasks until ``resume``."""
        return repair.set_paused(self.runtime, ident, True)

    @_redone_on_conflict
    def resume(self, ident: str) -> str:
        """Let a paused run go. A closed run is refused (BadInput) naming the command that
        runs it again: ``onward retry`` for a failed run, ``onward start --rerun`` else."""
        with self.store.read() as tx:
            run = self.runtime.find_run(tx, ident)
        if not run.is_open:
            wid = shlex.quote(run.workflow_id)
            again = (f"`onward retry {wid}`" if run.status == "failed" else
                     f"`onward start {shlex.quote(run.workflow)} --id {wid} --rerun`")
            raise BadInput(f"run {run.workflow_id} is {run.status}, not paused or running: "
                           f"there is nothing to resume; to run it again use {again}")
        return repair.set_paused(self.runtime, ident, False)

    @_redone_on_conflict
    def reset(self, ident: str, event: int, *, discard_completed: bool = False,
              reapply_signals: bool = True) -> RunHandle:
        """A new run of ``ident`` whose history is kept up to ``event``, then today's code.

        As ``retry``: the current run only, WouldDiscardCompleted unless
        ``discard_completed``, and two callers at once make one new run."""
        workflow_id, run_id, created = repair.reset_run(
            self.runtime, ident, event, reapply_signals=reapply_signals,
            discard_completed=discard_completed)
        return RunHandle(self, workflow_id, run_id, created=created)

    def replay(self, ids: Iterable[str] | None = None, *, all_runs: bool = False
               ) -> JsonList:
        """Replay stored histories against this engine's code; one report per run."""
        return repair.replay_check(self.runtime, list(ids) if ids else None, all_runs=all_runs)

    def replay_history(self, exported: dict[str, Any]) -> dict[str, Any]:
        """Replay an exported history (the ``show`` dict, e.g. a JSON fixture) against this
        engine's code; ``ok`` False with the divergence if the code would break it."""
        return repair.replay_exported(self.runtime, exported).to_json()

    # -- providers --------------------------------------------------------------------------
    def providers(self) -> JsonList:
        """Loaded providers: name, source, version, activities, errors."""
        manager = self.registry.providers
        if manager is None:
            return []
        return [{**p.__dict__, "loaded_at": iso(p.loaded_at)} for p in manager.providers()]

    def provider_log(self, *, stored: bool = False) -> JsonList:
        """Provider loads, reloads and errors, oldest first: this engine's own, or with
        ``stored`` those every worker on the database recorded."""
        if stored:
            with self.store.read() as tx:
                rows = runs.provider_log(tx)
            return [{"time": iso(t), "worker": w, "provider": p, "version": v, "action": a,
                     "message": m} for t, w, p, v, a, m in rows]
        manager = self.registry.providers
        if manager is None:
            return []
        return [{**e.__dict__, "time": iso(e.time)} for e in manager.log()]

    @_redone_on_conflict
    def record_provider_event(self, entry: Any, worker_id: str | None = None) -> None:
        """Keep a provider log entry in the database, for operators of other processes."""
        self.runtime.committer.run(lambda tx: runs.add_provider_log_entry(
            tx, time=entry.time, worker_id=worker_id, provider=entry.provider,
            version=entry.version, action=entry.action, message=entry.message))

    def replay_on_disk(self, ident: str) -> dict[str, Any]:
        """Replay ``ident``'s run against its workflow's code as it is on disk now, which
        may differ from the loaded code (a refused reload). One ``replay`` report plus
        ``code``: ``source`` (file or provider), ``loaded`` and ``on_disk`` versions."""
        return reload.replay_on_disk(self, ident)

    def flows(self) -> JsonList:
        """Loaded flows modules: ``source`` (file or module), ``version`` (sha256 prefix of
        the file loaded), and the ``workflows`` and ``activities`` each exposes."""
        return [{"source": f.source, "version": f.version, "workflows": sorted(f.workflows),
                 "activities": sorted(f.activities)} for f in self.registry.flows]

    def code_drift(self) -> JsonList:
        """Flows files whose content on disk differs from the code this engine runs (a
        reload refused or still to come): ``source``, ``loaded`` and ``on_disk`` versions."""
        return reload.code_drift(self)

    # -- in-process workers -------------------------------------------------------------------
    def start_worker(self, *, concurrency: int = 8, **options: Any) -> Worker:
        """Start an in-process worker (the same code as ``onward worker``); it takes this
        engine's eager starts until :meth:`stop_worker`. ``options`` are Worker's
        (``lease_ttl``, ``poll_interval``, ``worker_id``)."""
        worker = Worker(self.runtime, concurrency=concurrency, **options).start()
        self.runtime.workers.append(worker)
        return worker

    def stop_worker(self, worker: Worker | None = None, grace: float = 10.0) -> None:
        """Stop ``worker`` (every in-process worker if None), letting running attempts
        finish for up to ``grace`` seconds."""
        chosen = list(self.runtime.workers) if worker is None else [worker]
        for one in chosen:
            if one in self.runtime.workers:
                self.runtime.workers.remove(one)
            one.stop(grace)
