"""Reads grouped across the runs of a dispatcher turn, where each read costs a round trip.

On PostgreSQL (``Tx.batch_reads``) every statement whose answer the engine needs waits for
the server. A turn that records thirty attempts' outcomes would wait sixty times, one
attempt at a time (its ``DELETE ... RETURNING``, then its run's locking ``SELECT``); a turn
that runs new runs' first workflow tasks, twice per run (the row, then the events). Here
each kind is one statement for all of the turn's runs, in PostgreSQL's dialect (arrays,
``unnest``), and the statements of one step are sent together (``Tx.execute_together``):
one round trip where there were dozens.

The run rows read are locked as ``get_run(lock=True)`` locks them (in run id order, so
that two workers locking the same runs wait rather than deadlock) and held in the
transaction (``runs.hold``) for their consumers to take; a held row that the turn writes
in any other way first is dropped and read again, so nothing works on a stale row.
Callers check ``tx.batch_reads`` first: SQLite never comes here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import payloads
from ..events import Event
from .base import Tx
from .runs import RUN_COLUMNS, RunRow, hold

FINISH_SQL = (
    "DELETE FROM activity_tasks a USING unnest(?::text[], ?::integer[], ?::integer[]) "
    "AS k(run_id, ref, attempt) WHERE a.run_id = k.run_id AND a.ref = k.ref AND "
    "a.attempt = k.attempt AND a.owner = ? RETURNING a.run_id, a.ref, a.name, a.cancel")
"""``queues.finish_attempt`` for many attempts of one owner."""

EVENTS_SQL = (
    "SELECT e.run_id, e.seq, e.type, e.time, e.attrs FROM events e "
    "JOIN unnest(?::text[], ?::integer[]) AS k(run_id, after) "
    "ON e.run_id = k.run_id AND e.seq > k.after ORDER BY e.run_id, e.seq")
"""``runs.load_events`` of many runs, each after its own sequence number."""


def lock_runs_sql(tx: Tx) -> str:
    """``runs.get_run(lock=True)`` for many run ids, locked in run id order."""
    return f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ANY(?) ORDER BY run_id" \
        + tx.for_update


Finished = dict[tuple[str, int], tuple[str, str | None] | None]
"""Per (run_id, ref): the finished activity's name and cancel mark, None when fenced."""


def finish_attempts(tx: Tx, owner: str, attempts: Sequence[tuple[str, int, int]]
                    ) -> Finished:
    """``queues.finish_attempt`` for each (run_id, ref, attempt) that ``owner`` completed,
    and the runs of all of them read and locked (held: ``runs.take_held``); one round
    trip. Every attempt passed is in the answer."""
    run_ids = sorted({run_id for run_id, _, _ in attempts})
    deleted, rows = tx.execute_together([
        (FINISH_SQL, ([a[0] for a in attempts], [a[1] for a in attempts],
                      [a[2] for a in attempts], owner)),
        (lock_runs_sql(tx), (run_ids,))])
    hold(tx, (RunRow(*row) for row in rows))
    finished: Finished = {(run_id, ref): None for run_id, ref, _ in attempts}
    for run_id, ref, name, cancel in deleted:
        finished[(run_id, ref)] = (name, cancel)
    return finished


def lock_runs_with_events(tx: Tx, after: dict[str, int]) -> None:
    """Read and lock the runs ``after`` names, each with its events after the sequence
    number given (held, as ``RunRow.fresh`` from ``loaded_seq``, so that a workflow task
    at that point needs no read of its own); one round trip."""
    run_ids = sorted(after)
    rows, events = tx.execute_together([
        (lock_runs_sql(tx), (run_ids,)),
        (EVENTS_SQL, (run_ids, [after[r] for r in run_ids]))])
    by_run: dict[str, list[Event]] = {}
    decode = payloads.decode
    for run_id, seq, kind, when, attrs in events:
        by_run.setdefault(run_id, []).append(Event(seq, kind, when, decode(attrs)))
    runs = [RunRow(*row) for row in rows]
    for run in runs:
        run.loaded_seq = after[run.run_id]
        run.fresh = by_run.get(run.run_id, [])
    hold(tx, runs)
