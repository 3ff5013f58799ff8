"""The client's schedule calls: create, list, describe, pause, unpause, trigger, backfill,
delete. ``Engine`` inherits them from ``ScheduleClient``.

Every call validates its input before it writes (a bad cron field, time zone or duration is
a ``BadInput`` naming it, and nothing is written). Firing itself is ``engine.schedules``;
a trigger or backfill fires in the caller's own transaction, under the schedule's overlap
policy, exactly as a worker would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from . import convert, payloads, schedules
from .advance import Advancer
from .errors import BadInput, NotFound
from .events import iso
from .registry import Registry
from .runtime import Runtime
from .schedule_spec import Spec, fire_iso, parse_duration, parse_spec
from .store import schedules as store
from .store.base import Store, Tx
from .store.schedules import ScheduleRow
from .workflow import definition_of

__all__ = ["ScheduleClient"]

NEXT_FIRES = 5
RECENT = 10
MAX_BACKFILL = 10_000
"""Fire times one backfill may cover."""


def _seconds(value: float | timedelta | str | None, what: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        seconds = parse_duration(value, what)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise BadInput(f"{what}: {value!r} is not a duration")
    if seconds < 0 or seconds != seconds:
        raise BadInput(f"{what}: {value!r} must not be negative")
    return seconds


def _instant(value: datetime | str | float, what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = value if isinstance(value, str) else None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadInput(f"{what} {value!r}: not an ISO-8601 time "
                           "(e.g. 2026-12-01T00:00:00Z)") from None
    if not isinstance(value, datetime):
        raise BadInput(f"{what}: {value!r} is not a time")
    if value.tzinfo is None:
        shown = text if text is not None else value.isoformat()
        raise BadInput(f"{what} {shown!r}: give its offset (e.g. Z or +01:00)")
    return value.timestamp()


class ScheduleClient:
    """Schedule calls of ``Engine`` (which supplies the attributes declared here)."""

    store: Store
    registry: Registry
    runtime: Runtime
    clock: Callable[[], float]
    advancer: Advancer
    advance_lock: threading.Lock
    new_id: Callable[[str], str]

    def _check_workflow(self, tx: Tx, name: str) -> None:  # pragma: no cover - Engine's
        raise NotImplementedError

    def create_schedule(self, sid: str, workflow: str | Callable[..., Any], *args: Any,
                        cron: str | None = None,
                        every: str | float | timedelta | None = None, tz: str = "UTC",
                        overlap: str = "skip",
                        catchup: float | timedelta | str = timedelta(minutes=1),
                        jitter: float | timedelta | str | None = None, paused: bool = False,
                        note: str | None = None) -> dict[str, Any]:
        """Create schedule ``sid`` starting ``workflow(*args)`` (a name or a workflow
        function; the input is checked against its parameters when this engine has its
        code) at the times of ``cron`` (in ``tz``) or ``every`` (``30s``, ``1h/15m``,
        seconds or a timedelta); returns what ``describe_schedule`` returns. A duplicate
        ``sid`` is refused (BadInput)."""
        if not isinstance(sid, str) or not sid.strip() or len(sid) > 150:
            raise BadInput("a schedule id must be a non-empty string of at most 150 "
                           "characters")
        if not isinstance(workflow, str):
            workflow = getattr(definition_of(workflow), "name", None) or workflow
        if not isinstance(workflow, str) or not workflow:
            raise BadInput(f"{workflow!r} is not a workflow")
        spec = parse_spec(cron, every, tz)
        if overlap not in schedules.OVERLAP_POLICIES:
            raise BadInput(f"--overlap {overlap!r}: one of "
                           f"{', '.join(schedules.OVERLAP_POLICIES)}")
        arg_list = convert.to_json(list(args), "workflow input")
        definition = self.registry.workflow(workflow)
        if definition is not None:  # refused now, naming the field, not at every fire
            convert.bind_args(definition.fn, arg_list, f"input of workflow {workflow}")
        args_text = payloads.dumps(arg_list, "workflow input")
        if note is not None:
            payloads.text(note, "--note")
        now = self.clock()
        row = ScheduleRow(sid, workflow, args_text, json.dumps(spec.describe()), tz, overlap,
                          _seconds(catchup, "--catchup"), _seconds(jitter, "--jitter"),
                          int(bool(paused)), note, now, 0, 0, 0, None, None, None, None)
        schedules.set_next(row, spec, spec.next_after(now))
        def write(tx: Tx) -> None:
            self._check_workflow(tx, workflow)
            if not store.insert(tx, row):
                raise BadInput(f"schedule {sid} exists (`onward schedule delete {sid}` "
                               "first to replace it)")

        self.runtime.committer.run(write)
        self.runtime.feed.wrote()
        return self.describe_schedule(sid)

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule, described as ``describe_schedule`` does, by id (``next_due`` is
        the epoch time of the next fire, for countdowns)."""
        now = self.clock()
        with self.store.read() as tx:
            return [self._describe(tx, row, now) for row in store.list_all(tx)]

    def describe_schedule(self, sid: str) -> dict[str, Any]:
        """id, workflow, input, spec, tz, overlap, catchup, jitter, paused, note,
        next_fires (5, ISO), next_due, buffered, recent (fire time, run id, status) and
        counts (fired, skipped, missed) of schedule ``sid``."""
        now = self.clock()
        with self.store.read() as tx:
            return self._describe(tx, self._row(tx, sid), now)

    def _row(self, tx: Tx, sid: str, *, lock: bool = False) -> ScheduleRow:
        row = store.get(tx, sid, lock=lock) if isinstance(sid, str) else None
        if row is None:
            raise NotFound(f"no schedule {sid!r} (`onward schedule list` shows them)")
        return row

    def _describe(self, tx: Tx, row: ScheduleRow, now: float) -> dict[str, Any]:
        spec = schedules.spec_of(row)
        upcoming: list[str] = []
        t = row.next_fire if row.next_fire is not None and not row.paused \
            else spec.next_after(now)
        while t is not None and len(upcoming) < NEXT_FIRES:
            upcoming.append(fire_iso(t))
            t = spec.next_after(t)
        return {
            "id": row.schedule_id, "workflow": row.workflow, "input": json.loads(row.args),
            "spec": json.loads(row.spec), "tz": row.tz, "overlap": row.overlap,
            "catchup": row.catchup, "jitter": row.jitter, "paused": bool(row.paused),
            "note": row.note, "created": iso(row.created), "next_fires": upcoming,
            "next_due": None if row.paused else row.due,
            "buffered": None if row.buffered is None else fire_iso(row.buffered),
            "recent": [{"fire_time": fire_iso(f), "id": wid, "run_id": run_id,
                        "status": status}
                       for f, wid, run_id, status in store.recent_runs(tx, row.schedule_id,
                                                                       RECENT)],
            "counts": {"fired": row.fired, "skipped": row.skipped, "missed": row.missed},
        }

    def pause_schedule(self, sid: str, note: str | None = None) -> None:
        """Stop ``sid`` firing until unpaused (with an optional note saying why)."""
        if note is not None:
            payloads.text(note, "--note")
        def write(tx: Tx) -> None:
            row = self._row(tx, sid, lock=True)
            row.paused = 1
            row.note = note if note is not None else row.note
            store.save(tx, row)

        self.runtime.committer.run(write)
        self.runtime.feed.wrote()

    def unpause_schedule(self, sid: str, note: str | None = None) -> None:
        """Let ``sid`` fire again, from its next fire time after now (fires that fell in
        the pause are not made up)."""
        if note is not None:
            payloads.text(note, "--note")
        now = self.clock()
        def write(tx: Tx) -> None:
            row = self._row(tx, sid, lock=True)
            if row.paused:
                row.paused = 0
                spec = schedules.spec_of(row)
                schedules.set_next(row, spec, spec.next_after(now))
            row.note = note if note is not None else row.note
            store.save(tx, row)

        self.runtime.committer.run(write)
        self.runtime.feed.wrote()

    def trigger_schedule(self, sid: str) -> str:
        """Fire ``sid`` now (also when paused), under its overlap policy; the run's id uses
        the trigger time. Says what happened ('started', 'skipped', 'buffered'; 'exists'
        when this instant already has its run)."""
        now = round(self.clock(), 3)
        def write(tx: Tx) -> str:
            row = self._row(tx, sid, lock=True)
            said = schedules.fire(tx, self.advancer, self.new_id, row, now, now)
            store.save(tx, row)
            return said

        outcome = self.runtime.committer.run(write, locked=True)
        self.runtime.feed.wrote()
        return outcome

    def backfill_schedule(self, sid: str, start: datetime | str | float,
                          end: datetime | str | float, overlap: str | None = None
                          ) -> dict[str, int]:
        """Fire ``sid`` for each of its fire times in ``[start, end)``, oldest first, under
        its overlap policy (or ``overlap``); fires that already ran are not repeated.
        Returns how many fires started, were skipped, buffered or had run before."""
        first, last = _backfill_range(start, end)
        if overlap is not None and overlap not in schedules.OVERLAP_POLICIES:
            raise BadInput(f"--overlap {overlap!r}: one of "
                           f"{', '.join(schedules.OVERLAP_POLICIES)}")
        now = self.clock()
        def write(tx: Tx) -> dict[str, int]:
            tally = {"started": 0, "skipped": 0, "buffered": 0, "exists": 0}
            row = self._row(tx, sid, lock=True)
            times = self._backfill_times(schedules.spec_of(row), first, last)
            for fire_time in times:
                tally[schedules.fire(tx, self.advancer, self.new_id, row, fire_time, now,
                                     overlap)] += 1
            store.save(tx, row)
            return tally

        tally = self.runtime.committer.run(write, locked=True)
        self.runtime.feed.wrote()
        return tally

    def backfill_preview(self, sid: str, start: datetime | str | float,
                         end: datetime | str | float) -> dict[str, Any]:
        """What ``backfill_schedule`` would cover, firing nothing: ``count`` (fire times
        in ``[start, end)``, counted up to ``MAX_BACKFILL + 1``), ``more`` (there are more
        than ``MAX_BACKFILL``: a backfill refuses the range), ``first`` and ``last`` (ISO
        fire times, None when there are none). Raises BadInput for a bad range, NotFound
        for an unknown schedule."""
        first, last = _backfill_range(start, end)
        with self.store.read() as tx:
            spec = schedules.spec_of(self._row(tx, sid))
        times = _fire_times(spec, first, last)
        return {"count": len(times), "more": len(times) > MAX_BACKFILL,
                "first": fire_iso(times[0]) if times else None,
                "last": fire_iso(times[-1]) if times else None}

    @staticmethod
    def _backfill_times(spec: Spec, first: float, last: float) -> list[float]:
        times = _fire_times(spec, first, last)
        if len(times) > MAX_BACKFILL:
            raise BadInput(f"the backfill covers more than {MAX_BACKFILL} fire times; "
                           "split it into shorter ranges")
        return times

    def delete_schedule(self, sid: str) -> None:
        """Delete ``sid``; the runs it started go on."""
        def write(tx: Tx) -> None:
            if not isinstance(sid, str) or not store.delete(tx, sid):
                raise NotFound(f"no schedule {sid!r} (`onward schedule list` shows them)")

        self.runtime.committer.run(write)
        self.runtime.feed.wrote()


def _backfill_range(start: datetime | str | float, end: datetime | str | float
                    ) -> tuple[float, float]:
    """A backfill's ``[start, end)`` as epoch seconds; BadInput unless end is later."""
    first, last = _instant(start, "--start"), _instant(end, "--end")
    if last <= first:
        raise BadInput("--end must be later than --start")
    return first, last


def _fire_times(spec: Spec, first: float, last: float) -> list[float]:
    """``spec``'s fire times in ``[first, last)``, oldest first, up to ``MAX_BACKFILL + 1``
    (one more than a backfill takes: enough to tell that a range is too long)."""
    times: list[float] = []
    for t in spec.fires(first, last):
        times.append(t)
        if len(times) > MAX_BACKFILL:
            break
    return times
