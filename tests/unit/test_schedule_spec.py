"""Schedule specs: the cron parser (property-based), intervals, time zones across real DST
transition days, durations and jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onward import BadInput
from onward.schedule_spec import (
    fire_iso,
    jitter_delay,
    parse_cron,
    parse_duration,
    parse_every,
    parse_spec,
)

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
ZONES = [ZoneInfo("UTC"), BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe")]
FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def fires(spec_text: str, tz: ZoneInfo, start: str, count: int) -> list[str]:
    spec = parse_cron(spec_text, tz)
    t, out = at(start), []
    for _ in range(count):
        nxt = spec.next_after(t)
        assert nxt is not None
        out.append(fire_iso(nxt))
        t = nxt
    return out


# ------------------------------------------------------------------ DST on real days
def test_a_time_in_the_spring_gap_fires_at_the_first_valid_instant_after_it() -> None:
    # Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 does not exist
    assert fires("30 2 * * *", BERLIN, "2026-03-28T12:00:00+00:00", 3) == [
        "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
    # New York 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00Z)
    assert fires("30 2 * * *", NEW_YORK, "2026-03-07T12:00:00+00:00", 2) == [
        "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]


def test_several_times_in_one_gap_fire_once_at_its_end() -> None:
    got = fires("0,15,30,45 2,3 * * *", BERLIN, "2026-03-29T00:00:00+00:00", 4)
    assert got == ["2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z",
                   "2026-03-29T01:45:00Z"]  # 02:xx all map to 03:00; then 03:15, 03:30 …


def test_a_time_in_the_autumn_fold_fires_once_at_its_first_occurrence() -> None:
    # Berlin 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice
    assert fires("30 2 * * *", BERLIN, "2026-10-24T12:00:00+00:00", 2) == [
        "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    # New York 2026-11-01: 01:30 EDT (05:30Z) and 01:30 EST (06:30Z); only the first
    assert fires("30 1 * * *", NEW_YORK, "2026-10-31T12:00:00+00:00", 2) == [
        "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]


def test_an_hourly_cron_skips_the_repeated_hour_of_a_fold() -> None:
    got = fires("0 * * * *", NEW_YORK, "2026-11-01T03:30:00+00:00", 4)
    # 00:00 EDT, 01:00 EDT (first occurrence), then 02:00 EST: 01:00 EST does not fire again
    assert got == ["2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z",
                   "2026-11-01T08:00:00Z"]


def test_intervals_count_from_the_epoch_whatever_the_zone() -> None:
    spec = parse_spec(None, "1h/15m", "Europe/Berlin")
    t = at("2026-03-29T00:20:00+00:00")
    got = []
    for _ in range(3):
        t = spec.next_after(t)  # type: ignore[assignment]
        got.append(fire_iso(t))
    assert got == ["2026-03-29T01:15:00Z", "2026-03-29T02:15:00Z", "2026-03-29T03:15:00Z"]
    assert fire_iso(parse_every("100ms").next_after(1.05) or 0) == "1970-01-01T00:00:01.100Z"


# ------------------------------------------------------------------ the parser, by property
def _field(index: int) -> st.SearchStrategy[str]:
    low, high = LIMITS[index]
    number = st.integers(low, high)
    single = number.map(str)
    span = st.tuples(number, number).map(lambda p: f"{min(p)}-{max(p)}")
    step = st.tuples(st.sampled_from(["*", ""]), number, st.integers(1, high)).map(
        lambda p: f"{p[0] or p[1]}/{p[2]}")
    item = st.one_of(single, span, step)
    return st.one_of(st.just("*"), st.lists(item, min_size=1, max_size=3).map(",".join))


CRONS = st.tuples(*(_field(i) for i in range(5))).map(" ".join)


def _brute(expr: str) -> list[set[int]]:
    """The values each field allows, computed independently of the parser."""
    out = []
    for (low, high), text in zip(LIMITS, expr.split(), strict=True):
        values: set[int] = set()
        for item in text.split(","):
            base, _, step = item.partition("/")
            if base == "*":
                a, b = low, high
            elif "-" in base:
                a, b = (int(x) for x in base.split("-"))
            else:
                a = int(base)
                b = high if step else a
            values.update(range(a, b + 1, int(step or 1)))
        out.append(values)
    out[4] = {d % 7 for d in out[4]}
    return out


@given(CRONS, st.integers(0, 40 * 365 * 86400))
@settings(max_examples=150, deadline=None)
def test_valid_expressions_round_trip_and_fire_only_at_matching_minutes(
        expr: str, offset: int) -> None:
    try:
        spec = parse_cron(expr, ZoneInfo("UTC"))
    except BadInput as err:
        assert "never fires" in str(err)  # e.g. 31 in a month of 30 days only
        return
    assert parse_cron(spec.describe()["cron"], ZoneInfo("UTC")) == spec
    minutes, hours, days, months, weekdays = _brute(expr)
    assert set(spec.minutes) == minutes and set(spec.hours) == hours
    assert spec.days == days and spec.months == months and spec.weekdays == weekdays
    start = at("2000-01-01T00:00:00+00:00") + offset
    t = spec.next_after(start)
    assert t is not None and t > start
    moment = datetime.fromtimestamp(t, UTC)
    assert moment.minute in minutes and moment.hour in hours and moment.month in months
    dom, dow = moment.day in days, (moment.isoweekday() % 7) in weekdays
    star_dom, star_dow = expr.split()[2].startswith("*"), expr.split()[4].startswith("*")
    assert (dom and dow) if (star_dom or star_dow) else (dom or dow)
    # nothing matching is passed over between start and t (checked minute by minute
    # when the gap is short)
    if t - start < 3 * 86400:
        m = datetime.fromtimestamp(start, UTC).replace(second=0, microsecond=0)
        while m.timestamp() < t:
            if m.timestamp() > start and m.minute in minutes and m.hour in hours and \
                    m.month in months:
                d, w = m.day in days, (m.isoweekday() % 7) in weekdays
                assert not ((d and w) if (star_dom or star_dow) else (d or w)), m
            m += timedelta(minutes=1)


@given(CRONS, st.integers(0, 30 * 365 * 86400), st.sampled_from(ZONES))
@settings(max_examples=150, deadline=None)
def test_in_any_zone_fires_increase_and_each_matches_or_ends_a_gap(
        expr: str, offset: int, tz: ZoneInfo) -> None:
    try:
        spec = parse_cron(expr, tz)
    except BadInput:
        return
    minutes, hours, _, months, _ = _brute(expr)
    t = at("2000-01-01T00:00:00+00:00") + offset
    for _ in range(5):
        nxt = spec.next_after(t)
        assert nxt is not None and nxt > t
        local = datetime.fromtimestamp(nxt, tz)
        matches = local.minute in minutes and local.hour in hours and local.month in months
        gap_end = datetime.fromtimestamp(nxt - 1, tz).utcoffset() != local.utcoffset()
        assert matches or gap_end, (expr, local)
        assert local.fold == 0  # never the second occurrence of a wall time
        t = nxt


BAD_TOKENS = st.sampled_from(["99", "x", "1-", "-3", "*/0", "5-2", ",", "1,,2", "a/b", "7/x"])


@given(CRONS, st.integers(0, 4), BAD_TOKENS)
@settings(max_examples=150, deadline=None)
def test_invalid_fields_are_refused_naming_the_field_and_character(
        expr: str, index: int, bad: str) -> None:
    parts = expr.split()
    parts[index] = bad if not (index == 4 and bad == "7/x") else "9"
    text = " ".join(parts)
    with pytest.raises(BadInput) as caught:
        parse_cron(text, ZoneInfo("UTC"))
    message = str(caught.value)
    assert f"{FIELDS[index]} field" in message, message
    start = sum(len(p) + 1 for p in parts[:index])
    character = int(message.split("character ")[1].split(")")[0])
    assert start < character <= start + len(parts[index]) + 1, message


@pytest.mark.parametrize("bad", ["", "* * * *", "* * * * * *", "@sometimes", "0 0 30 2 *"])
def test_malformed_expressions_say_what_is_wrong(bad: str) -> None:
    with pytest.raises(BadInput, match="cron"):
        parse_cron(bad, ZoneInfo("UTC"))


def test_names_macros_and_sunday_as_seven() -> None:
    assert parse_cron("0 9 * jan-mar mon-fri", BERLIN).weekdays == frozenset({1, 2, 3, 4, 5})
    assert parse_cron("@daily", BERLIN).describe() == {"cron": "@daily"}
    assert parse_cron("0 0 * * 7", BERLIN).weekdays == frozenset({0})


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["ms", "s", "m", "h", "d"])),
                min_size=1, max_size=3))
def test_durations_add_up(parts: list[tuple[int, str]]) -> None:
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_duration(text, "--every") == pytest.approx(sum(n * unit[u] for n, u in parts))


@pytest.mark.parametrize(("text", "where"),
                         [("5x", 2), ("1h5", 4), ("m", 1), ("1h 5m", 3), ("x5m", 1)])
def test_bad_durations_name_the_character(text: str, where: int) -> None:
    with pytest.raises(BadInput, match=f"at character {where}"):
        parse_duration(text, "--every")


@pytest.mark.parametrize("bad", ["0s", "1h/2h", "1h/x", "/5m"])
def test_bad_intervals_are_refused(bad: str) -> None:
    with pytest.raises(BadInput, match="--every"):
        parse_every(bad)


def test_unknown_zone_and_missing_or_double_spec() -> None:
    with pytest.raises(BadInput, match="Mars/Base"):
        parse_spec("* * * * *", None, "Mars/Base")
    with pytest.raises(BadInput, match="exactly one"):
        parse_spec(None, None, "UTC")
    with pytest.raises(BadInput, match="exactly one"):
        parse_spec("* * * * *", "5m", "UTC")


# ------------------------------------------------------------------ jitter
@given(st.text(min_size=1, max_size=20), st.integers(0, 2**40), st.floats(0.001, 3600))
def test_jitter_is_deterministic_and_within_its_bound(sid: str, ms: int, jitter: float) -> None:
    t = ms / 1000
    delay = jitter_delay(sid, t, jitter)
    assert 0 <= delay < jitter
    assert delay == jitter_delay(sid, t, jitter)  # a restart computes the same delay


def test_jitter_spreads_fires() -> None:
    delays = {round(jitter_delay("s", 60.0 * k, 60.0), 3) for k in range(50)}
    assert len(delays) > 40 and jitter_delay("s", 60.0, 0) == 0.0


@given(st.text(max_size=30), st.one_of(st.none(), st.text(max_size=12)), st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_any_text_is_a_spec_or_a_bad_input(cron: str, every: str | None, tz: str) -> None:
    try:
        parse_spec(cron if every is None else None, every, tz or "UTC")
    except BadInput as err:
        assert "\n" not in str(err)  # one line
    try:
        parse_duration(tz, "--jitter")
    except BadInput:
        pass
