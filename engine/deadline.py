"""The workflow-task deadline: workflow code that does not yield is stopped, not waited for.

Workflow tasks run inside the worker's write transaction, so code that never awaits
(``while True: pass``) would hold that transaction, and with it every other run, start and
operator command. :class:`CodeRunner` runs each activation on a thread kept for workflow
code alone, while the calling thread (which holds the transaction) waits for it. When one
step of the code (the delivery of one history event) runs past the deadline, the runner
raises :class:`WorkflowDeadline` in that thread (``PyThreadState_SetAsyncExc``) and the
activation fails with a :class:`WorkflowTaskError` of kind ``"deadline"``: the caller holds
the run stuck and goes on. Code that swallows the exception or blocks in a C call is
abandoned on its thread (a new one serves the next activation); the run is held all the
same.

Why a thread of its own rather than raising in the caller's thread: an asynchronous
exception lands at whatever bytecode the target thread runs next. The workflow thread runs
nothing but activations of instances that a deadline failure discards, so wherever it
lands it cannot cut through engine code that holds a transaction; and the caller never has
to trust code it cannot stop. The cost is one hand-off between two threads per workflow
task. Not covered: a C loop that never releases the GIL (``sum(itertools.count())``)
freezes the whole process; only killing it helps.
"""

from __future__ import annotations

import ctypes
import linecache
import logging
import math
import queue
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInput
from .instance import WorkflowTaskError

if TYPE_CHECKING:
    from .events import Event
    from .instance import Activation, WorkflowInstance

log = logging.getLogger("onward.worker")

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


class _Job:
    """One activation handed to the workflow thread."""

    __slots__ = ("instance", "events", "result", "error", "done", "running", "fired", "where")

    def __init__(self, instance: WorkflowInstance, events: list[Event]) -> None:
        self.instance = instance
        self.events = events
        self.result: Activation | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.running = False
        self.fired = False
        self.where = ""


class _CodeThread:
    """A daemon thread that runs activations from its queue, one at a time."""

    def __init__(self, runner: CodeRunner) -> None:
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.runner = runner
        self.thread = threading.Thread(target=self._serve, name="onward-workflow-code",
                                       daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                try:
                    self.runner.began(job)
                    job.result = job.instance.activate(job.events)
                finally:
                    self.runner.finished(job)
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                job.error = exc
            job.done.set()


class CodeRunner:
    """Runs workflow activations under a per-step deadline (see the module docstring)."""

    def __init__(self, deadline: float = DEFAULT_DEADLINE) -> None:
        self.deadline = check_deadline(deadline, "the workflow-task deadline")
        self._lock = threading.Lock()
        """Held while an exception is raised in, or cleared from, the workflow thread."""
        self._code: _CodeThread | None = None
        self.abandoned = 0
        """Workflow threads given up on (their code could not be stopped)."""

    def activate(self, instance: WorkflowInstance, events: list[Event]) -> Activation:
        """``instance.activate(events)`` on the workflow thread, within the deadline.

        Raises what the activation raises, or a WorkflowTaskError of kind ``deadline``."""
        code = self._code
        if code is None or not code.thread.is_alive():
            code = self._code = _CodeThread(self)
        job = _Job(instance, events)
        instance.step_started = time.monotonic()
        code.jobs.put(job)
        wait = self.deadline
        while not job.done.wait(wait):
            wait = instance.step_started + self.deadline - time.monotonic()
            if wait <= 0:
                if self._stop(code, job):
                    break
                wait = self.deadline  # not begun yet: its clock starts when it begins
        if job.fired:
            raise _deadline_error(self.deadline, job.where)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def began(self, job: _Job) -> None:
        """Called on the workflow thread as an activation begins: from here on it may be
        stopped, and its first step's time counts from now."""
        with self._lock:
            job.instance.step_started = time.monotonic()
            job.running = True

    def finished(self, job: _Job) -> None:
        """Called on the workflow thread as an activation ends: from here on no deadline
        exception may be raised in it (one already pending is withdrawn)."""
        with self._lock:
            job.running = False
            if job.fired:
                _set_async_exc(threading.get_ident(), ctypes.py_object())

    def _stop(self, code: _CodeThread, job: _Job) -> bool:
        """Raise WorkflowDeadline in the workflow thread (abandoning the thread if it does
        not stop); False when the activation is not running (not begun, or just ended)."""
        ident = code.thread.ident or 0
        with self._lock:
            if not job.running:
                return False
            job.fired = True
            job.where = _where(ident)
            _set_async_exc(ident, WorkflowDeadline)
        if not job.done.wait(max(0.5, min(self.deadline, 1.0))):
            self.abandoned += 1
            self._code = None  # the next activation gets a fresh thread
            log.warning("workflow code could not be stopped at its deadline (%s); its "
                        "thread is abandoned", job.where or "where is unknown")
        return True

    def close(self) -> None:
        """Let the workflow thread end (it is a daemon: nothing waits for it)."""
        if self._code is not None:
            self._code.jobs.put(None)
            self._code = None


def _where(ident: int) -> str:
    """The line of workflow code the thread ``ident`` is running, for the stuck reason."""
    frame = sys._current_frames().get(ident)
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


def _deadline_error(deadline: float, where: str) -> WorkflowTaskError:
    message = f"workflow code did not yield within {deadline:g} s (deadline)"
    if where:
        message += f" at {where}"
    return WorkflowTaskError(message, kind="deadline",
                             details={"deadline": deadline, "where": where})
