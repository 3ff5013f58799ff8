"""Payloads are JSON, always: encoding, decoding and the size limit."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from .errors import PayloadError

MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
"""The largest encoded payload (input, result, signal, task data) the engine accepts."""

# One encoder, built once: json.dumps with options builds a new encoder on every call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_DECODE = json.JSONDecoder().decode


_FAST_ENCODE = msgspec.json.Encoder().encode
_FAST_DECODE = msgspec.json.Decoder().decode
_INF = float("inf")


def _plain(value: Any) -> bool:
    """True if ``value`` is built of exactly dict (str keys), list, tuple, str, int, bool,
    None and finite floats: the values the standard encoder takes as they are. (msgspec
    would also take sets, dataclasses, dates, NaN...: those keep the standard path, which
    refuses them as it always did.)"""
    kind = type(value)
    if kind is dict:
        for key in value:
            if type(key) is not str:
                return False
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return _plain_scalar(value)
    for item in items:  # scalars inline: a call per item would cost more than the check
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if not -_INF < item < _INF:
                return False
        elif not _plain(item):
            return False
    return True


def _plain_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return bool(-_INF < value < _INF)
    return kind is str or kind is int or kind is bool or value is None


def _fast_text(value: Any) -> str | None:
    """``value`` as compact JSON written by msgspec (several times faster than the standard
    encoder, on every step), or None where the standard encoder must decide."""
    try:
        if _plain(value):
            return _FAST_ENCODE(value).decode()
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.MsgspecError):
        pass
    return None


def encode(value: Any) -> str:
    """Compact JSON for values already known to be JSON (engine bookkeeping)."""
    text = _fast_text(value)
    return _ENCODE(value) if text is None else text


def decode(text: str) -> Any:
    """The value of JSON text the engine stored (or any JSON text): msgspec reads it, and
    what msgspec refuses (NaN, numbers out of range, lone surrogates, malformed text) goes
    to the standard decoder, which reads or raises exactly as ``json.loads`` does."""
    try:
        return _FAST_DECODE(text)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return json.loads(text)


MAX_TEXT_CHARS = 10_000
"""The longest free text (reasons, signal names, operator names) the engine records."""


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def dumps(value: Any, what: str = "payload") -> str:
    """Encode ``value`` as compact JSON; PayloadError if it is not JSON or too large."""
    try:
        text = _fast_text(value) or _ENCODE(value)
    except (TypeError, ValueError) as err:
        raise PayloadError(f"{what} is not JSON: {err}") from None
    except RecursionError:
        raise PayloadError(f"{what} is nested too deeply to be JSON") from None
    if len(text) > MAX_PAYLOAD_BYTES // 4 and _size(text) > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            f"{what} is {_size(text)} bytes of JSON; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(f"{what} is not valid UTF-8 text") from None
    return text


def text(value: Any, what: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    """Free text to record (a reason, a name): a string of at most ``limit`` characters."""
    if not isinstance(value, str):
        raise PayloadError(f"{what} must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise PayloadError(f"{what} is {len(value)} characters; the limit is {limit}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(f"{what} is not valid UTF-8 text") from None
    return value


def loads(text: str | None, what: str = "payload") -> Any:
    """Decode JSON text; PayloadError with the position if it is malformed."""
    if text is None:
        return None
    if len(text) > MAX_PAYLOAD_BYTES // 4 and _size(text) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"{what} is longer than the {MAX_PAYLOAD_BYTES}-byte limit")
    try:
        return decode(text)
    except ValueError as err:
        raise PayloadError(f"{what} is not valid JSON: {err}") from None
    except RecursionError:
        raise PayloadError(f"{what} is nested too deeply") from None


def check(value: Any, what: str = "payload") -> Any:
    """``value`` as it will read back from the store (tuples become lists, and so on)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        dumps(value, what)  # size and encoding checks
        return value
    if isinstance(value, int):
        return value
    if type(value) is list and len(value) <= 64 and _reads_back_as_is(value):
        return list(value)  # the common case of activity arguments: no need to encode
    return _DECODE(dumps(value, what))


def _reads_back_as_is(items: list[Any]) -> bool:
    """True if every item is a small value that JSON gives back unchanged (and cannot be
    too large): ASCII text up to 1024 characters, a 64-bit int, a bool or None."""
    for item in items:  # (one loop, no call per item: this runs for every activity)
        kind = type(item)
        if kind is str:
            if len(item) > 1024 or not item.isascii():
                return False
        elif kind is int:
            if not -(1 << 63) <= item < (1 << 63):
                return False
        elif item is not None and kind is not bool:
            return False
    return True
