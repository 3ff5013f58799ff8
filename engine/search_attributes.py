"""Search attributes: their types, the checks on their names and values, and storing them.

An attribute name has one type across the whole store, fixed by the first value ever
stored under it: ``keyword`` (str), ``number`` (int or float), ``bool``, ``datetime`` (an
aware ``datetime`` or an ISO-8601 string with an offset) or ``keyword_list`` (a list of
str). A string that reads as an ISO datetime with an offset types a new name as
``datetime``; under a name already typed ``keyword`` it is a keyword. A value of another
type is refused (``SearchAttributeTypeError``, a BadInput) and nothing is written.

Built-in field names (``BUILTIN``) are refused as attribute names, except ``ScheduleId``
from Python code calling ``Engine.start`` (the schedule code sets it on the runs it fires);
the CLI's ``--search-attr`` and ``workflow.upsert_search_attributes`` refuse it too.
A value of None in an upsert removes the attribute.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .errors import BadInput
from .store import search_attrs
from .store.base import Tx

TYPES = ("keyword", "number", "bool", "datetime", "keyword_list")
"""The types an attribute can have."""

BUILTIN = ("WorkflowId", "RunId", "WorkflowType", "ExecutionStatus", "StartTime",
           "CloseTime", "Stuck", "Paused", "Retrying", "WaitingOnPerson", "TaskAssignee",
           "ScheduleId")
"""Fields every run has; queries use them beside the attributes."""

SYSTEM_SET = frozenset({"ScheduleId"})
"""Built-in fields stored as attributes, set by engine code through ``Engine.start``."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}\Z")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})\Z")
MAX_LIST = 100


class SearchAttributeTypeError(BadInput):
    """A value whose type differs from the one its attribute name already has."""


def parse_datetime(text: str) -> datetime | None:
    """An aware datetime from an ISO-8601 string with an offset, else None."""
    if not _ISO.match(text):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def type_of(value: Any, known: str | None = None) -> str:
    """The type a value stores as, given the type its name already has (``known``).

    Raises BadInput for a value no attribute can hold."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInput(f"not a finite number: {value!r}")
        return "number"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise BadInput(f"a datetime needs a time zone: {value.isoformat()}")
        return "datetime"
    if isinstance(value, str):
        if known == "keyword":
            return "keyword"
        return "datetime" if parse_datetime(value) is not None else "keyword"
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        if len(value) > MAX_LIST:
            raise BadInput(f"a keyword list holds at most {MAX_LIST} values")
        return "keyword_list"
    raise BadInput(f"{value!r} cannot be a search attribute: use a string, number, bool, "
                   "datetime with a time zone, or a list of strings")


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def check_names(attrs: dict[str, Any], *, allow_system: bool) -> None:
    """Refuse malformed and reserved names (BadInput)."""
    for name in attrs:
        if not isinstance(name, str) or not _NAME.match(name):
            raise BadInput(f"search attribute name {name!r}: use letters, digits, '_', '.' "
                           "or '-' (at most 100), starting with a letter or '_'")
        if name in BUILTIN and not (allow_system and name in SYSTEM_SET):
            raise BadInput(f"search attribute {name!r} is a built-in field and cannot be set"
                           + (" here" if name in SYSTEM_SET else ""))


def typed(tx: Tx, attrs: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Each attribute's type and JSON value, checked against the types in the store
    (None values kept as (``""``, None): a removal). Raises SearchAttributeTypeError."""
    known = search_attrs.types(tx, list(attrs))
    result: dict[str, tuple[str, Any]] = {}
    for name, value in attrs.items():
        if value is None:
            result[name] = ("", None)
            continue
        have = known.get(name) or ("keyword" if name in SYSTEM_SET else None)
        kind = type_of(value, have)
        if have == "datetime" and isinstance(value, str) and kind == "keyword":
            raise SearchAttributeTypeError(
                f"search attribute {name!r} is a datetime; {_describe(value)} is not an ISO "
                "datetime with an offset")
        if have is not None and kind != have:
            raise SearchAttributeTypeError(
                f"search attribute {name!r} is a {have} (typed by its first value); got "
                f"{_describe(value)}, a {kind}")
        if kind == "datetime" and isinstance(value, datetime):
            value = value.isoformat()
        if kind == "keyword_list":
            value = list(value)
        result[name] = (kind, value)
    return result


def stored_rows(kind: str, value: Any) -> list[tuple[str | None, float | None]]:
    """The (keyword, number) column pairs of one value in ``search_attrs``."""
    if kind == "keyword":
        return [(value, None)]
    if kind == "keyword_list":
        return [(v, None) for v in dict.fromkeys(value)]
    if kind == "bool":
        return [(None, 1.0 if value else 0.0)]
    if kind == "number":
        return [(None, float(value))]
    if kind == "datetime":
        parsed = parse_datetime(value)
        assert parsed is not None
        return [(None, parsed.timestamp())]
    raise AssertionError(kind)


def check_memo(memo: Any) -> str | None:
    """A memo as stored (JSON text), or None; refuses what JSON cannot hold."""
    if memo is None:
        return None
    try:
        text = json.dumps(memo, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise BadInput(f"the memo is not JSON: {err}") from None
    if len(text) > 64_000:
        raise BadInput("the memo is at most 64000 characters of JSON")
    return text


def save(tx: Tx, run_id: str, attrs: dict[str, Any], memo: Any = None, *,
         allow_system: bool, replace: bool = False) -> dict[str, Any]:
    """Check and store a run's attributes (merged into what it has unless ``replace``)
    and, if given, its memo. Returns the run's attributes now. Raises BadInput or
    SearchAttributeTypeError before writing anything."""
    check_names(attrs, allow_system=allow_system)
    memo_text = check_memo(memo)
    values = typed(tx, attrs)
    current, old_memo = search_attrs.meta(tx, run_id)
    merged = {} if replace else dict(current)
    for name, (kind, value) in values.items():
        if kind:
            merged[name] = value
        else:
            merged.pop(name, None)
    search_attrs.register(tx, {n: k for n, (k, _) in values.items() if k})
    search_attrs.replace_values(
        tx, run_id, {n: stored_rows(k, v) for n, (k, v) in values.items() if k},
        removed=[n for n, (k, _) in values.items() if not k] if not replace else [],
        clear=replace)
    search_attrs.save_meta(tx, run_id, merged, memo_text if memo is not None else old_memo)
    return merged


def upsert_conflict(tx: Tx, commands: Sequence[Any]) -> str | None:
    """Why the SearchAttributesUpserted commands among ``commands`` cannot be stored (a
    value of another type than its name has, in the store or earlier in ``commands``), or
    None when they can."""
    seen: dict[str, str] = {}
    for command in commands:
        if command.type != "SearchAttributesUpserted":
            continue
        attrs = command.attrs.get("attributes", {})
        try:
            for name, (kind, _) in typed(tx, attrs).items():
                if kind and seen.setdefault(name, kind) != kind:
                    raise SearchAttributeTypeError(
                        f"search attribute {name!r} is a {seen[name]} (typed by its first "
                        f"value); got a {kind}")
        except BadInput as err:
            return f"upsert_search_attributes: {err}"
    return None
