"""Business-day deadlines ("3 business days"): counted in the local dates of a time zone.

Weekends (Saturday, Sunday) are skipped, and so are holidays: ISO dates the caller names,
and/or one country's public holidays (``"DE"``, ``"US-CA"`` or ``("US", "CA")`` for a
subdivision) resolved by the ``holidays`` package. The deadline falls at the same local
wall-clock time as the start, so across a DST change it is not a multiple of 24 hours.

Two local times have no single answer, and zoneinfo's ``fold=0`` settles both: a time that
does not exist on the end day (a spring-forward gap, 02:30 in Berlin on the last Sunday of
March) moves forward by the gap (03:30 CEST), and a time that occurs twice (the autumn
fall-back) is the first occurrence (the one still on summer time).

Workflow code reaches this through ``workflow.business_days``, which records the computed
deadline in history (:func:`deadline_record`): a replay reads it back and never recomputes,
so a newer holiday calendar cannot move the deadline of a run already under way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from importlib import metadata
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import BadInput

MAX_DAYS = 10_000
"""The most business days one deadline may count (about 38 years)."""

HolidaySpec = str | tuple[str, str] | date
"""One holiday entry: an ISO date, a country code ("DE", "US-CA") or a (country, subdivision)."""

Holidays = str | Iterable[HolidaySpec]
"""What ``holidays=`` accepts: one entry, or several (ISO dates and at most one calendar)."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CODE = re.compile(r"([A-Za-z]{2,3})(?:-([A-Za-z0-9]{1,5}))?")


class BusinessDaysError(BadInput, ValueError):
    """Bad arguments to a business-day calculation (a ValueError as well as BadInput)."""


class _DateSet(Protocol):
    def __contains__(self, day: object) -> bool: ...


@dataclass(frozen=True)
class Calendar:
    """The days off besides weekends: named dates, plus one country's public holidays."""

    dates: frozenset[date] = frozenset()
    country: str | None = None
    subdiv: str | None = None
    public: _DateSet | None = field(default=None, compare=False)

    @property
    def spec(self) -> list[str]:
        """The calendar as given, normalised: the country code first, then the ISO dates."""
        code = [f"{self.country}-{self.subdiv}" if self.subdiv else self.country] \
            if self.country else []
        return code + sorted(day.isoformat() for day in self.dates)

    def is_holiday(self, day: date) -> bool:
        """True if ``day`` is one of the named dates or a public holiday of the country."""
        return day in self.dates or (self.public is not None and day in self.public)

    def is_business_day(self, day: date) -> bool:
        """True on Monday to Friday, unless ``day`` is a holiday."""
        return day.weekday() < 5 and not self.is_holiday(day)


def zone(tz: object, where: str = "business_days") -> ZoneInfo:
    """The IANA time zone named ``tz``; ``BusinessDaysError`` naming the argument if unknown."""
    if not isinstance(tz, str) or not tz:
        raise BusinessDaysError(f"{where}(tz={tz!r:.60}): give an IANA time zone name "
                                "such as 'Europe/Berlin'")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:  # OSError: 'Europe'
        raise BusinessDaysError(f"{where}(tz={tz!r:.60}): not a known IANA time zone "
                                "(e.g. 'Europe/Berlin', 'America/New_York', 'UTC')") from err


def calendar(holidays: Holidays | Calendar, where: str = "business_days") -> Calendar:
    """Parse ``holidays=``: ISO dates, and at most one country calendar.

    A country is ``"DE"``, a subdivision ``"US-CA"``, or ``("US", "CA")`` — also as the
    whole argument, so ``holidays=("US", "CA")`` is California, not the USA and Canada:
    one call counts one country's calendar (plus any dates). Raises ``BusinessDaysError``.
    """
    if isinstance(holidays, Calendar):
        return holidays
    if isinstance(holidays, (str, date)):
        items: list[Any] = [holidays]
    elif isinstance(holidays, Iterable) and not isinstance(holidays, (bytes, dict)):
        items = list(holidays)
    else:
        raise BusinessDaysError(f"{where}(holidays={holidays!r:.60}): give ISO dates and/or "
                                "a country code such as 'DE' or 'US-CA'")
    dates: set[date] = set()
    codes: list[tuple[str, str | None]] = []
    for item in items:
        if isinstance(item, date) and not isinstance(item, datetime):
            dates.add(item)
        elif isinstance(item, str) and _ISO_DATE.fullmatch(item):
            dates.add(_iso_date(item, where))
        elif isinstance(item, str):
            codes.append(_code(item, where))
        elif isinstance(item, (tuple, list)) and len(item) == 2 \
                and all(isinstance(part, str) for part in item):
            codes.append((_code(item[0], where)[0], _code(item[1], where)[0]))
        else:
            raise BusinessDaysError(f"{where}(holidays=...): {item!r:.60} is neither an ISO "
                                    "date nor a country code")
    if len(codes) == 2 and codes[0][1] is None and codes[1][1] is None:
        codes = [(codes[0][0], codes[1][0])]  # ("US", "CA"): a country and its subdivision
    if len(codes) > 1:
        named = ", ".join(f"{c}-{s}" if s else c for c, s in codes)
        raise BusinessDaysError(f"{where}(holidays=...): one country calendar per call, "
                                f"got {named}")
    if not codes:
        return Calendar(frozenset(dates))
    country, subdiv = codes[0]
    return Calendar(frozenset(dates), country, subdiv, _public_holidays(country, subdiv, where))


def _iso_date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise BusinessDaysError(f"{where}(holidays=...): {text!r} is not a date") from err


def _code(text: str, where: str) -> tuple[str, str | None]:
    match = _CODE.fullmatch(text.strip())
    if match is None:
        raise BusinessDaysError(f"{where}(holidays=...): {text!r:.60} is neither an ISO date "
                                "(YYYY-MM-DD) nor a country code such as 'DE' or 'US-CA'")
    country, subdiv = match.groups()
    return country.upper(), subdiv.upper() if subdiv else None


def _public_holidays(country: str, subdiv: str | None, where: str) -> _DateSet:
    """The ``holidays`` package's calendar (years filled in as they are asked about)."""
    import holidays as holiday_calendars  # noqa: PLC0415 - only runs that name a country

    try:
        found: _DateSet = holiday_calendars.country_holidays(country, subdiv=subdiv)
    except (NotImplementedError, KeyError, ValueError) as err:
        code = f"{country}-{subdiv}" if subdiv else country
        raise BusinessDaysError(f"{where}(holidays={code!r}): no such holiday calendar in "
                                f"holidays {calendar_version()} ({err})") from err
    return found


def calendar_version() -> str:
    """The installed version of the ``holidays`` package (recorded with each deadline)."""
    try:
        return metadata.version("holidays")
    except metadata.PackageNotFoundError:
        return "not installed"


def is_business_day(day: date, holidays: Holidays | Calendar = ()) -> bool:
    """True on Monday to Friday, unless ``day`` is one of ``holidays``."""
    return calendar(holidays).is_business_day(day)


def _check_days(days: object, where: str) -> int:
    if isinstance(days, bool) or not isinstance(days, int):
        raise BusinessDaysError(f"{where}(days={days!r:.60}): must be a whole number")
    if not 0 <= days <= MAX_DAYS:
        raise BusinessDaysError(f"{where}(days={days}): must be from 0 to {MAX_DAYS}")
    return days


def add_business_days(start: datetime, days: int, holidays: Holidays | Calendar = (),
                      tz: str | None = None, *, where: str = "business_days") -> datetime:
    """The moment ``days`` business days after ``start``, at the same local time of day.

    Days are counted in the local dates of ``tz`` (an IANA name; by default the zone
    ``start`` is in). Starting on a weekend or holiday counts from the next business day,
    so Saturday + 1 business day is Tuesday at the same time (Monday is the first day
    worked on it). The result is in ``tz`` (or ``start``'s zone); see the module docstring
    for local times in a DST gap or overlap. It is never before ``start`` (which the first
    occurrence of an ambiguous time could be, for 0 days).
    """
    count = _check_days(days, where)
    off = calendar(holidays, where)
    if start.tzinfo is None:
        raise BusinessDaysError(f"{where}: the start {start.isoformat()} has no time zone")
    place: tzinfo = zone(tz, where) if tz is not None else start.tzinfo
    local = start.astimezone(place)
    day = local.date()
    while not off.is_business_day(day):
        day += timedelta(days=1)
    counted = 0
    while counted < count:
        day += timedelta(days=1)
        if off.is_business_day(day):
            counted += 1
    wall = local.time().replace(tzinfo=None, fold=0)  # an ambiguous end: the first one
    end = datetime.combine(day, wall, tzinfo=place).astimezone(UTC).astimezone(place)
    # 0 days from the second 01:30 of a fall-back night: now. (Compared in UTC: datetimes
    # in one zone compare by wall time, ignoring fold.)
    return end if end.astimezone(UTC) >= start.astimezone(UTC) else local


def deadline_record(start: datetime, days: int, tz: str = "UTC",
                    holidays: Holidays = (), *, where: str = "business_days"
                    ) -> dict[str, Any]:
    """The business-day deadline from ``start`` as recorded in history (JSON values).

    ``deadline`` is the moment (ISO, UTC); ``skipped`` the holidays that fell on weekdays
    between the start and the deadline; ``calendar`` the ``holidays`` version used when a
    country was named. Raises ``BusinessDaysError`` on bad arguments.
    """
    off = calendar(holidays, where)
    end = add_business_days(start, days, off, tz, where=where)
    first = start.astimezone(end.tzinfo).date()
    span = (first + timedelta(days=i) for i in range((end.date() - first).days + 1))
    record: dict[str, Any] = {
        "deadline": end.astimezone(UTC).isoformat(), "local": end.isoformat(),
        "days": days, "tz": tz, "holidays": off.spec,
        "skipped": [d.isoformat() for d in span if d.weekday() < 5 and off.is_holiday(d)],
    }
    if off.country:
        record["calendar"] = f"holidays {calendar_version()}"
    return record
