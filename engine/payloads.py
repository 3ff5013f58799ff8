"""Payloads are JSON, always: encoding, decoding and the size limit."""

from __future__ import annotations

import json
from typing import Any

from .errors import PayloadError

MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
"""The largest encoded payload (input, result, signal, task data) the engine accepts."""

# One encoder, built once: json.dumps with options builds a new encoder on every call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_DECODE = json.JSONDecoder().decode


def encode(value: Any) -> str:
    """Compact JSON for values already known to be JSON (engine bookkeeping)."""
    return _ENCODE(value)


def dumps(value: Any, what: str = "payload") -> str:
    """Encode ``value`` as compact JSON; PayloadError if it is not JSON or too large."""
    try:
        text = _ENCODE(value)
    except (TypeError, ValueError) as err:
        raise PayloadError(f"{what} is not JSON: {err}") from None
    if len(text) > MAX_PAYLOAD_BYTES and len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            f"{what} is {len(text.encode())} bytes of JSON; the limit is {MAX_PAYLOAD_BYTES}")
    return text


def loads(text: str | None, what: str = "payload") -> Any:
    """Decode JSON text; PayloadError with the position if it is malformed."""
    if text is None:
        return None
    if len(text) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"{what} is longer than the {MAX_PAYLOAD_BYTES}-byte limit")
    try:
        return json.loads(text)
    except ValueError as err:
        raise PayloadError(f"{what} is not valid JSON: {err}") from None


def check(value: Any, what: str = "payload") -> Any:
    """``value`` as it will read back from the store (tuples become lists, and so on)."""
    if value is None or isinstance(value, (str, bool, int)) and not isinstance(value, float):
        return value
    return _DECODE(dumps(value, what))
