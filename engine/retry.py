"""Retry policies for activities, with Temporal's fields and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .errors import BadInput


def seconds(value: float | int | timedelta | None) -> float | None:
    """A duration given as seconds or a timedelta, as float seconds (None stays None)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"a duration must be seconds or a timedelta, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """How an activity is retried: exponential backoff, optionally bounded in attempts.

    ``maximum_attempts=0`` means unlimited; ``maximum_interval`` defaults to 100 times
    ``initial_interval``.
    """

    initial_interval: float | timedelta = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float | timedelta | None = None
    maximum_attempts: int = 0
    non_retryable_error_types: tuple[str, ...] = field(default_factory=tuple)

    def interval_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (counting from 1)."""
        initial = seconds(self.initial_interval) or 0.0
        ceiling = seconds(self.maximum_interval)
        if ceiling is None:
            ceiling = initial * 100
        return min(initial * (self.backoff_coefficient ** (attempt - 1)), ceiling)

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
        """Rebuild a policy stored by :meth:`to_json`."""
        if not data:
            return cls()
        return cls(
            initial_interval=data.get("initial_interval", 1.0),
            backoff_coefficient=data.get("backoff_coefficient", 2.0),
            maximum_interval=data.get("maximum_interval"),
            maximum_attempts=data.get("maximum_attempts", 0),
            non_retryable_error_types=tuple(data.get("non_retryable_error_types", ())),
        )
