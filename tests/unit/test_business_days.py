"""Business-day deadlines: weekends and named holidays are skipped, the time of day kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from onward.business import add_business_days, is_business_day


def at(day: str, time: str = "10:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}:00+00:00")


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


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError):
        add_business_days(at("2026-11-25"), -1)


def test_is_business_day() -> None:
    assert is_business_day(at("2026-11-27").date())
    assert not is_business_day(at("2026-11-28").date())
    assert not is_business_day(at("2026-12-25").date(), ["2026-12-25"])
