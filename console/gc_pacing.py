"""Paced garbage collection: the cyclic collector's full passes wait for a quiet moment.

Python's collector runs a full pass (every tracked object in the process) whenever enough
objects have survived younger passes; in the console that is one key press in ten or so, and
the pass costs 15–120 ms on the UI thread, whichever thread allocated last. ``GcPacer``
moves that cost off key presses:

- once the console is up, one full pass, then ``gc.freeze()``: what has lived this long
  (modules, classes, styles, the screens' widgets) is left out of every later pass;
- automatic full passes are turned off (young passes stay as they were: they are short);
- a full pass runs when no input has come for ``quiet`` seconds and the last one is at
  least ``spacing`` seconds old; and at the latest every ``overdue`` seconds, input or not,
  so memory held by reference cycles stays bounded however busy the operator is.

Only ``onward console`` turns it on (it owns its process); ``stop`` puts the thresholds
back. Objects that are frozen and later die in a cycle stay allocated: that is only what
the startup built, once.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

NO_AUTOMATIC_FULL_PASS = 1_000_000_000  # gen-2 threshold no run reaches


class GcPacer:
    """Runs the collector's full passes between key presses (see the module docstring)."""

    def __init__(self, *, quiet: float = 1.0, spacing: float = 30.0, overdue: float = 300.0,
                 clock: Callable[[], float] = time.monotonic,
                 collect: Callable[[], object] = gc.collect,
                 freeze: Callable[[], None] = gc.freeze) -> None:
        self.quiet = quiet
        self.spacing = spacing
        self.overdue = overdue
        self._clock = clock
        self._collect = collect
        self._freeze = freeze
        self._saved: tuple[int, int, int] | None = None
        self._last_input = clock()
        self._last_pass = clock()
        self.passes = 0  # full passes this pacer has run

    @property
    def started(self) -> bool:
        """Whether automatic full passes are held back by this pacer now."""
        return self._saved is not None

    def start(self) -> None:
        """Collect once, freeze the survivors and hold back automatic full passes."""
        if self._saved is not None:
            return
        self._collect()
        self._freeze()
        young, middle, _ = self._saved = gc.get_threshold()
        gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_PASS)
        self._last_pass = self._clock()
        self.passes += 1

    def stop(self) -> None:
        """Give the collector back its own thresholds (frozen objects stay frozen)."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    @property
    def last_input(self) -> float:
        """When input was last seen (the pacer's clock)."""
        return self._last_input

    def input_seen(self) -> None:
        """Note a key press or mouse event: a pass now would delay the answer to it."""
        self._last_input = self._clock()

    def tick(self) -> bool:
        """Run a full pass if it is time (call it every second or so); whether it ran."""
        if self._saved is None:
            return False
        now = self._clock()
        since_pass = now - self._last_pass
        quiet = now - self._last_input >= self.quiet
        if not (since_pass >= self.overdue or (quiet and since_pass >= self.spacing)):
            return False
        self._collect()
        self._last_pass = self._clock()
        self.passes += 1
        return True
