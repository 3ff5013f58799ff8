"""A business-day deadline is computed once and recorded (a ``business_days`` marker):
replay reads it back, so a changed holiday calendar or holiday list never moves the
deadline of a run under way, and a marker out of place is non-determinism (issue 17)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import holidays as holiday_calendars
import pytest

from onward import Engine, workflow
from onward.business import deadline_record
from onward.events import Event
from onward.instance import WorkflowInstance, WorkflowTaskError
from onward.workflow_runtime import WorkflowInfo
from tests.helpers import wait_until

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "business.py")


def _types(eng: Engine, run: str) -> list[str]:
    return [e["type"] for e in eng.show(run)["history"]]


def test_replay_keeps_the_recorded_deadline_after_the_calendar_changes(
        any_db: Path | str, monkeypatch: pytest.MonkeyPatch) -> None:
    # cache_size=0: every workflow task rebuilds the run from its history (a full replay)
    eng = Engine(any_db, flows=[FLOWS], cache_size=0)
    try:
        with eng.worker():
            eng.start("approval_deadline", 3, "Europe/Berlin", "DE", id="claim")
            wait_until(lambda: "ManualTaskCreated" in _types(eng, "claim"), message="task")
        history = eng.show("claim")["history"]
        marker = next(e["attrs"] for e in history if e["type"] == "MarkerRecorded")
        assert marker["name"] == "business_days" and marker["days"] == 3
        assert marker["tz"] == "Europe/Berlin" and marker["holidays"] == ["DE"]
        assert marker["calendar"] == f"holidays {holiday_calendars.__version__}"
        deadline = datetime.fromisoformat(marker["deadline"])
        task = next(e["attrs"] for e in history if e["type"] == "ManualTaskCreated")
        assert task["deadline"] == pytest.approx(deadline.timestamp())

        # A calendar update: the next three weeks, wherever the test runs, become holidays.
        today = datetime.now(UTC).date()
        new_days = {today + timedelta(days=i) for i in range(-1, 21)}
        monkeypatch.setattr(holiday_calendars, "country_holidays",
                            lambda country, subdiv=None: new_days)
        started = datetime.fromisoformat(history[0]["time"])
        moved = deadline_record(started, 3, "Europe/Berlin", "DE")["deadline"]
        assert moved != marker["deadline"]  # recomputing now would move the deadline

        assert eng.replay(["claim"])[0]["ok"] is True
        with eng.worker():
            eng.complete_task(eng.tasks()[0]["task_id"], "approved")
            result = eng.handle("claim").result(timeout=10)
        assert result["answer"] == "approved"
        seen = datetime.fromisoformat(result["start"]) + timedelta(seconds=result["seconds"])
        assert seen == pytest.approx(deadline, abs=timedelta(milliseconds=1))
        assert _types(eng, "claim").count("MarkerRecorded") == 1
    finally:
        eng.close()


def test_a_bad_time_zone_in_workflow_code_fails_the_task_naming_it(make_engine) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(flows=[FLOWS])
    with eng.worker():
        eng.start("deadline_in_no_zone", id="nowhere")
        wait_until(lambda: eng.show("nowhere")["stuck"], message="held stuck")
    shown = eng.show("nowhere")
    failed = [e["attrs"] for e in shown["history"] if e["type"] == "WorkflowTaskFailed"]
    assert "business_days(tz='Mars/Olympus')" in failed[0]["message"]
    assert "MarkerRecorded" not in [e["type"] for e in shown["history"]]


# -- the instance alone: the same history replayed by changed code ----------------------------
START = datetime(2026, 12, 23, 9, 0, tzinfo=UTC).timestamp()  # Wednesday, 10:00 in Berlin
Code = Callable[[], Coroutine[Any, Any, Any]]


def _run(code: Code, history: list[Event] | None = None) -> tuple[list[Event], Any]:
    """Run ``code`` to its first wait (or replay ``history``); the events and what it saw."""
    seen: list[Any] = []

    async def main() -> None:
        seen.append(await code())

    instance = WorkflowInstance(main, WorkflowInfo("w", "r", "t", START))
    events = history or [Event(1, "WorkflowStarted", START, {})]
    commands = instance.activate(events).commands
    return events + [Event(c.seq, c.type, START, c.attrs) for c in commands], \
        instance.query("seen", []) if instance.query_handlers else None


def _deadline_code(holidays: Any, *, patch: bool = False, sleep_first: bool = False) -> Code:
    async def code() -> None:
        if patch:
            workflow.patched("faster-review")
        if sleep_first:
            await workflow.sleep(5)
        timeout = workflow.business_days(3, tz="Europe/Berlin", holidays=holidays)
        workflow.set_query_handler("seen", lambda: timeout.total_seconds())
        await workflow.sleep(timeout)
    return code


def test_a_changed_holiday_list_replays_to_the_recorded_deadline() -> None:
    history, first = _run(_deadline_code(["2026-12-24"]))
    assert [e.type for e in history] == ["WorkflowStarted", "MarkerRecorded", "TimerStarted"]
    assert first == timedelta(days=6).total_seconds()  # Thu 24 off: Fri, Mon, Tue 29 Dec
    assert history[1].attrs["skipped"] == ["2026-12-24"]
    replayed, again = _run(_deadline_code([]), history)  # the code now names no holidays
    assert replayed == history and again == first  # no new command, the recorded deadline


def test_a_removed_patch_before_the_marker_still_replays() -> None:
    history, first = _run(_deadline_code("DE", patch=True))
    assert [e.type for e in history][1:3] == ["MarkerRecorded", "MarkerRecorded"]
    assert history[1].attrs == {"patch_id": "faster-review"}
    replayed, again = _run(_deadline_code("DE"), history)
    assert replayed == history and again == first


@pytest.mark.parametrize(("recorded", "changed", "message"), [
    ({}, {"sleep_first": True},
     "history has MarkerRecorded 'business_days' but the code asked for TimerStarted"),
    ({"sleep_first": True}, {},
     "history has TimerStarted but the code asked for MarkerRecorded 'business_days'"),
], ids=["marker-then-sleep", "sleep-then-marker"])
def test_a_marker_out_of_place_is_non_determinism(
        recorded: dict[str, bool], changed: dict[str, bool], message: str) -> None:
    history, _ = _run(_deadline_code((), **recorded))
    with pytest.raises(WorkflowTaskError, match=message) as caught:
        _run(_deadline_code((), **changed), history)
    assert caught.value.kind == "nondeterminism" and caught.value.details["seq"] == 2


def test_the_deadline_is_not_recomputed_from_the_marker_inputs() -> None:
    """The marker keeps what was computed; its inputs are a record for people, not redone."""
    history, first = _run(_deadline_code(["2026-12-24"]))
    history[1].attrs["deadline"] = datetime(2027, 1, 4, 9, 0, tzinfo=UTC).isoformat()
    _, again = _run(_deadline_code(["2026-12-24"]), history)
    assert again != first
    assert again == timedelta(days=12).total_seconds()  # the recorded Monday 4 January
