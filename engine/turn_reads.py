"""The runs a dispatcher turn advances, read and locked together where reads cost round trips.

A turn runs the workflow tasks of up to a batch of due runs. One at a time, each run costs
two waits for the server on PostgreSQL (its locked row, then its new events); here, where
``tx.batch_reads``, the rows and events of all of them are read in one round trip first
(``store.batched.lock_runs_with_events``), each run's events from where its cached
instance stands. Elsewhere (SQLite) each run is read as it comes, as before.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence

from . import history
from .advance import InstanceCache
from .history import RunRow
from .store import batched, runs
from .store.base import Tx


def locked_runs(tx: Tx, run_ids: Sequence[str], cache: InstanceCache,
                skip: Container[str]) -> Iterator[RunRow]:
    """Each run of ``run_ids`` not in ``skip`` (checked as each comes up: the caller may
    add to it), locked and as stored at that moment, as ``history.get_run(lock=True)``
    would read it then; runs that are gone are left out."""
    wanted = [run_id for run_id in run_ids if run_id not in skip]
    together = tx.batch_reads and len(wanted) > 1
    if together:
        after = {}
        for run_id in wanted:
            instance = cache.get(run_id)
            after[run_id] = instance.cursor if instance is not None else 0
        batched.lock_runs_with_events(tx, after)
    try:
        for run_id in wanted:
            if run_id in skip:
                continue
            run = runs.take_held(tx, run_id) or history.get_run(tx, run_id, lock=True)
            if run is not None:
                yield run
    finally:
        if together:
            runs.drop_held(tx)
