"""Schedules on the engine, with a clock the test moves: firing exactly once per fire time,
the overlap policies, the catch-up window, pause, trigger, backfill, delete and describe;
on SQLite and PostgreSQL. Fires are driven through ``schedules.fire_due`` (what a worker's
turn calls) so every step is deterministic; one test runs a real in-process worker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from onward import BadInput, Engine, NotFound
from onward import schedules as firing
from onward.schedule_spec import fire_iso, jitter_delay
from tests.helpers import wait_until

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "scheduled.py")
T0 = 1_796_083_200.0  # 2026-12-01T00:00:00Z


class Clock:
    """The engine's clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def eng(any_db: str | Path, clock: Clock) -> Any:
    engine = Engine(any_db, flows=[FLOWS], clock=clock)
    yield engine
    engine.close()


def turn(eng: Engine, now: float) -> int:
    """One worker turn's worth of schedule firing at ``now``."""
    with eng.advance_lock, eng.store.write() as tx:
        return firing.fire_due(tx, eng.advancer, eng.new_id, now)


def fired_ids(eng: Engine, sid: str) -> list[str]:
    return sorted(r["id"] for r in eng.list(all_runs=True, limit=1000)
                  if r["id"].startswith(sid + "-"))


def test_create_describe_and_list(eng: Engine) -> None:
    made = eng.create_schedule("nightly", "tick", "eu", cron="30 2 * * *",
                               tz="Europe/Berlin", overlap="buffer_one",
                               catchup=timedelta(minutes=5), jitter="30s", note="reports")
    assert made["id"] == "nightly" and made["spec"] == {"cron": "30 2 * * *"}
    assert made["tz"] == "Europe/Berlin" and made["overlap"] == "buffer_one"
    assert made["catchup"] == 300 and made["jitter"] == 30 and made["note"] == "reports"
    assert made["paused"] is False and made["input"] == ["eu"]
    assert made["next_fires"] == ["2026-12-01T01:30:00Z", "2026-12-02T01:30:00Z",
                                  "2026-12-03T01:30:00Z", "2026-12-04T01:30:00Z",
                                  "2026-12-05T01:30:00Z"]
    nominal = T0 + 5400
    assert made["next_due"] == pytest.approx(nominal + jitter_delay("nightly", nominal, 30))
    assert made["recent"] == [] and made["counts"] == {"fired": 0, "skipped": 0, "missed": 0}
    listed = eng.schedules()
    assert [s["id"] for s in listed] == ["nightly"] and listed[0] == made


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"cron": "61 * * * *"}, "minute field"), ({"cron": "* * *"}, "3 fields"),
    ({"every": "5x"}, "--every"), ({"every": "5m", "tz": "Nowhere/City"}, "Nowhere/City"),
    ({"every": "5m", "overlap": "sometimes"}, "--overlap"),
    ({"every": "5m", "catchup": "soon"}, "--catchup"), ({}, "exactly one"),
    ({"every": "5m", "jitter": -1.0}, "--jitter")])
def test_bad_input_is_refused_and_writes_nothing(eng: Engine, kwargs: dict[str, Any],
                                                 says: str) -> None:
    with pytest.raises(BadInput, match=says):
        eng.create_schedule("s", "tick", **kwargs)
    assert eng.schedules() == []


def test_a_duplicate_id_or_unknown_workflow_is_refused(eng: Engine) -> None:
    eng.create_schedule("s", "tick", every="1m")
    with pytest.raises(BadInput, match="schedule s exists"):
        eng.create_schedule("s", "tick", every="5m")
    with pytest.raises(BadInput, match="unknown workflow"):
        eng.create_schedule("t", "nope", every="5m")
    assert [s["spec"] for s in eng.schedules()] == [{"every": "1m"}]


def test_each_fire_time_starts_one_run_once(eng: Engine) -> None:
    eng.create_schedule("s", "tick", every="1m", overlap="allow_all")
    assert turn(eng, T0 + 59) == 0
    assert turn(eng, T0 + 60) == 1
    assert turn(eng, T0 + 60) == 0 and turn(eng, T0 + 61) == 0  # nothing due again
    assert fired_ids(eng, "s") == ["s-2026-12-01T00:01:00Z"]
    turn(eng, T0 + 120)
    d = eng.describe_schedule("s")
    assert d["counts"] == {"fired": 2, "skipped": 0, "missed": 0}
    assert [(r["fire_time"], r["id"], r["status"]) for r in d["recent"]] == [
        ("2026-12-01T00:02:00Z", "s-2026-12-01T00:02:00Z", "running"),
        ("2026-12-01T00:01:00Z", "s-2026-12-01T00:01:00Z", "running")]
    assert eng.show("s-2026-12-01T00:01:00Z")["workflow"] == "tick"


def test_fired_runs_carry_schedule_id_and_are_found_by_it(eng: Engine) -> None:
    eng.create_schedule("s", "tick", every="1m", overlap="allow_all")
    eng.create_schedule("other", "tick", every="1m", overlap="allow_all")
    turn(eng, T0 + 120)
    assert eng.show("s-2026-12-01T00:01:00Z")["search_attributes"] == {"ScheduleId": "s"}
    found = eng.list(query='ScheduleId = "s"', all_runs=True)
    assert sorted(r["id"] for r in found) == ["s-2026-12-01T00:01:00Z",
                                              "s-2026-12-01T00:02:00Z"]
    assert eng.count(query='ScheduleId STARTS_WITH "oth"')["count"] == 2


def test_jitter_delays_the_start_but_not_the_run_id(eng: Engine) -> None:
    eng.create_schedule("j", "tick", every="1m", jitter="20s")
    delay = jitter_delay("j", T0 + 60, 20)
    assert delay > 0
    assert turn(eng, T0 + 60 + delay - 0.01) == 0
    turn(eng, T0 + 60 + delay)
    assert fired_ids(eng, "j") == ["j-2026-12-01T00:01:00Z"]


def test_skip_counts_fires_while_the_previous_run_is_open(eng: Engine) -> None:
    eng.create_schedule("s", "held", every="1m")
    turn(eng, T0 + 60)
    turn(eng, T0 + 120)
    assert fired_ids(eng, "s") == ["s-2026-12-01T00:01:00Z"]
    eng.terminate("s-2026-12-01T00:01:00Z")
    turn(eng, T0 + 180)
    assert fired_ids(eng, "s") == ["s-2026-12-01T00:01:00Z", "s-2026-12-01T00:03:00Z"]
    assert eng.describe_schedule("s")["counts"] == {"fired": 2, "skipped": 1, "missed": 0}


def test_buffer_one_starts_one_buffered_fire_when_the_previous_closes(eng: Engine) -> None:
    eng.create_schedule("b", "held", every="1m", overlap="buffer_one")
    turn(eng, T0 + 60)
    turn(eng, T0 + 120)  # buffered
    turn(eng, T0 + 180)  # a second one while one is buffered: skipped
    d = eng.describe_schedule("b")
    assert d["buffered"] == "2026-12-01T00:02:00Z" and d["counts"]["skipped"] == 1
    assert turn(eng, T0 + 181) == 0  # still open: nothing to start
    eng.terminate("b-2026-12-01T00:01:00Z")
    assert turn(eng, T0 + 182) == 1
    assert fired_ids(eng, "b") == ["b-2026-12-01T00:01:00Z", "b-2026-12-01T00:02:00Z"]
    assert eng.describe_schedule("b")["buffered"] is None


def test_allow_all_starts_every_fire(eng: Engine) -> None:
    eng.create_schedule("a", "held", every="1m", overlap="allow_all")
    for k in (1, 2, 3):
        turn(eng, T0 + 60 * k)
    assert len(fired_ids(eng, "a")) == 3
    assert all(eng.show(i)["status"] == "running" for i in fired_ids(eng, "a"))


def test_cancel_other_asks_the_previous_run_to_cancel(eng: Engine) -> None:
    eng.create_schedule("c", "held", every="1m", overlap="cancel_other")
    turn(eng, T0 + 60)
    turn(eng, T0 + 120)
    first = eng.show("c-2026-12-01T00:01:00Z")
    assert "CancelRequested" in [e["type"] for e in first["history"]]
    assert eng.show("c-2026-12-01T00:02:00Z")["status"] == "running"


def test_terminate_other_closes_the_previous_run(eng: Engine) -> None:
    eng.create_schedule("t", "held", every="1m", overlap="terminate_other")
    turn(eng, T0 + 60)
    turn(eng, T0 + 120)
    assert eng.show("t-2026-12-01T00:01:00Z")["status"] == "terminated"
    assert eng.show("t-2026-12-01T00:02:00Z")["status"] == "running"
    assert eng.describe_schedule("t")["counts"]["fired"] == 2


def test_after_downtime_fires_in_the_catchup_window_start_and_older_are_missed(
        eng: Engine) -> None:
    eng.create_schedule("d", "tick", every="1m", overlap="allow_all", catchup="2m")
    turn(eng, T0 + 600)  # ten fires due; those at most 2 minutes old start
    assert fired_ids(eng, "d") == ["d-2026-12-01T00:08:00Z", "d-2026-12-01T00:09:00Z",
                                   "d-2026-12-01T00:10:00Z"]
    d = eng.describe_schedule("d")
    assert d["counts"] == {"fired": 3, "skipped": 0, "missed": 7}
    assert d["next_fires"][0] == "2026-12-01T00:11:00Z"


def test_a_long_downtime_is_counted_without_walking_every_fire(eng: Engine) -> None:
    eng.create_schedule("f", "tick", every="100ms", overlap="allow_all", catchup=0.25)
    turn(eng, T0 + 86400)  # a day: 864,000 fires
    d = eng.describe_schedule("f")
    assert d["counts"]["fired"] == 3 and d["counts"]["missed"] == 864_000 - 3


def test_pause_unpause_and_trigger(eng: Engine, clock: Clock) -> None:
    eng.create_schedule("p", "held", every="1m")
    eng.pause_schedule("p", note="maintenance")
    d = eng.describe_schedule("p")
    assert d["paused"] is True and d["note"] == "maintenance" and d["next_due"] is None
    assert turn(eng, T0 + 300) == 0 and fired_ids(eng, "p") == []
    clock.now = T0 + 310.5
    assert eng.trigger_schedule("p") == "started"  # also while paused
    assert fired_ids(eng, "p") == ["p-2026-12-01T00:05:10.500Z"]
    assert eng.trigger_schedule("p") == "exists"  # the same instant: that fire has its run
    clock.now += 1
    assert eng.trigger_schedule("p") == "skipped"  # its overlap policy applies
    eng.unpause_schedule("p")
    d = eng.describe_schedule("p")
    assert d["paused"] is False and d["next_fires"][0] == "2026-12-01T00:06:00Z"
    assert d["counts"] == {"fired": 1, "skipped": 1, "missed": 0}  # the pause missed nothing


def test_backfill_covers_start_inclusive_to_end_exclusive(eng: Engine) -> None:
    eng.create_schedule("bf", "tick", cron="0 * * * *", overlap="allow_all")
    tally = eng.backfill_schedule("bf", "2026-11-30T20:00:00Z", "2026-11-30T23:00:00Z")
    assert tally == {"started": 3, "skipped": 0, "buffered": 0, "exists": 0}
    assert fired_ids(eng, "bf") == ["bf-2026-11-30T20:00:00Z", "bf-2026-11-30T21:00:00Z",
                                    "bf-2026-11-30T22:00:00Z"]
    again = eng.backfill_schedule("bf", "2026-11-30T21:00:00+00:00", "2026-11-30T23:30:00Z")
    assert again == {"started": 1, "skipped": 0, "buffered": 0, "exists": 2}
    with pytest.raises(BadInput, match="--end"):
        eng.backfill_schedule("bf", "2026-11-30T23:00:00Z", "2026-11-30T20:00:00Z")
    with pytest.raises(BadInput, match="offset"):
        eng.backfill_schedule("bf", "2026-11-30T20:00:00", "2026-11-30T23:00:00Z")
    with pytest.raises(BadInput, match="split it"):
        eng.backfill_schedule("bf", "2000-01-01T00:00:00Z", "2026-01-01T00:00:00Z")


def test_backfill_under_skip_starts_the_first_and_skips_while_it_is_open(eng: Engine) -> None:
    eng.create_schedule("bs", "held", cron="0 * * * *")
    tally = eng.backfill_schedule("bs", "2026-11-30T20:00:00Z", "2026-11-30T23:00:00Z")
    assert tally == {"started": 1, "skipped": 2, "buffered": 0, "exists": 0}


def test_delete_keeps_the_runs_and_unknown_ids_are_not_found(eng: Engine) -> None:
    eng.create_schedule("x", "tick", every="1m")
    turn(eng, T0 + 60)
    eng.delete_schedule("x")
    assert eng.schedules() == [] and fired_ids(eng, "x") == ["x-2026-12-01T00:01:00Z"]
    for call in (eng.describe_schedule, eng.delete_schedule, eng.pause_schedule,
                 eng.unpause_schedule, eng.trigger_schedule):
        with pytest.raises(NotFound, match="no schedule 'x'"):
            call("x")


def test_an_in_process_worker_fires_a_fast_schedule(tmp_path: Path) -> None:
    eng = Engine(tmp_path / "w.db", flows=[FLOWS])
    try:
        eng.create_schedule("w", "tick", "fast", every="100ms", overlap="allow_all")
        with eng.worker():
            wait_until(lambda: len([r for r in eng.describe_schedule("w")["recent"]
                                    if r["status"] == "completed"]) >= 5,
                       message="five completed fires")
        d = eng.describe_schedule("w")
        run_id = d["recent"][0]["id"]
        assert run_id == f"w-{d['recent'][0]['fire_time']}"
        assert eng.show(run_id)["input"] == ["fast"]
        assert fire_iso(1.5) == "1970-01-01T00:00:01.500Z"
    finally:
        eng.close()


def test_a_workflow_function_names_it_and_its_input_is_checked_at_create(eng: Engine) -> None:
    from tests.flows.scheduled import tick
    made = eng.create_schedule("fn", tick, "x", every="1m")
    assert made["workflow"] == "tick"
    with pytest.raises(BadInput, match="input of workflow tick"):
        eng.create_schedule("bad", "tick", 1, 2, 3, every="1m")
    assert [s["id"] for s in eng.schedules()] == ["fn"]


def test_two_creates_of_one_id_at_once_make_one_schedule(any_db: str | Path) -> None:
    import threading
    engines = [Engine(any_db, flows=[FLOWS]) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create(engine: Engine, every: str) -> None:
        barrier.wait()
        try:
            engine.create_schedule("race", "tick", every=every)
            outcomes.append("created")
        except BadInput as err:
            outcomes.append(str(err))

    try:
        threads = [threading.Thread(target=create, args=(e, every))
                   for e, every in zip(engines, ("1m", "2m"), strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes)[0] == "created" and "schedule race exists" in sorted(outcomes)[1]
        assert len(engines[0].schedules()) == 1
    finally:
        for e in engines:
            e.close()


def test_a_fire_time_that_has_its_run_is_not_buffered_or_counted_again(eng: Engine) -> None:
    # found by the stateful test: a second trigger at the same instant was buffered, then
    # dropped uncounted when the buffer found the run already there
    eng.create_schedule("e", "held", every="1m", overlap="buffer_one")
    assert eng.trigger_schedule("e") == "started"
    eng.backfill_schedule("e", T0 - 60, T0, overlap="allow_all")
    assert eng.trigger_schedule("e") == "exists"
    d = eng.describe_schedule("e")
    assert d["buffered"] is None and d["counts"] == {"fired": 2, "skipped": 0, "missed": 0}
