"""Activity attempts in the store: claiming, completing, failing, retrying, timing out.

Every outcome is fenced: it applies only while the activity task row still names the
same owner and attempt. A worker that was presumed dead, or whose attempt timed out,
finds its late result rejected, so no activity completes twice.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import history, payloads
from .events import iso
from .history import RunRow
from .retry import RetryPolicy, stored_seconds
from .store import batched, queues, runs
from .store.base import Tx


@dataclass(slots=True)
class Attempt:
    """One claimed activity attempt, as handed to the executor."""

    run_id: str
    ref: int
    name: str
    args: list[Any]
    options: dict[str, Any]
    attempt: int
    heartbeat_details: Any
    workflow_id: str = ""
    lineage: str = ""

    @property
    def idempotency_key(self) -> str:
        """Stable across retries, crashes and worker moves, and across the runs that
        ``retry`` and ``reset`` derive from one original run (a ``--rerun`` starts afresh)."""
        return f"{self.lineage or self.run_id}-{self.ref}"


def _attempt_from_row(row: tuple[Any, ...], workflow_id: str, lineage: str) -> Attempt:
    run_id, ref, name, args, options, attempt, details = row
    decode = payloads.decode
    return Attempt(run_id, ref, name, decode(args), decode(options), attempt,
                   decode(details) if details else None, workflow_id, lineage)


def lease_columns(options: dict[str, Any], now: float) -> tuple[float, float | None]:
    """The start-to-close and heartbeat deadlines of an attempt starting at ``now``."""
    start_to_close = stored_seconds(options.get("start_to_close")) or 300.0
    heartbeat = stored_seconds(options.get("heartbeat"))
    return now + start_to_close, (now + heartbeat if heartbeat else None)


def claim(tx: Tx, owner: str, names: list[str], limit: int, now: float,
          limits: dict[str, tuple[int | None, float | None]]) -> list[Attempt]:
    """Take up to ``limit`` ready attempts of the named activities for ``owner``.

    ``limits`` maps an activity name to (max concurrent, max starts per second), honoured
    across every worker on the database: attempts held back wait in the queue.
    """
    if limit <= 0 or not names:
        return []
    rows = queues.ready_attempts(tx, names, now, limit * 2 if limits else limit)
    claimed: list[Attempt] = []
    budget: dict[str, int] = {}
    for row in rows:
        if len(claimed) >= limit:
            break
        name = row[2]
        if name in limits:
            if name not in budget:
                budget[name] = allowance(tx, name, limits[name], now)
            if budget[name] <= 0:
                continue
            budget[name] -= 1
            take_rate_slot(tx, name, now)
        attempt = _attempt_from_row(row[:7], row[7], row[8])
        mark_started(tx, attempt, owner, now)
        claimed.append(attempt)
    return claimed


def mark_started(tx: Tx, attempt: Attempt, owner: str, now: float) -> None:
    """Record ``owner`` as running ``attempt`` with its start-to-close and heartbeat deadlines."""
    deadline, heartbeat_deadline = lease_columns(attempt.options, now)
    queues.start_attempt(tx, attempt.run_id, attempt.ref, owner, now, deadline,
                         heartbeat_deadline)


def restart(tx: Tx, attempt: Attempt, owner: str, now: float) -> bool:
    """Restart the clocks of an attempt ``owner`` claimed but never started (the commit of
    its claim went unconfirmed); False if that claim did not commit or was taken away."""
    deadline, heartbeat_deadline = lease_columns(attempt.options, now)
    return queues.restart_attempt(tx, attempt.run_id, attempt.ref, owner, attempt.attempt,
                                  now, deadline, heartbeat_deadline)


def unclaim(tx: Tx, attempt: Attempt, owner: str) -> None:
    """Hand back an attempt ``owner`` claimed but never started, as if never claimed."""
    queues.release_attempt(tx, attempt.run_id, attempt.ref, owner, attempt.attempt)


def allowance(tx: Tx, name: str, limit: tuple[int | None, float | None], now: float) -> int:
    """How many more attempts of ``name`` may start now under its limits."""
    max_concurrent, per_second = limit
    free = 1 << 30
    # Workers claim a limited activity one at a time: they queue on its rate-limit row,
    # so concurrent claimers on other connections count in turn.
    queues.lock_rate_limit(tx, name)
    if max_concurrent:
        free = min(free, max_concurrent - queues.running_attempts(tx, name))
    if per_second:
        window = queues.rate_window(tx, name)
        if window is not None and now - window[0] < 1.0:
            free = min(free, int(per_second) - window[1])
        else:
            free = min(free, max(1, int(per_second)))
    return free


def take_rate_slot(tx: Tx, name: str, now: float) -> None:
    """Count one start of ``name`` in the current one-second window."""
    queues.count_start(tx, name, now)


def complete(tx: Tx, run_id: str, ref: int, owner: str, attempt: int, result: Any,
             provider: tuple[str, str], now: float, *, save: bool = True,
             finished: batched.Finished | None = None) -> RunRow | None:
    """Record a successful attempt; the run (now due a workflow task), or None if fenced.

    An attempt the code canceled without waiting ('try' or 'abandon') ends unrecorded:
    the code no longer waits for it. ``finished``: what ``batched.finish_attempts`` did
    for this attempt already (its run held), if it did."""
    key = (run_id, ref)
    if finished is not None and key in finished:
        found = finished.pop(key)
    else:
        found = queues.finish_attempt(tx, run_id, ref, owner, attempt)
    if found is None:
        return None
    name, mark = found
    if mark in ("try", "abandon"):
        return None
    run = runs.take_held(tx, run_id) or history.get_run(tx, run_id, lock=True)
    if run is None or not run.is_open:
        return None
    history.append(tx, run, "ActivityCompleted", {
        "ref": ref, "name": name, "attempt": attempt, "result": result,
        "provider": provider[0], "provider_version": provider[1]}, now, wake=True)
    run.retrying = 0
    if save:
        history.save_run_state(tx, run)
    return run


def fail(tx: Tx, run_id: str, ref: int, owner: str | None, attempt: int,
         error: dict[str, Any], provider: tuple[str, str], now: float, *,
         retry_now: bool = False, timeout: bool = False, final: bool = False,
         save: bool = True) -> RunRow | None:
    """Record a failed attempt and schedule the next one under the retry policy.

    Returns the run when the activity failed for good (ActivityFailed: a workflow task is
    due), the run as well when only a retry was scheduled, or None when fenced.
    """
    row = queues.lock_attempt(tx, run_id, ref, attempt, owner)
    if row is None:
        return None
    name, options_text, close_deadline, mark = row
    options = json.loads(options_text)
    policy = RetryPolicy.from_json(options.get("retry"))
    run = history.get_run(tx, run_id, lock=True)
    if run is None or not run.is_open or mark in ("try", "abandon"):
        queues.remove_activity_task(tx, run_id, ref)  # nobody waits for it: no retry
        return None
    if mark == "wait":  # the code waits for the canceled attempt to end: it has
        queues.remove_activity_task(tx, run_id, ref)
        history.append(tx, run, "ActivityFailed", {
            "ref": ref, "name": name, "attempts": attempt, "error": error,
            "timeout": timeout, "canceled": True}, now, wake=True)
        run.retrying = 0
        if save:
            history.save_run_state(tx, run)
        return run
    retryable = not (final or error.get("non_retryable")
                     or error.get("type") in policy.non_retryable_error_types)
    next_time = now if retry_now else now + policy.interval_after(attempt)
    if retryable and not policy.allows_another(attempt):
        retryable = False
    if retryable and close_deadline is not None and next_time >= close_deadline:
        retryable, timeout = False, True
    attrs = {"ref": ref, "name": name, "attempt": attempt, "error": error,
             "next_retry": iso(next_time) if retryable else None,
             "provider": provider[0], "provider_version": provider[1]}
    history.append(tx, run, "ActivityAttemptFailed", attrs, now)
    if retryable:
        queues.retry_attempt(tx, run_id, ref, attempt + 1, next_time, payloads.dumps(error))
        run.retrying = 1
        run.step = f"activity {name}: attempt {attempt} failed, retry at {iso(next_time)}"
    else:
        queues.remove_activity_task(tx, run_id, ref)
        history.append(tx, run, "ActivityFailed", {
            "ref": ref, "name": name, "attempts": attempt, "error": error,
            "timeout": timeout}, now, wake=True)
        run.retrying = 0
    if save:
        history.save_run_state(tx, run)
    return run


@dataclass(slots=True)
class Ending:
    """How one attempt ended, to be recorded: a result, or an error as stored in history.

    ``owner`` fences it (None: whoever holds it). ``retry_now`` retries a lost attempt
    without backoff; ``timeout`` and ``final`` mark a timeout (``final``: no retry)."""

    run_id: str
    ref: int
    owner: str | None
    attempt: int
    ok: bool
    result: Any = None
    error: dict[str, Any] = field(default_factory=dict)
    provider: tuple[str, str] = ("", "")
    retry_now: bool = False
    timeout: bool = False
    final: bool = False


def record_outcomes(tx: Tx, endings: Iterable[Ending], now: float, *, save: bool = True
                    ) -> Iterator[RunRow]:
    """Record each ending in turn (``complete`` or ``fail``), the one way every path
    records attempt outcomes (results, errors, timeouts, lost workers).

    Yields each recorded ending's run before the next is recorded (fenced ones yield
    nothing), so the caller can settle it first; without ``save`` the caller saves it.

    Where reads cost round trips (``tx.batch_reads``), the completions are finished and
    their runs locked together first (``batched.finish_attempts``)."""
    endings = list(endings)
    finished = _finish_together(tx, endings)
    try:
        for end in endings:
            if end.ok:
                assert end.owner is not None
                run = complete(tx, end.run_id, end.ref, end.owner, end.attempt, end.result,
                               end.provider, now, save=save, finished=finished)
            else:
                run = fail(tx, end.run_id, end.ref, end.owner, end.attempt, end.error,
                           end.provider, now, retry_now=end.retry_now, timeout=end.timeout,
                           final=end.final, save=save)
            if run is not None:
                yield run
    finally:
        if finished is not None:
            runs.drop_held(tx)


def _finish_together(tx: Tx, endings: list[Ending]) -> batched.Finished | None:
    """Finish the completions among ``endings`` in one go where that saves round trips:
    those of one owner on runs with no other ending here (a run's earlier ending may
    change what a later one finds, as its workflow task runs in between)."""
    if not tx.batch_reads:
        return None
    per_run = collections.Counter(end.run_id for end in endings)
    owners = {end.owner for end in endings if end.ok}
    if len(owners) != 1:
        return None
    together = [(end.run_id, end.ref, end.attempt) for end in endings
                if end.ok and per_run[end.run_id] == 1]
    if len(together) < 2:
        return None
    owner = owners.pop()
    assert owner is not None
    return batched.finish_attempts(tx, owner, together)


def record_heartbeat(tx: Tx, run_id: str, ref: int, owner: str, attempt: int,
                     details: Any, now: float) -> str:
    """Record the attempt's heartbeat details and extend its heartbeat deadline.

    Returns "ok"; "cancel" when the workflow code canceled the activity and wants the
    attempt told (recorded all the same); "lost" if the attempt is no longer ours (timed
    out, withdrawn, or taken over): nothing is recorded then."""
    held = queues.held_attempt_options(tx, run_id, ref, owner, attempt)
    if held is None:
        return "lost"
    options, mark = held
    heartbeat = stored_seconds(json.loads(options).get("heartbeat"))
    queues.extend_heartbeat(tx, run_id, ref, payloads.dumps(details),
                            now + heartbeat if heartbeat else None)
    return "cancel" if mark in ("try", "wait") else "ok"


def cancels_for(tx: Tx, owner: str) -> list[tuple[str, int, int]]:
    """Attempts ``owner`` runs that the workflow code canceled and wants told to stop:
    (run_id, ref, attempt)."""
    return queues.cancels_for(tx, owner)


def expired(tx: Tx, now: float, limit: int = 100) -> list[tuple[str, int, str | None, int, str]]:
    """Attempts past a deadline: (run_id, ref, owner, attempt, which timeout)."""
    rows = queues.expired_attempts(tx, now, limit)
    found = []
    for run_id, ref, owner, attempt, _deadline, beat, close in rows:
        if close is not None and close <= now:
            which = "ScheduleToClose"
        elif beat is not None and beat <= now:
            which = "Heartbeat"
        else:
            which = "StartToClose"
        found.append((run_id, ref, owner, attempt, which))
    return found
