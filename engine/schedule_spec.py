"""When a schedule fires: cron expressions and intervals in a time zone, and jitter.

A cron expression has five fields (minute, hour, day of month, month, day of week) read in
the schedule's time zone; an interval (``30s``, ``5m``, ``1h/15m``: every hour at a quarter
past) counts from the Unix epoch, like Temporal's interval specs, so a time zone does not
move it. Fire times are epoch seconds in UTC. Daylight-saving time, as Temporal documents
it: a wall time that does not exist on a day (a gap) fires at the first valid instant after
it; a wall time that occurs twice (a fold) fires once, at its first occurrence.

Jitter delays a fire by a fraction of the jitter derived from a hash of (schedule, fire
time), so every worker and every restart computes the same delay. The small cron parser
here (rather than a library) lets every error name the field and the character at fault.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import BadInput

__all__ = ["CronSpec", "IntervalSpec", "Spec", "fire_iso", "jitter_delay", "parse_cron",
           "parse_duration", "parse_every", "parse_spec", "zone"]

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12),
           ("day-of-week", 0, 7))
_NAMES = {
    3: {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(),
                                   1)},
    4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@hourly": "0 * * * *"}
_HORIZON_DAYS = 366 * 8 + 1
"""How far ahead a cron expression is searched: every calendar combination (29 February on
a given weekday included) recurs within this many days."""
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str, what: str) -> float:
    """Seconds in a duration such as ``30s``, ``5m``, ``1h30m``, ``100ms`` or ``1d``.

    Raises BadInput naming ``what`` and the character where the text stops making sense."""
    if not isinstance(text, str) or not text.strip():
        raise BadInput(f"{what}: empty duration (write e.g. 30s, 5m, 1h, 1d)")
    text = text.strip()
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if match is None:
            number = _NUMBER.match(text, pos)
            where = number.end() if number else pos  # a number without its unit: the unit
            raise BadInput(f"{what} {text!r}: not a duration at character {where + 1} "
                           "(write e.g. 100ms, 30s, 5m, 1h30m, 1d)")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total


def zone(name: str) -> ZoneInfo:
    """The time zone named ``name`` (IANA, e.g. Europe/Berlin); BadInput if unknown."""
    try:
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadInput(f"--tz {name!r}: unknown time zone (an IANA name such as UTC or "
                       "Europe/Berlin)") from None


def fire_iso(ts: float) -> str:
    """A fire time as it appears in run ids: ISO UTC with ``Z``, milliseconds when any."""
    ms = round(ts * 1000)
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def jitter_delay(schedule_id: str, fire_time: float, jitter: float) -> float:
    """Seconds, in ``[0, jitter)``, by which the fire of ``schedule_id`` at ``fire_time`` is
    delayed: the same on every worker and after every restart."""
    if jitter <= 0:
        return 0.0
    digest = hashlib.sha256(f"{schedule_id}\0{fire_iso(fire_time)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 * jitter


class Spec:
    """When a schedule fires (a cron expression or an interval)."""

    def next_after(self, t: float) -> float | None:
        """The first fire time strictly after ``t`` (None: never again)."""
        raise NotImplementedError

    def describe(self) -> dict[str, str]:
        """The spec as ``describe`` shows it."""
        raise NotImplementedError

    def fires(self, start: float, end: float) -> Iterator[float]:
        """The fire times in ``[start, end)``, in order."""
        t = self.next_after(start - 0.0005)
        while t is not None and t < end:
            yield t
            t = self.next_after(t)

    def skip_before(self, t: float, horizon: float) -> tuple[int, float | None]:
        """From fire time ``t``, how many fire times are before ``horizon`` and the first
        one at or after it."""
        count = 0
        current: float | None = t
        while current is not None and current < horizon:
            count += 1
            current = self.next_after(current)
        return count, current


@dataclass(frozen=True)
class IntervalSpec(Spec):
    """Every ``every_ms`` milliseconds since the epoch, shifted by ``offset_ms``."""

    every_ms: int
    offset_ms: int
    text: str

    def next_after(self, t: float) -> float | None:
        """The first fire time strictly after ``t``."""
        k = math.floor((t * 1000 + 1e-6 - self.offset_ms) / self.every_ms) + 1
        return (k * self.every_ms + self.offset_ms) / 1000.0

    def describe(self) -> dict[str, str]:
        """``{"every": ...}``, as written."""
        return {"every": self.text}

    def skip_before(self, t: float, horizon: float) -> tuple[int, float | None]:
        """As ``Spec.skip_before``, by arithmetic."""
        if t >= horizon:
            return 0, t
        k = math.ceil((horizon * 1000 - 1e-6 - self.offset_ms) / self.every_ms)
        first = (k * self.every_ms + self.offset_ms) / 1000.0
        return round((first - t) * 1000) // self.every_ms, first


@dataclass(frozen=True)
class CronSpec(Spec):
    """A five-field cron expression read in time zone ``tz``."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool
    tz: ZoneInfo

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow  # both restricted: either matches, as in every cron

    def _wall_times_after(self, after: datetime) -> Iterator[datetime]:
        day, first = after.date(), (after.hour, after.minute)
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                for h in self.hours:
                    if day == after.date() and h < first[0]:
                        continue
                    for m in self.minutes:
                        if day == after.date() and (h, m) <= first:
                            continue  # not after ``after`` (its seconds are below a minute)
                        yield datetime(day.year, day.month, day.day, h, m)
            day += timedelta(days=1)

    def _instant(self, wall: datetime) -> float:
        """The UTC instant of a wall time: its first occurrence in a fold; in a gap, the
        first valid instant after it (the end of the gap)."""
        first = wall.replace(tzinfo=self.tz, fold=0)
        utc = first.astimezone(UTC)
        if utc.astimezone(self.tz).replace(tzinfo=None) == wall:
            return utc.timestamp()
        # a gap: fold=0 reads the wall time with the offset before the transition (an
        # instant after it), fold=1 with the offset after (an instant before it)
        lo = int(wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC).timestamp())
        hi = int(utc.timestamp())
        before = datetime.fromtimestamp(lo, self.tz).utcoffset()
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self.tz).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return float(hi)

    def next_after(self, t: float) -> float | None:
        """The first fire time strictly after ``t``."""
        local = datetime.fromtimestamp(t, self.tz).replace(tzinfo=None)
        for wall in self._wall_times_after(local):
            instant = self._instant(wall)
            if instant > t + 1e-6:
                return instant
        return None

    def describe(self) -> dict[str, str]:
        """``{"cron": ...}``, as written."""
        return {"cron": self.text}


def _field_values(text: str, index: int, expr: str, start: int) -> tuple[set[int], bool]:
    name, low, high = _FIELDS[index]
    names = _NAMES.get(index, {})

    def fail(offset: int, why: str) -> BadInput:
        return BadInput(f"cron {expr!r}: {name} field {text!r} (field {index + 1}, "
                        f"character {start + offset + 1}): {why}")

    def number(part: str, offset: int) -> int:
        value = names.get(part.lower()) if names else None
        if value is None:
            if not part.isdigit() or not part.isascii():
                raise fail(offset, f"{part!r} is not a number"
                           + (" or a name" if names else ""))
            value = int(part)
        if not low <= value <= high:
            raise fail(offset, f"{value} is outside {low}-{high}")
        return value

    values: set[int] = set()
    offset = 0
    for item in text.split(","):
        if not item:
            raise fail(offset, "an empty list item")
        base, _, step_text = item.partition("/")
        step = 1
        if "/" in item:
            step_offset = offset + len(base) + 1
            if not step_text.isdigit() or not step_text.isascii() or int(step_text) == 0:
                raise fail(step_offset, f"step {step_text!r} is not a positive number")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = number(a, offset), number(b, offset + len(a) + 1)
            if first > last:
                raise fail(offset, f"range {base!r} runs backwards")
        else:
            first = number(base, offset)
            last = high if "/" in item else first
        values.update(range(first, last + 1, step))
        offset += len(item) + 1
    return values, text.startswith("*")


def parse_cron(expr: str, tz: ZoneInfo) -> CronSpec:
    """A cron expression (five fields, names such as ``mon`` and ``jan``, ``@daily``-style
    macros) in ``tz``. Raises BadInput naming the field and character at fault."""
    if not isinstance(expr, str):
        raise BadInput(f"--cron {expr!r}: a cron expression is text")
    text = _MACROS.get(expr.strip().lower(), expr)
    if text.startswith("@"):
        raise BadInput(f"cron {expr!r}: unknown macro (known: {', '.join(_MACROS)})")
    fields = [(m.group(), m.start()) for m in re.finditer(r"\S+", text)]
    if len(fields) != 5:
        raise BadInput(f"cron {expr!r}: {len(fields)} fields, expected 5 (minute hour "
                       "day-of-month month day-of-week)")
    parsed = [_field_values(f, i, text, pos) for i, (f, pos) in enumerate(fields)]
    weekdays = {d % 7 for d in parsed[4][0]}  # 7 is Sunday too
    spec = CronSpec(expr.strip(), tuple(sorted(parsed[0][0])), tuple(sorted(parsed[1][0])),
                    frozenset(parsed[2][0]), frozenset(parsed[3][0]), frozenset(weekdays),
                    parsed[2][1], parsed[4][1], tz)
    if spec.next_after(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) is None:
        raise BadInput(f"cron {expr!r}: never fires (no day matches its day and month)")
    return spec


def parse_every(text: str) -> IntervalSpec:
    """An interval ``DURATION`` or ``DURATION/OFFSET`` (offset from the epoch-aligned
    boundary, smaller than the interval). Raises BadInput naming the bad part."""
    if not isinstance(text, str):
        raise BadInput(f"--every {text!r}: an interval is text such as 30s or 1h/15m")
    every_text, _, offset_text = text.strip().partition("/")
    every = round(parse_duration(every_text, "--every") * 1000)
    if every < 1:
        raise BadInput(f"--every {text!r}: the interval must be at least 1ms")
    offset = round(parse_duration(offset_text, "--every offset") * 1000) if offset_text else 0
    if offset >= every:
        raise BadInput(f"--every {text!r}: the offset {offset_text} must be shorter than "
                       f"the interval {every_text}")
    return IntervalSpec(every, offset, text.strip())


def parse_spec(cron: str | None, every: str | float | timedelta | None, tz: str) -> Spec:
    """The spec of a schedule: exactly one of ``cron`` and ``every`` (text, seconds or a
    timedelta), cron read in time zone ``tz``."""
    zone_info = zone(tz)
    if (cron is None) == (every is None):
        raise BadInput("a schedule needs exactly one of --cron and --every")
    if cron is not None:
        return parse_cron(cron, zone_info)
    if isinstance(every, timedelta):
        every = every.total_seconds()
    if isinstance(every, int | float) and not isinstance(every, bool):
        ms = round(every * 1000)
        return parse_every(f"{ms}ms" if ms % 1000 else f"{ms // 1000}s")
    assert every is not None
    return parse_every(every)  # type: ignore[arg-type]
