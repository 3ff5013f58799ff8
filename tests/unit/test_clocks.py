"""Leases and the engine's time do not depend on the hosts' clocks agreeing.

A reaper judges another worker's lease by how long its heartbeat has not changed, timed by
its own monotonic clock; on PostgreSQL the engine's time follows the server's clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onward import Engine
from onward.liveness import LeaseWatch, death_of

LEASE = 5.0


class FakeMonotonic:
    """A monotonic clock the test advances."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def remote(silent: float) -> str | None:
    return death_of("w", "elsewhere:boot:pid:[1]", 1, "?", silent, LEASE)


@given(skew=st.floats(-1e6, 1e6), gaps=st.lists(st.floats(0.01, LEASE / 3), max_size=60),
       reap_every=st.floats(0.05, 1.0))
def test_a_worker_that_beats_within_its_lease_is_never_presumed_dead_however_skewed(
        skew: float, gaps: list[float], reap_every: float) -> None:
    mono = FakeMonotonic()
    watch = LeaseWatch(mono)
    written = 1_700_000_000.0 + skew  # its clock, however far from ours
    next_reap = mono.now
    for gap in gaps:
        end = mono.now + gap
        while next_reap <= end:  # reap passes between two heartbeats
            mono.now = next_reap
            assert remote(watch.silent_for("w", written)) is None
            next_reap += reap_every
        mono.now = end
        written += gap


@given(skew=st.floats(-1e6, 1e6), reap_every=st.floats(0.05, 1.0))
def test_a_worker_whose_heartbeat_stops_is_presumed_dead_one_lease_later(
        skew: float, reap_every: float) -> None:
    mono = FakeMonotonic()
    watch = LeaseWatch(mono)
    last = 1_700_000_000.0 + skew
    first_seen = mono.now
    while remote(watch.silent_for("w", last)) is None:
        mono.now += reap_every
        assert mono.now - first_seen <= LEASE + reap_every + 1e-6
    assert mono.now - first_seen > LEASE


def test_a_forgotten_worker_gets_a_whole_lease_again() -> None:
    mono = FakeMonotonic()
    watch = LeaseWatch(mono)
    watch.silent_for("w", 1.0)
    mono.now += LEASE * 2
    watch.keep_only([])
    assert watch.silent_for("w", 1.0) == 0.0


def test_on_postgresql_the_engine_keeps_the_servers_time(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONWARD_TIME_SHIFT", "3600")  # this host's clock is an hour fast
    with Engine(pg_url) as eng:
        assert abs(eng.clock() - time.time()) < 1.0


def test_on_sqlite_the_engine_keeps_this_machines_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONWARD_TIME_SHIFT", "3600")
    with Engine(tmp_path / "onward.db") as eng:
        assert abs(eng.clock() - time.time() - 3600) < 1.0


def test_an_engine_given_a_clock_keeps_it_on_postgresql(pg_url: str) -> None:
    with Engine(pg_url, clock=lambda: 42.0) as eng:
        assert eng.clock() == 42.0
