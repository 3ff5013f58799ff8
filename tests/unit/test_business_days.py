"""Business-day deadlines: counted in a time zone's local dates, weekends and holidays
(ISO dates or a country's calendar) skipped, the local wall-clock time kept across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onward import BadInput
from onward.business import (
    BusinessDaysError,
    add_business_days,
    calendar,
    deadline_record,
    is_business_day,
)


def at(day: str, time: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}:00+00:00")


def local(tz: str, day: str, time: str = "10:00", fold: int = 0) -> datetime:
    """A local time. (Subtract two of one zone in UTC: Python subtracts wall times.)"""
    return datetime.fromisoformat(f"{day}T{time}:00").replace(tzinfo=ZoneInfo(tz), fold=fold)


# -- weekends and ISO-date holidays (counted in the start's own zone) -----------------------
@pytest.mark.parametrize(("start", "due"), [
    (at("2026-11-23"), at("2026-11-26")),                    # Monday -> Thursday
    (at("2026-11-25"), at("2026-11-30")),                    # Wednesday -> Monday
    (at("2026-11-27", "16:30"), at("2026-12-02", "16:30")),  # Friday -> Wednesday
    (at("2026-11-28", "09:00"), at("2026-12-03", "09:00")),  # Saturday: Mon is day one
    (at("2026-11-29", "23:59"), at("2026-12-03", "23:59")),  # Sunday: likewise
], ids=["monday", "wednesday", "friday", "saturday", "sunday"])
def test_three_business_days_skip_the_weekend(start: datetime, due: datetime) -> None:
    assert add_business_days(start, 3) == due


def test_a_holiday_is_skipped_like_a_weekend_day() -> None:
    christmas = ("2026-12-25",)  # a Friday
    assert add_business_days(at("2026-12-23"), 3, christmas) == at("2026-12-29")
    assert add_business_days(at("2026-12-23"), 3) == at("2026-12-28")


def test_starting_on_a_holiday_counts_from_the_next_business_day() -> None:
    # Friday 25 December is off, so Monday 28th is the first day worked on the claim.
    assert add_business_days(at("2026-12-25"), 3, ("2026-12-25",)) == at("2026-12-31")


def test_holidays_next_to_a_weekend_stretch_the_deadline() -> None:
    days_off = ("2026-12-24", "2026-12-25", "2026-12-28")  # Thu, Fri and the next Mon
    assert add_business_days(at("2026-12-23"), 3, days_off) == at("2026-12-31")


def test_zero_days_moves_a_weekend_start_to_monday_only() -> None:
    assert add_business_days(at("2026-11-25"), 0) == at("2026-11-25")
    assert add_business_days(at("2026-11-28"), 0) == at("2026-11-30")


def test_time_zone_is_kept() -> None:
    start = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    due = add_business_days(start, 3)
    assert due.tzinfo is UTC and due == datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


def test_is_business_day() -> None:
    assert is_business_day(at("2026-11-27").date())
    assert not is_business_day(at("2026-11-28").date())
    assert not is_business_day(at("2026-12-25").date(), ["2026-12-25"])
    assert not is_business_day(date(2026, 12, 25), "DE")


# -- counted in a named time zone -----------------------------------------------------------
def test_monday_morning_in_auckland_plus_three_is_thursday_morning_there() -> None:
    """The bug of issue 17: counted in UTC, Monday 08:00 in Auckland is still Sunday."""
    start = local("Pacific/Auckland", "2026-11-23", "08:00").astimezone(UTC)  # Sun 19:00 UTC
    due = add_business_days(start, 3, tz="Pacific/Auckland")
    assert due == local("Pacific/Auckland", "2026-11-26", "08:00")
    assert due.strftime("%A %H:%M") == "Thursday 08:00"
    utc_count = add_business_days(start, 3).astimezone(ZoneInfo("Pacific/Auckland"))
    assert utc_count.strftime("%A %H:%M") == "Friday 08:00"  # what UTC counting gave


@pytest.mark.parametrize(("tz", "start", "due", "hours"), [
    # last Sunday of March 2026 (29th): Berlin springs forward, the weekend is 1 h short
    ("Europe/Berlin", "2026-03-27", "2026-03-30", 71),
    # last Sunday of October 2026 (25th): Berlin falls back, the weekend is 1 h long
    ("Europe/Berlin", "2026-10-23", "2026-10-26", 73),
    # second Sunday of March 2026 (8th) and first Sunday of November (1st) in New York
    ("America/New_York", "2026-03-06", "2026-03-09", 71),
    ("America/New_York", "2026-10-30", "2026-11-02", 73),
    # Auckland springs forward on the last Sunday of September (27th in 2026)
    ("Pacific/Auckland", "2026-09-25", "2026-09-28", 71),
], ids=["berlin-spring", "berlin-autumn", "new-york-spring", "new-york-autumn", "auckland"])
def test_across_a_dst_change_the_local_time_is_kept_not_24_hours(
        tz: str, start: str, due: str, hours: int) -> None:
    begin = local(tz, start, "17:00")
    end = add_business_days(begin.astimezone(UTC), 1, tz=tz)  # Friday 17:00 -> Monday 17:00
    assert end == local(tz, due, "17:00") and end.strftime("%H:%M") == "17:00"
    assert end.astimezone(UTC) - begin.astimezone(UTC) == timedelta(hours=hours)


def test_a_time_in_a_dst_gap_on_the_end_day_moves_forward_by_the_gap() -> None:
    # Cairo springs forward at midnight on Friday 26 April 2024: 00:00-01:00 does not exist.
    start = local("Africa/Cairo", "2024-04-25", "00:30")  # Thursday, UTC+2
    end = add_business_days(start, 1, tz="Africa/Cairo")
    assert end == local("Africa/Cairo", "2024-04-26", "01:30")  # UTC+3
    assert end.isoformat() == "2024-04-26T01:30:00+03:00"
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=24)


def test_an_ambiguous_time_on_the_end_day_is_its_first_occurrence() -> None:
    # Cairo falls back at midnight after Thursday 31 October 2024: 23:00-24:00 occurs twice.
    start = local("Africa/Cairo", "2024-10-30", "23:30")  # Wednesday, UTC+3
    end = add_business_days(start, 1, tz="Africa/Cairo")
    assert end.isoformat() == "2024-10-31T23:30:00+03:00" and end.fold == 0
    # Zero days from the second 23:30 would be the first, in the past: the start instead.
    second = local("Africa/Cairo", "2024-10-31", "23:30", fold=1)
    assert add_business_days(second, 0, tz="Africa/Cairo").astimezone(UTC) == \
        second.astimezone(UTC)


# -- holidays from a country's calendar -----------------------------------------------------
def test_a_country_code_uses_that_countrys_public_holidays() -> None:
    start = local("Europe/Berlin", "2026-12-23")  # Wednesday; 25 and 26 Dec are off in DE
    assert add_business_days(start, 3, "DE", "Europe/Berlin") == \
        local("Europe/Berlin", "2026-12-29")
    # Christmas Eve is a working day in Germany, but a company may close: mix in a date.
    assert add_business_days(start, 3, ["DE", "2026-12-24"], "Europe/Berlin") == \
        local("Europe/Berlin", "2026-12-30")


@pytest.mark.parametrize("spec", ["US-CA", ("US", "CA"), ["us-ca"], [("US", "CA")]])
def test_a_subdivision_adds_its_own_holidays(spec: object) -> None:
    start = local("America/Los_Angeles", "2026-03-30", "09:00")  # Monday
    # Tuesday 31 March is Cesar Chavez Day in California, not a federal holiday.
    assert add_business_days(start, 1, spec, "America/Los_Angeles") == \
        local("America/Los_Angeles", "2026-04-01", "09:00")  # type: ignore[arg-type]
    assert add_business_days(start, 1, "US", "America/Los_Angeles") == \
        local("America/Los_Angeles", "2026-03-31", "09:00")


def test_the_calendar_is_normalised_for_the_record() -> None:
    assert calendar(("us", "ca")).spec == ["US-CA"]
    assert calendar(["2026-12-31", "DE", date(2026, 12, 24)]).spec == \
        ["DE", "2026-12-24", "2026-12-31"]
    assert calendar(()).spec == []


def test_the_record_names_the_deadline_the_days_skipped_and_the_calendar_version() -> None:
    start = local("Europe/Berlin", "2026-12-23")
    record = deadline_record(start, 3, "Europe/Berlin", "DE")
    assert record["deadline"] == "2026-12-29T09:00:00+00:00"
    assert record["local"] == "2026-12-29T10:00:00+01:00"
    assert record["skipped"] == ["2026-12-25"]  # the 26th is a Saturday anyway
    assert record["holidays"] == ["DE"] and record["tz"] == "Europe/Berlin"
    assert record["calendar"].startswith("holidays 0.")
    assert "calendar" not in deadline_record(start, 3, "UTC", ["2026-12-24"])


# -- bad input: one clear error naming the argument -----------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tz": "Mars/Olympus"}, "tz='Mars/Olympus'"),
    ({"tz": "Europe"}, "tz='Europe'"),
    ({"tz": ""}, "IANA time zone"),
    ({"holidays": "XX"}, "holidays='XX'"),
    ({"holidays": "US-ZZ"}, "holidays='US-ZZ'"),
    ({"holidays": ("DE", "FR", "IT")}, "one country calendar per call"),
    ({"holidays": ["2026-13-01"]}, "'2026-13-01' is not a date"),
    ({"holidays": [5]}, "neither an ISO date nor a country code"),
    ({"holidays": "12/24/2026"}, "neither an ISO date"),
    ({"days": -1}, "days=-1"),
    ({"days": 2.5}, "days=2.5"),
    ({"days": True}, "whole number"),
    ({"days": 10**6}, "from 0 to"),
])
def test_bad_arguments_are_refused_naming_them(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"days": 3, "tz": "UTC", "holidays": (), **kwargs}
    with pytest.raises(BusinessDaysError, match=message.replace("(", r"\(")) as caught:
        deadline_record(at("2026-11-25"), **args)  # type: ignore[arg-type]
    assert isinstance(caught.value, BadInput) and isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value) and str(caught.value).startswith("business_days")


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError, match="days"):
        add_business_days(at("2026-11-25"), -1)


# -- the rule, for any start, zone and holidays ---------------------------------------------
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Pacific/Auckland", "Africa/Cairo",
         "Australia/Lord_Howe", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"]


@settings(max_examples=150, deadline=None)
@given(moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 1),
                           timezones=st.just(UTC)),
       tz=st.sampled_from(ZONES), days=st.integers(0, 25),
       offs=st.sets(st.integers(0, 60), max_size=12))
def test_the_deadline_is_n_business_days_on_at_the_same_local_time(
        moment: datetime, tz: str, days: int, offs: set[int]) -> None:
    """The end is a business day; the closed span from the start's local date to the end's
    holds exactly n + 1 business days (the first one worked, then n more); the end keeps
    the local wall-clock time (moved forward only out of a DST gap) and is never earlier."""
    place = ZoneInfo(tz)
    start = moment.astimezone(place)
    holidays = [(start.date() + timedelta(days=n)).isoformat() for n in offs]
    end = add_business_days(moment, days, holidays, tz)
    off = calendar(holidays)
    assert end.tzinfo is place and off.is_business_day(end.date())
    span = (end.date() - start.date()).days
    worked = [start.date() + timedelta(days=i) for i in range(span + 1)]
    assert sum(off.is_business_day(d) for d in worked) == days + 1
    assert end.astimezone(UTC) >= moment
    wall = datetime.combine(end.date(), start.time().replace(fold=0), tzinfo=place)
    exists = wall.astimezone(UTC).astimezone(place).replace(tzinfo=None) == \
        wall.replace(tzinfo=None)
    if exists and (days or end.astimezone(UTC) != moment):
        assert end.time() == start.time().replace(fold=0) and end.fold == 0
    elif not exists:  # in a gap: the same instant as the wall time read before the change
        assert end.astimezone(UTC) == wall.astimezone(UTC) and end.time() > wall.time()
