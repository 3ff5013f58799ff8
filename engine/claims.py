"""Claims in doubt: attempts claimed in a transaction whose commit failed.

A commit can fail after the database made it durable (its acknowledgement lost on the
way). Attempts such a transaction claimed may then be this worker's without having
started. The worker keeps them here, under the engine's advance lock, and the next
transaction that may claim settles them first: started if the claim stood, else left
free like any ready attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from . import attempts
from .attempts import Attempt
from .store.base import Tx

log = logging.getLogger("onward.worker")


class ClaimsInDoubt:
    """One worker's claims whose commit may or may not have happened."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.attempts: list[Attempt] = []

    def __bool__(self) -> bool:
        return bool(self.attempts)

    def add(self, claimed: list[Attempt]) -> None:
        """Keep ``claimed`` for the next transaction to settle."""
        self.attempts.extend(claimed)

    @contextmanager
    def guard(self, claimed: list[Attempt]) -> Iterator[None]:
        """Around a transaction that claims into ``claimed`` (under ``advance_lock``): if
        it fails, even at its commit, its claims are in doubt."""
        try:
            yield
        except BaseException:
            self.attempts.extend(claimed)
            raise

    def settle(self, tx: Tx, now: float, dispatch: list[Attempt]) -> None:
        """Settle them before claiming anew.

        Those that committed are this worker's and never started: they go to ``dispatch``,
        their start-to-close clock running from now (starting beats releasing: the worker
        had room for them, and a release would need another claim, by someone, later).
        The others were rolled back and wait, free, like any ready attempt."""
        if not self.attempts:
            return
        started = 0
        while self.attempts:
            attempt = self.attempts[-1]
            if attempts.restart(tx, attempt, self.worker_id, now):
                dispatch.append(attempt)
                started += 1
            self.attempts.pop()
        if started:
            log.warning("worker %s: a commit whose acknowledgement was lost had claimed %d "
                        "attempt(s); starting them now", self.worker_id, started)

    def hand_back(self, tx: Tx) -> None:
        """At shutdown: claimed but never started is not an attempt; release them."""
        for attempt in self.attempts:
            attempts.unclaim(tx, attempt, self.worker_id)
