"""onward.convert: Python values to JSON and back by type hints, and errors naming the path.

Round trips go through real JSON text (what the store keeps), so a value that only
survives in memory would fail here.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from pathlib import Path
from typing import Any
from uuid import UUID

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onward.convert import bind_args, from_json, result_of, to_json
from onward.errors import PayloadError


class Colour(Enum):
    RED = "red"
    GREEN = "green"


class Priority(IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Line:
    sku: str
    qty: int
    price: Decimal
    colour: Colour
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Stamp:
    """Frozen, with slots and a default: msgspec builds it since 0.18.5 (the floor)."""

    by: str
    at: datetime = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Order:
    id: UUID
    placed: datetime
    due: date | None
    priority: Priority
    lines: list[Line]
    by_sku: dict[str, Line | None] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    window: tuple[time, timedelta] | None = None
    ratio: float = 0.0
    stamp: Stamp | None = None


def stored(value: Any) -> Any:
    """What reads back from the store: the JSON text of ``to_json``, decoded."""
    return json.loads(json.dumps(to_json(value, "value"), allow_nan=False))


TIMEZONES = st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30)),
                             timezone(timedelta(hours=-8))])
DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=4,
                       min_value=-10**9, max_value=10**9)
LINES = st.builds(Line, sku=st.text(max_size=8), qty=st.integers(-2**53, 2**53),
                  price=DECIMALS, colour=st.sampled_from(Colour),
                  note=st.none() | st.text(max_size=20))
ORDERS = st.builds(
    Order, id=st.uuids(), placed=st.datetimes(timezones=TIMEZONES),
    due=st.none() | st.dates(), priority=st.sampled_from(Priority),
    lines=st.lists(LINES, max_size=3),
    by_sku=st.dictionaries(st.text(max_size=5), st.none() | LINES, max_size=2),
    tags=st.sets(st.text(max_size=5), max_size=3),
    window=st.none() | st.tuples(st.times(), st.timedeltas(min_value=timedelta(0),
                                                            max_value=timedelta(days=9))),
    ratio=st.floats(allow_nan=False, allow_infinity=False),
    stamp=st.none() | st.builds(Stamp, by=st.text(max_size=5)))


@given(order=ORDERS)
@settings(max_examples=150, deadline=None)
def test_dataclasses_round_trip_through_json(order: Order) -> None:
    back = from_json(stored(order), Order, "order")
    assert back == order
    assert type(back.placed) is datetime and back.placed.tzinfo == order.placed.tzinfo
    assert all(type(line.colour) is Colour for line in back.lines)


def test_a_frozen_dataclass_takes_its_defaults() -> None:
    assert from_json({"by": "ana"}, Stamp, "stamp") == Stamp("ana")


@given(value=st.one_of(st.uuids(), st.dates(), DECIMALS, st.sampled_from(Colour),
                       st.datetimes(timezones=TIMEZONES)))
def test_scalars_round_trip_and_arrive_as_their_type(value: Any) -> None:
    kind = type(value)
    back = from_json(stored(value), kind, "value")
    assert back == value and type(back) is kind
    assert from_json(stored([value, None]), list[kind | None], "values") == [value, None]  # type: ignore[valid-type]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(value=JSON)
def test_plain_json_passes_as_it_is_without_a_hint(value: Any) -> None:
    assert to_json(value, "value") == value
    assert from_json(value, Any, "value") == value
    assert bind_args(lambda x, y: None, [value, 1], "args") == [value, 1]


def test_conversion_is_strict_in_the_json_sense() -> None:
    assert from_json(12, float, "amount") == 12.0  # a JSON integer is a number
    assert from_json(12.5, Decimal, "amount") == Decimal("12.5")
    assert from_json("2026-12-01T09:30:00Z", datetime, "when") == datetime(2026, 12, 1, 9, 30,
                                                                          tzinfo=UTC)
    assert from_json({"1": "a"}, dict[int, str], "keys") == {1: "a"}  # JSON keys are text
    for value, hint in [("12", int), ("12.5", float), (12, str), (1, bool), (True, int),
                        (1.5, int), ("2026-12-01", datetime), ("maybe", Colour)]:
        with pytest.raises(PayloadError, match=r"^what: .* at \$$"):
            from_json(value, hint, "what")


@given(bad=st.integers(min_value=0, max_value=4), count=st.integers(min_value=5, max_value=8))
def test_a_bad_nested_field_is_named_by_its_path(bad: int, count: int) -> None:
    lines = [{"sku": f"s{i}", "qty": 1, "price": "1.5", "colour": "red"}
             for i in range(count)]
    lines[bad]["qty"] = "one"
    order = {"id": str(UUID(int=1)), "placed": "2026-01-01T00:00:00", "due": None,
             "priority": 2, "lines": lines}
    with pytest.raises(PayloadError) as refused:
        bind_args(take_order, ["ok", order], "input of workflow w")
    assert str(refused.value) == ("input of workflow w, parameter order: Expected `int`, "
                                  f"got `str` at $[1].lines[{bad}].qty")


def take_order(label: str, order: Order, *extra: Priority) -> Order:
    return order


def test_bind_args_converts_by_parameter_hints() -> None:
    order = Order(UUID(int=3), datetime(2026, 1, 2), None, Priority.LOW, [])
    args = bind_args(take_order, ["x", stored(order), 2, 1], "args")
    assert args == ["x", order, Priority.HIGH, Priority.LOW]
    assert type(args[2]) is Priority
    assert result_of(take_order, stored(order), "result") == order


class Desk:
    def handle(self, order: Order) -> Line:
        raise NotImplementedError

    def untyped(self, order, other):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def test_methods_skip_self_bound_or_not() -> None:
    order = Order(UUID(int=4), datetime(2026, 1, 2), date(2026, 1, 9), Priority.HIGH, [])
    assert bind_args(Desk().handle, [stored(order)], "args") == [order]
    assert bind_args(Desk.handle, [stored(order)], "args") == [order]
    line = Line("a", 1, Decimal(2), Colour.GREEN)
    assert result_of(Desk().handle, stored(line), "result") == line
    raw = [stored(order), {"a": 1}]
    assert bind_args(Desk().untyped, raw, "args") == raw  # no hints: as stored


async def async_step(when: date) -> datetime:
    raise NotImplementedError


def test_an_async_function_converts_by_its_hints_too() -> None:
    assert bind_args(async_step, ["2026-03-04"], "args") == [date(2026, 3, 4)]
    assert result_of(async_step, "2026-03-04T05:06:07", "r") == datetime(2026, 3, 4, 5, 6, 7)


def test_unresolvable_or_unsupported_hints_pass_values_unchanged(
        caplog: pytest.LogCaptureFixture) -> None:
    def uses_missing(x: NoSuchType, when: date) -> None:  # type: ignore[name-defined]  # noqa: F821
        raise NotImplementedError

    def uses_path(x: Path, y: Line | Order) -> None:
        raise NotImplementedError

    with caplog.at_level(logging.WARNING, logger="onward.convert"):
        # the hint that resolves still converts
        assert bind_args(uses_missing, [{"a": 1}, "2026-01-02"], "args") == [{"a": 1},
                                                                             date(2026, 1, 2)]
    assert "NoSuchType" in caplog.records[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="onward.convert"):
        assert bind_args(uses_path, ["/tmp", {"sku": "a"}], "args") == ["/tmp", {"sku": "a"}]
        assert bind_args(uses_path, ["/tmp", {"sku": "a"}], "args") == ["/tmp", {"sku": "a"}]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "pass unconverted" in said[0]  # once per hint, not per call
    assert bind_args(uses_path, [Path("/tmp"), None], "args") == [Path("/tmp"), None]


# -- to JSON: errors name the path --------------------------------------------------------------

class Opaque:
    pass


@pytest.mark.parametrize(("value", "path", "why"), [
    ({"a": [1, Opaque()]}, "$.a[1]", "an object of type Opaque"),
    ([Line("a", 1, Decimal(1), Colour.RED, note=Opaque())], "$[0].note",  # type: ignore[arg-type]
     "an object of type Opaque"),
    ({"a": {"b c": math.nan}}, "$.a['b c']", "Out of range float"),
    ([b"raw"], "$[0]", "bytes"),
    ({"k": {(1, 2): 3}}, "$.k", "keys"),
    ({"text": "\ud800"}, "$.text", "UTF-8"),
])
def test_a_value_with_no_json_form_is_refused_naming_its_path(value: Any, path: str,
                                                              why: str) -> None:
    with pytest.raises(PayloadError) as refused:
        to_json(value, "the input")
    message = str(refused.value)
    assert message.startswith("the input is not JSON") or "UTF-8" in message
    assert why in message and "\n" not in message
    if "UTF-8" not in message:
        assert f"at {path}" in message, message


def test_sets_and_tuples_become_lists_and_come_back_by_hint() -> None:
    assert to_json({"s": {3}, "t": (1, 2)}, "v") == {"s": [3], "t": [1, 2]}
    assert from_json([1, 2], tuple[int, int], "v") == (1, 2)
    assert from_json([3, 3], frozenset[int], "v") == frozenset({3})


def test_the_size_limit_still_holds() -> None:
    with pytest.raises(PayloadError, match="the limit is"):
        to_json([Line("x" * (3 * 1024 * 1024), 1, Decimal(1), Colour.RED)], "big")


# -- pydantic --------------------------------------------------------------------------------

class Money(pydantic.BaseModel):
    amount: Decimal
    currency: Colour = Colour.RED


class Basket(pydantic.BaseModel):
    owner: UUID
    items: list[Money]
    line: Line | None = None


@given(amounts=st.lists(DECIMALS, max_size=4), owner=st.uuids())
def test_pydantic_models_round_trip_also_inside_dataclasses(amounts: list[Decimal],
                                                            owner: UUID) -> None:
    basket = Basket(owner=owner, items=[Money(amount=a) for a in amounts],
                    line=Line("a", 1, Decimal("0.5"), Colour.GREEN))
    assert from_json(stored(basket), Basket, "b") == basket
    wrapped = {"basket": basket}
    assert from_json(stored(wrapped), dict[str, Basket], "b") == wrapped


def test_a_bad_field_inside_a_pydantic_model_is_named_by_its_whole_path() -> None:
    good = {"owner": str(UUID(int=1)), "items": [{"amount": "1"}, {"amount": "2"}]}
    bad = {"owner": str(UUID(int=1)), "items": [{"amount": "1"}, {"amount": "two"}]}
    with pytest.raises(PayloadError) as refused:
        from_json([good, bad], list[Basket], "baskets")
    message = str(refused.value)
    assert message.startswith("baskets: ") and message.endswith(" at $[1].items[1].amount")
    assert "\n" not in message
