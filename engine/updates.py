"""Updates, Temporal's synchronous requests to a run: the caller's side and the worker's.

A caller stores a request (durable before anything else happens) and marks the run due;
the next workflow task on any worker validates it against the run's current state. A
rejection is written to the request only, never to history. An accepted request becomes
``UpdateAccepted`` in history, in the same transaction, and its handler runs; when the
handler returns, ``UpdateCompleted`` records the result and the request is marked done.
The caller wakes on the change feed and reads the request. After a crash, replay meets
``UpdateAccepted`` again and the handler carries on from history like any workflow code.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from . import history, payloads
from .errors import BadInput, UpdateFailed, UpdatePending, UpdateRejected
from .instance import UpdateRejection, WorkflowInstance, WorkflowTaskError
from .store import updates as update_rows
from .store.base import Tx

if TYPE_CHECKING:
    from .advance import AdvanceOutcome, Advancer
    from .client import Engine
    from .history import RunRow

CLOSED_FIRST = "the run closed before the update completed"


def request(engine: Engine, ident: str, name: str, args: list[Any],
            update_id: str | None = None) -> tuple[str, str]:
    """Store a request for update ``name`` of ``ident``'s current run; returns
    (run id, update id). A request with an ``update_id`` the run already has is not
    stored twice (a retried call waits for the first one's outcome)."""
    if not isinstance(name, str) or not name:
        raise BadInput("an update needs a name")
    payloads.text(name, "the update name", limit=200)
    if update_id is not None:
        payloads.text(update_id, "the update id", limit=200)
    args_text = payloads.dumps(list(args), f"arguments of update {name}")

    def write(tx: Tx) -> tuple[str, str, bool]:
        run = engine.runtime.find_run(tx, ident, lock=True)
        if update_id is not None and update_rows.get(tx, run.run_id, update_id) is not None:
            return run.run_id, update_id, False  # asked before: its outcome, even closed
        if not run.is_open:
            raise UpdateRejected(f"cannot update run {run.workflow_id}: it has {run.status}")
        uid = update_id or engine.new_id("update")
        if update_rows.get(tx, run.run_id, uid) is None:
            update_rows.add_request(tx, run.run_id, uid, run.workflow_id, name, args_text,
                                    engine.clock())
            run.updates_pending = run.wf_pending = 1
            history.save_run_state(tx, run)
        return run.run_id, uid, True

    run_id, uid, asked = engine.runtime.committer.run(write)
    if asked:
        engine.runtime.feed.wrote()
    return run_id, uid


def outcome(engine: Engine, run_id: str, update_id: str, timeout: float | None) -> Any:
    """Wait for the request's end: the handler's result, or UpdateRejected / UpdateFailed;
    UpdatePending if ``timeout`` seconds pass first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with engine.store.read() as tx:
            row = update_rows.get(tx, run_id, update_id)
        if row is None:
            raise BadInput(f"no update {update_id} of run {run_id}")
        if row.status == "completed":
            return payloads.loads(row.result)
        if row.status in ("failed", "rejected"):
            error = json.loads(row.error) if row.error else {}
            message = f"update {row.name} of {row.workflow_id} {row.status}: " \
                      f"{error.get('message', '')}"
            if row.status == "rejected":
                raise UpdateRejected(message)
            raise UpdateFailed(message, error=error)
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise UpdatePending(f"update {row.name} ({update_id}) of {row.workflow_id} is "
                                f"still {row.status}: is a worker running its code?")
        engine.wait_for_change(0.05 if remaining is None else min(0.05, remaining))


def accept_waiting(advancer: Advancer, tx: Tx, run: RunRow, instance: WorkflowInstance,
                   result: AdvanceOutcome) -> bool:
    """In a workflow task: validate the run's waiting requests in order; reject or accept
    each, and run the accepted ones' handlers (their commands are persisted here).
    False if a handler's failure held the run stuck (the task ends there)."""
    run.updates_pending = 0
    now = advancer.clock()
    for row in update_rows.pending(tx, run.run_id):
        if not run.is_open or instance.closed:
            reject(tx, run.run_id, row.update_id, CLOSED_FIRST, now)
            continue
        args = payloads.loads(row.args) or []
        try:
            instance.validate_update(row.name, args)
        except UpdateRejection as why:
            reject(tx, run.run_id, row.update_id, str(why), now)
            continue
        event = history.append(tx, run, "UpdateAccepted", {
            "update_id": row.update_id, "name": row.name, "args": args}, now)
        update_rows.accept(tx, run.run_id, row.update_id, event.seq)
        try:
            activation = instance.activate([event])
        except WorkflowTaskError as failure:
            advancer.cache.evict(run.run_id)
            advancer.hold(tx, run, failure)
            return False
        advancer.persist(tx, run, activation, result)
    return True


def reject(tx: Tx, run_id: str, update_id: str, message: str, now: float) -> None:
    """End a request as rejected with ``message``; history is not touched."""
    update_rows.finish(tx, run_id, update_id, "rejected", now, error=payloads.encode(
        {"type": "UpdateRejected", "message": message}))


def completed(tx: Tx, run_id: str, attrs: dict[str, Any], now: float) -> None:
    """Mark a request done as its UpdateCompleted event is stored."""
    if "error" in attrs:
        update_rows.finish(tx, run_id, attrs["update_id"], "failed", now,
                           error=payloads.encode(attrs["error"]))
    else:
        update_rows.finish(tx, run_id, attrs["update_id"], "completed", now,
                           result=payloads.dumps(attrs.get("result")))


def end_with_run(tx: Tx, run: RunRow, now: float) -> None:
    """A closing run ends its open requests (pending: rejected; accepted: failed)."""
    update_rows.end_unfinished(tx, run.run_id, payloads.encode(
        {"type": "RunClosed", "message": CLOSED_FIRST}), now)
    run.updates_pending = 0
