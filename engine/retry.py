"""Retry policies for activities, with Temporal's fields and defaults, and the checks every
duration of the authoring API goes through where it is passed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from .errors import BadInput

MAX_SECONDS = 100 * 366 * 86_400.0
"""The longest duration accepted (a century): later moments no longer fit a timestamp."""


def seconds(value: float | int | timedelta | None) -> float | None:
    """A duration given as seconds or a timedelta, as float seconds (None stays None)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"a duration must be seconds or a timedelta, not {value!r}")
    return float(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def duration(value: Any, name: str, where: str, *, zero: bool = False) -> float:
    """``value`` (seconds or a timedelta) as float seconds, or BadInput naming the argument.

    Refused: other types, NaN, infinities, negative values, zero unless ``zero``, and
    anything longer than :data:`MAX_SECONDS`.
    """
    need = "zero or more" if zero else "more than zero"
    if isinstance(value, timedelta):
        secs = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            secs = float(value)
        except OverflowError:
            secs = math.inf
    else:
        raise BadInput(f"{where}({name}={_shown(value)}): a duration is a number of seconds "
                       f"or a timedelta, not {type(value).__name__}")
    if not math.isfinite(secs) or secs < 0 or (secs == 0 and not zero) or secs > MAX_SECONDS:
        raise BadInput(f"{where}({name}={_shown(value)}): a duration must be finite, {need} "
                       "and at most 100 years")
    return secs


def optional_duration(value: Any, name: str, where: str) -> float | None:
    """:func:`duration` of a positive optional argument (None stays None)."""
    return None if value is None else duration(value, name, where)


def stored_seconds(value: Any) -> float | None:
    """A duration read back from stored options, or None unless it is a positive number
    (options stored before durations were checked must not break the engine)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and \
            0 < value <= MAX_SECONDS:
        return float(value)
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How an activity is retried: exponential backoff, optionally bounded in attempts.

    ``maximum_attempts=0`` means unlimited; ``maximum_interval`` defaults to 100 times
    ``initial_interval``. Bad values raise :class:`BadInput` naming the field.
    """

    initial_interval: float | timedelta = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float | timedelta | None = None
    maximum_attempts: int = 0
    non_retryable_error_types: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        where = "RetryPolicy"
        initial = duration(self.initial_interval, "initial_interval", where)
        coefficient = self.backoff_coefficient
        if isinstance(coefficient, bool) or not isinstance(coefficient, (int, float)) or \
                not 1 <= coefficient < math.inf:
            raise BadInput(f"{where}(backoff_coefficient={_shown(coefficient)}): must be a "
                           "finite number, 1 or more")
        ceiling = optional_duration(self.maximum_interval, "maximum_interval", where)
        if ceiling is not None and ceiling < initial:
            raise BadInput(f"{where}(maximum_interval={_shown(self.maximum_interval)}): must "
                           f"not be shorter than initial_interval ({initial:g}s)")
        attempts = self.maximum_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise BadInput(f"{where}(maximum_attempts={_shown(attempts)}): must be a whole "
                           "number, 0 (unlimited) or more")
        types = self.non_retryable_error_types
        if not isinstance(types, (tuple, list)) or \
                not all(isinstance(t, str) for t in types):
            raise BadInput(f"{where}(non_retryable_error_types={_shown(types)}): must be a "
                           "tuple of error type names")
        object.__setattr__(self, "non_retryable_error_types", tuple(types))

    def interval_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (counting from 1).

        Total for any attempt number: the interval grows by ``backoff_coefficient`` until
        it reaches ``maximum_interval`` and then stays there, however long retries go on.
        """
        initial = seconds(self.initial_interval) or 0.0
        ceiling = seconds(self.maximum_interval)
        if ceiling is None:
            ceiling = initial * 100
        ceiling = min(ceiling, MAX_SECONDS)
        exponent = max(attempt - 1, 0)
        coefficient = float(self.backoff_coefficient)
        if initial >= ceiling or exponent == 0 or coefficient <= 1:
            return min(initial, ceiling)
        # Compare in logarithms first: coefficient ** exponent may not fit a float.
        if exponent >= (math.log(ceiling) - math.log(initial)) / math.log(coefficient):
            return ceiling
        try:
            return min(initial * coefficient ** exponent, ceiling)
        except OverflowError:
            return ceiling

    def allows_another(self, attempt: int) -> bool:
        """True when a further attempt may follow failed attempt ``attempt``."""
        return self.maximum_attempts == 0 or attempt < self.maximum_attempts

    def to_json(self) -> dict[str, Any]:
        """The policy as a JSON object (stored with the scheduled activity)."""
        return {
            "initial_interval": seconds(self.initial_interval),
            "backoff_coefficient": self.backoff_coefficient,
            "maximum_interval": seconds(self.maximum_interval),
            "maximum_attempts": self.maximum_attempts,
            "non_retryable_error_types": list(self.non_retryable_error_types),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RetryPolicy:
        """Rebuild a policy stored by :meth:`to_json`.

        A field stored before policies were checked, and invalid now, reads as its
        default: a stored policy never stops the engine.
        """
        if not data:
            return cls()
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if isinstance(values.get("non_retryable_error_types"), list):
            values["non_retryable_error_types"] = tuple(values["non_retryable_error_types"])
        try:
            return cls(**values)
        except BadInput:
            pass
        kept: dict[str, Any] = {}
        for name, value in values.items():
            try:
                cls(**{**kept, name: value})
            except BadInput:
                continue
            kept[name] = value
        return cls(**kept)
