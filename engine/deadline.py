"""The workflow-task deadline: workflow code that does not yield is stopped, not waited for.

Workflow tasks run inside the worker's write transaction, so code that never awaits
(``while True: pass``) would hold that transaction, and with it every other run, start and
operator command. The deterministic loop arms a :class:`DeadlineWatch` while it runs
workflow code (one ``run_until_quiet``: the code's response to one history event) and
takes it off afterwards. A watchdog thread raises :class:`WorkflowDeadline` in a thread
whose code has run past the deadline (``PyThreadState_SetAsyncExc``); the loop turns that
into a failed workflow task (kind ``"deadline"``) and the run is held stuck while the
transaction goes on for the other runs.

Where the exception can land: an asynchronous exception is raised at the next bytecode
boundary of the target thread. It is raised only while the watch is on, under a lock that
taking the watch off also holds (and which withdraws an exception not yet delivered), so
it lands in the code the watch covers (workflow code and the loop's own stepping, whose
state a deadline failure discards) or in the loop's taking off of the watch, which catches
it. It cannot land in engine code that writes to the store.

Why not a thread of its own for workflow code (which could be abandoned when it cannot be
stopped): one hand-off between two threads per workflow task cost about a third of the
in-process concurrent throughput here. The limits of stopping code in-process: code that
swallows the exception (``except BaseException: pass`` in a loop that never yields) is
raised at again every deadline but holds its worker until it yields or ends, and a C loop
that never releases the GIL (``sum(itertools.count())``) freezes the process.
"""

from __future__ import annotations

import ctypes
import gc
import linecache
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .errors import BadInput

DEFAULT_DEADLINE = 2.0
_ENGINE_DIR = str(Path(__file__).resolve().parent)
_STDLIB_DIR = str(Path(threading.__file__).resolve().parent)
_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int


class WorkflowDeadline(BaseException):  # noqa: N818 - stops code past `except Exception`
    """Raised inside workflow code that ran past its deadline."""


def check_deadline(value: Any, where: str) -> float:
    """A workflow-task deadline in seconds: a finite number above 0, else BadInput."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value <= 0:
        raise BadInput(f"{where} must be a number of seconds above 0, not {value!r}")
    return float(value)


_OFF = math.inf
"""The due time of a thread whose workflow code is not running: never overdue."""


class Overrun:
    """One thread's run of workflow code, as the watchdog sees it (one per thread, kept
    from one run to the next: due ``_OFF`` while no code runs)."""

    __slots__ = ("due", "fired", "where")

    def __init__(self, due: float = _OFF) -> None:
        self.due = due
        self.fired = 0
        self.where = ""


class DeadlineWatch:
    """Stops workflow code that runs longer than ``deadline`` seconds without yielding."""

    def __init__(self, deadline: float = DEFAULT_DEADLINE) -> None:
        self.deadline = check_deadline(deadline, "the workflow-task deadline")
        self._lock = threading.Lock()
        self._on: dict[int, Overrun] = {}
        """Each thread's overrun record (created on its first ``arm``, then reused)."""
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.stopped = 0
        """How many times workflow code was stopped at its deadline."""

    def arm(self) -> None:
        """Start the clock for the calling thread's workflow code.

        No lock and no allocation after a thread's first call: the watchdog reads ``due``
        under the lock, and sees either ``_OFF`` (left by ``disarm``) or the new due time,
        neither of which is past before the code has run its full deadline."""
        overrun = self._on.get(threading.get_ident())
        if overrun is None:
            overrun = self._first_arm()
        overrun.due = time.monotonic() + self.deadline

    def _first_arm(self) -> Overrun:
        """The calling thread's overrun record, added under the lock (the watchdog walks
        the records), with the watchdog started if it is not yet."""
        if self._thread is None:
            self._start()
        with self._lock:
            return self._on.setdefault(threading.get_ident(), Overrun())

    def disarm(self) -> Overrun | None:
        """Stop the clock; the overrun if the code was stopped (an exception raised in it
        and not yet delivered is withdrawn: none lands after this)."""
        ident = threading.get_ident()
        overrun = self._on.get(ident)
        if overrun is None:
            return None
        with self._lock:
            overrun.due = _OFF
            if not overrun.fired:
                return None
            _set_async_exc(ident, ctypes.py_object())
            stopped = Overrun(overrun.due)
            stopped.fired, stopped.where = overrun.fired, overrun.where
            overrun.fired, overrun.where = 0, ""
        return stopped

    def message(self, overrun: Overrun) -> str:
        """The stuck reason for code stopped at its deadline."""
        text = f"workflow code did not yield within {self.deadline:g} s (deadline)"
        return text + (f" at {overrun.where}" if overrun.where else "")

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, daemon=True,
                                                name="onward-deadline")
                self._thread.start()

    def _watch(self) -> None:
        interval = max(0.001, min(0.25, self.deadline / 4))
        while not self._closed.wait(interval):
            now = time.monotonic()
            with self._lock:
                for ident, overrun in self._on.items():
                    if now >= overrun.due:
                        self._stop(ident, overrun, now)

    def _stop(self, ident: int, overrun: Overrun, now: float) -> None:
        """Raise WorkflowDeadline in thread ``ident`` (the caller holds the lock); again
        every deadline while code that swallowed it goes on."""
        if not overrun.fired:
            overrun.where = _where(ident)
            self.stopped += 1
        overrun.fired += 1
        overrun.due = now + self.deadline
        _set_async_exc(ident, ctypes.py_object(WorkflowDeadline))

    def close(self) -> None:
        """End the watchdog thread."""
        self._closed.set()


_FRAMES_LOCK = threading.Lock()
"""Serialises ``_frame_of`` (every watchdog of the process): one turns the collector off
and back on at a time."""


def _frame_of(ident: int) -> Any:
    """The frame thread ``ident`` is running, with the garbage collector held off.

    CPython 3.11 can deadlock when a collection starts inside ``sys._current_frames()``:
    it holds the interpreter's thread-list lock, and the collection waits for that same
    lock (python/cpython#106883; a workflow-deadline stress test hung here, every thread
    waiting for the GIL)."""
    with _FRAMES_LOCK:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return sys._current_frames().get(ident)
        finally:
            if enabled:
                gc.enable()


def _where(ident: int) -> str:
    """The line of workflow code the thread ``ident`` is running, for the stuck reason."""
    frame = _frame_of(ident)
    innermost = frame
    while frame is not None:
        name = frame.f_code.co_filename
        ours = name.startswith(_ENGINE_DIR) or (
            name.startswith(_STDLIB_DIR) and "site-packages" not in name)
        if not ours:
            break
        frame = frame.f_back
    frame = frame or innermost
    if frame is None:
        return ""
    code = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}  {code}".rstrip()
