"""Business-day arithmetic for deadlines ("3 business days"), deterministic and local-free.

Weekends (Saturday, Sunday) are skipped, and so are the holidays a caller names as ISO
dates. There is no built-in holiday calendar: holidays differ by country and company, so
the flow that knows its calendar passes it in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta


def is_business_day(day: date, holidays: Iterable[str] = ()) -> bool:
    """True on Monday to Friday, unless ``day`` is one of ``holidays`` (ISO dates)."""
    return day.weekday() < 5 and day.isoformat() not in set(holidays)


def add_business_days(start: datetime, days: int, holidays: Iterable[str] = ()) -> datetime:
    """The moment ``days`` business days after ``start``, at the same time of day.

    Starting on a weekend counts from the next business day, so Saturday + 1 business
    day is Tuesday at the same time (Monday is the first day worked on it).
    """
    if days < 0:
        raise ValueError("days must be zero or more")
    off = set(holidays)
    moment = start
    while not is_business_day(moment.date(), off):
        moment += timedelta(days=1)
    counted = 0
    while counted < days:
        moment += timedelta(days=1)
        if is_business_day(moment.date(), off):
            counted += 1
    return moment
