"""Typed payloads: Python values to JSON values and back, by the receiver's type hints.

What goes into the store is always JSON. On the way in, :func:`to_json` turns dataclasses,
pydantic models, ``datetime``/``date``/``time``/``timedelta`` (ISO 8601 text), ``UUID``
and ``Decimal`` (text), ``Enum`` (its value), tuples and sets (lists) into JSON values.
On the way out, :func:`from_json` converts a JSON value to the type hint of whatever
receives it (a workflow, activity or handler parameter, or a return hint): the same types
arrive as themselves, nested in lists, dicts and optionals. Conversion is strict in the
JSON sense: an ISO string becomes a ``datetime`` where one is declared and an integer a
``float``, but ``"12"`` never becomes ``12`` (nor ``12`` a string).

msgspec does the work (``to_builtins`` and ``convert``, in C, with the path to the bad
field in its errors). Pydantic models are handed to pydantic itself, when the caller's
code uses pydantic; this module never imports it. A hint msgspec cannot express (an
arbitrary class, a union of two dataclasses) leaves the JSON value as it is. Nothing is
ever pickled.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import re
import sys
import types
import typing
import weakref
from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec

from . import payloads
from .errors import PayloadError

__all__ = ["bind_args", "from_json", "result_of", "to_json"]

log = logging.getLogger(__name__)

_PATH_MARK = "\x00path:"
"""Separates a pydantic error's message from its inner path, for msgspec to add the outer."""

_NOT_JSON = (bytes, bytearray, memoryview)
"""Left as they are by the conversion, and so refused: bytes have no JSON form (base64
would be a silent choice; encode them yourself)."""

_NO_HINT: tuple[Any, ...] = (Any, object, None, type(None), inspect.Parameter.empty)
"""Hints that ask for no conversion."""


def _pydantic_base() -> Any:
    """pydantic's BaseModel if the process uses pydantic (never imported here), else None."""
    module = sys.modules.get("pydantic")
    return getattr(module, "BaseModel", None)


# -- to JSON --------------------------------------------------------------------------------

def _encode_other(obj: Any) -> Any:
    """msgspec's hook for types it does not know: pydantic models dump themselves."""
    base = _pydantic_base()
    if base is not None and isinstance(obj, base):
        return obj.model_dump(mode="json")
    raise TypeError(f"an object of type {type(obj).__qualname__}")


def to_json(value: Any, what: str) -> Any:
    """``value`` as the JSON value that will be stored (and read back) for it.

    Raises PayloadError "WHAT is not JSON: ... at $.field[0]" naming the first value that
    has no JSON form (an arbitrary object, NaN, a lone surrogate), or when the encoded
    payload is larger than the engine accepts.
    """
    try:
        plain = msgspec.to_builtins(value, enc_hook=_encode_other, str_keys=True,
                                    builtin_types=_NOT_JSON)
    except (TypeError, ValueError) as err:
        where = _bad_path(value, objects=True) or "$"
        raise PayloadError(f"{what} is not JSON: {_first_line(err)} at {where} (payloads are "
                           "JSON values, dataclasses, pydantic models, datetime, date, "
                           "UUID, Decimal or Enum)") from None
    except RecursionError:
        raise PayloadError(f"{what} is not JSON: it is nested too deeply, or contains "
                           "itself") from None
    try:
        return payloads.check(plain, what)
    except PayloadError as err:
        path = _bad_path(plain)
        if path is None:
            raise
        raise PayloadError(f"{err} at {path}") from None


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _key_path(key: Any) -> str:
    if isinstance(key, str) and key.isidentifier():
        return f".{key}"
    return f"[{key!r}]"


def _bad_path(value: Any, path: str = "$", depth: int = 0, *, objects: bool = False
              ) -> str | None:
    """The path to the first part of ``value`` with no JSON form: with ``objects``, an
    object msgspec cannot encode; else a NaN, an infinity or text that is not UTF-8.
    (Only called once a conversion has failed.)"""
    if depth > 100:
        return None
    if isinstance(value, float):
        return None if objects or math.isfinite(value) else path
    if isinstance(value, _NOT_JSON):
        return path
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None if objects else path
        return None
    if isinstance(value, dict):
        if objects and any(not _encodes({key: None}) for key in value):
            return path  # a key with no JSON form (a tuple, say)
        items: Sequence[tuple[str, Any]] = [(_key_path(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = [(f"[{i}]", v) for i, v in enumerate(value)]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [(f".{f.name}", getattr(value, f.name)) for f in dataclasses.fields(value)]
    elif _pydantic_base() is not None and isinstance(value, _pydantic_base()):
        items = [(f".{name}", v) for name, v in value]
    else:
        return None if _encodes(value) else path
    for step, item in items:
        found = _bad_path(item, path + step, depth + 1, objects=objects)
        if found is not None:
            return found
    return None


def _encodes(value: Any) -> bool:
    try:
        msgspec.to_builtins(value, enc_hook=_encode_other, str_keys=True)
    except (TypeError, ValueError):
        return False
    return True


# -- from JSON ------------------------------------------------------------------------------

class _Unsupported(Exception):  # noqa: N818 - not an error: a way out of msgspec
    """Raised through msgspec for a class it cannot build (neither a dataclass nor a
    pydantic model): the whole value then passes unchanged."""


def _decode_other(hint: Any, value: Any) -> Any:
    """msgspec's hook for types it does not know: pydantic validates its own models; any
    other class takes an instance as it is, and otherwise the JSON value unchanged."""
    try:
        if isinstance(hint, type) and isinstance(value, hint):
            return value
    except TypeError:  # a Protocol that is not runtime-checkable, say
        raise _Unsupported() from None
    base = _pydantic_base()
    if base is not None and isinstance(hint, type) and issubclass(hint, base):
        try:
            return cast(Any, hint).model_validate(value)
        except ValueError as err:  # pydantic's ValidationError: the first problem, located
            errors = getattr(err, "errors", None)
            first = errors()[0] if callable(errors) and errors() else None
            if first is None:
                raise
            inner = "".join(f"[{p}]" if isinstance(p, int) else _key_path(p)
                            for p in first.get("loc", ()))
            raise ValueError(f"{first.get('msg', 'invalid')}{_PATH_MARK}{inner}") from None
    raise _Unsupported()


_UNSUPPORTED: set[Any] = set()
"""Hints msgspec refused to compile: values for them pass unchanged (checked once)."""

_AT = re.compile(r" - at `(?P<path>[^`]*)`(?: in `(?P<outer>[^`]*)`)?$")


def _located(message: str, root: str) -> str:
    """msgspec's "msg - at `$.a[0]`" as "msg at ROOT.a[0]" (pydantic's inner path too)."""
    inner = ""
    match = _AT.search(message)
    path = "$"
    if match is not None:
        message = message[:match.start()]
        if match.group("outer") is not None:  # "`key` in `$.a`": a bad dict key
            path, message = match.group("outer"), f"{message} (in a key)"
        else:
            path = match.group("path")
    if _PATH_MARK in message:
        message, inner = message.split(_PATH_MARK, 1)
        message = message.splitlines()[0]
    return f"{message} at {root}{path[1:]}{inner}"


def from_json(value: Any, hint: Any, what: str, *, root: str = "$") -> Any:
    """``value`` (JSON, or already typed) as the type ``hint`` declares.

    Raises PayloadError "WHAT: Expected `float`, got `str` at $.amount" (the path starts
    at ``root``) when it cannot be converted. ``Any``, ``object`` and no hint return the
    value unchanged.
    """
    try:
        return _to_type(value, hint)
    except msgspec.ValidationError as err:
        raise PayloadError(f"{what}: {_located(str(err), root)}") from None


_EXACT = frozenset({str, int, bool})
"""Hints a value of exactly that type already satisfies as it is (msgspec would return
it unchanged): the common activity and workflow parameters skip the conversion."""


def _to_type(value: Any, hint: Any) -> Any:
    """``from_json`` without the message: msgspec's ValidationError if it cannot be."""
    if type(value) is hint and hint in _EXACT:
        return value
    if _no_hint(hint):
        return value
    try:
        return msgspec.convert(value, hint, dec_hook=_decode_other, str_keys=True)
    except (TypeError, NameError, _Unsupported) as err:  # a hint msgspec cannot express
        _unsupported(hint, err)
        return value


def _no_hint(hint: Any) -> bool:
    try:
        return hint in _NO_HINT or hint in _UNSUPPORTED
    except TypeError:  # an unhashable hint (Annotated with a dict, say): try to convert
        return False


def _unsupported(hint: Any, err: BaseException) -> None:
    """Remember a hint that converts nothing, and say so once: a dataclass whose field
    hint cannot be resolved would otherwise arrive as a dict without a word."""
    try:
        if hint in _UNSUPPORTED:
            return
        _UNSUPPORTED.add(hint)
    except TypeError:
        return
    reason = f": {_first_line(err)}" if str(err) else ""
    log.warning("values for the type hint %s pass unconverted (it names a class that is "
                "neither a dataclass nor a pydantic model, or cannot be resolved%s)",
                getattr(hint, "__qualname__", hint), reason)


# -- by a function's hints ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class _Hints:
    """A function's positional parameters (name, hint) in order, its ``*args`` hint and
    its return hint; ``convert`` False when none of them asks for a conversion."""

    params: tuple[tuple[str, Any], ...]
    star: tuple[str, Any] | None
    result: Any
    self_first: bool
    convert: bool


_HINTS: weakref.WeakKeyDictionary[Any, _Hints] = weakref.WeakKeyDictionary()


def _signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, SyntaxError, AttributeError, TypeError):  # an unresolvable hint
        try:
            return inspect.signature(fn)
        except (TypeError, ValueError):
            return None
    except ValueError:  # no signature (a builtin)
        return None


def _real(hint: Any, fn: Any) -> Any:
    """A hint as a type to convert to. A string (``from __future__ import annotations``)
    that did not resolve with the others is resolved alone in ``fn``'s module; if it
    cannot be, it converts nothing (and says so once)."""
    if not isinstance(hint, str):
        return hint
    alone = types.SimpleNamespace(__annotations__={"hint": hint})
    try:
        return typing.get_type_hints(alone, getattr(fn, "__globals__", None))["hint"]
    except Exception as err:  # noqa: BLE001 - any failure: this hint converts nothing
        _unsupported(hint, err)
        return inspect.Parameter.empty


def _hints_of(fn: Any) -> _Hints:
    """The hints of ``fn`` (for a bound method: of its function, self included), cached."""
    target = getattr(fn, "__func__", fn)
    try:
        cached = _HINTS.get(target)
    except TypeError:  # cannot be weakly referenced: computed each time
        cached = None
    if cached is not None:
        return cached
    sig = _signature(target)
    params: list[tuple[str, Any]] = []
    star = None
    result: Any = inspect.Parameter.empty
    if sig is not None:
        result = _real(sig.return_annotation, target)
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                params.append((p.name, _real(p.annotation, target)))
            elif p.kind is p.VAR_POSITIONAL:
                star = (p.name, _real(p.annotation, target))
    self_first = bool(params) and params[0][0] in ("self", "cls")
    wanted = [h for _, h in params[1 if self_first else 0:]] + \
        ([star[1]] if star else []) + [result]
    hints = _Hints(tuple(params), star, result, self_first,
                   convert=not all(_no_hint(h) for h in wanted))
    try:
        _HINTS[target] = hints
    except TypeError:
        pass
    return hints


def bind_args(fn: Callable[..., Any], args: Sequence[Any], what: str) -> list[Any]:
    """Positional ``args`` (JSON, as stored) converted by ``fn``'s parameter hints.

    A method's ``self`` is skipped (bound or not); parameters without a hint, and
    arguments beyond the parameters, are passed unchanged. Raises PayloadError "WHAT,
    parameter NAME: ... at $[0].field" (the path counts from the argument list).
    """
    hints = _hints_of(fn)
    if not hints.convert:
        return list(args)
    params = hints.params[1:] if hints.self_first or inspect.ismethod(fn) else hints.params
    out = list(args)
    for index, value in enumerate(args):
        if index < len(params):
            name, hint = params[index]
        elif hints.star is not None:
            name, hint = hints.star
        else:
            break
        try:
            out[index] = _to_type(value, hint)
        except msgspec.ValidationError as err:
            raise PayloadError(f"{what}, parameter {name}: "
                               f"{_located(str(err), f'$[{index}]')}") from None
    return out


def result_of(fn: Callable[..., Any], value: Any, what: str) -> Any:
    """``value`` (JSON, as stored) converted by ``fn``'s return hint (an ``async def``'s
    hint is that of its awaited result); PayloadError naming the path if it cannot be."""
    hints = _hints_of(fn)
    if not hints.convert:
        return value
    return from_json(value, hints.result, what)
