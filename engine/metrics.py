"""Prometheus metrics of a worker process, counted from the turns its workers commit.

:class:`Metrics` is a turn reporter (engine/worklog.py): it reads the events each committed
transaction of this process's workers published, and the workflow tasks it ran, so every
count is of something durable, counted once. Each instance has a registry of its own
(never prometheus_client's global one): two engines in one process do not collide.
:func:`serve_metrics` serves one at ``http://127.0.0.1:PORT/metrics`` for ``onward worker
--metrics-port PORT``.

What is counted is what this process's workers committed: a run terminated by ``onward
terminate`` in another process, or an attempt another worker recorded, is that process's.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from .errors import BadInput
from .worklog import CLOSES, PerRun, attempt_outcome, published_events, workflow_tasks

if TYPE_CHECKING:
    from .attempts import Attempt
    from .client import Engine
    from .events import Event
    from .store.base import Tx

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 300.0, 900.0, 3600.0)


class Metrics:
    """The counters and histogram of one process's workers, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.attempts = Counter(
            "onward_activity_attempts", "Activity attempts that ended, by activity and "
            "outcome (completed, failed, timed_out, or canceled: its run closed or the "
            "attempt raised a cancellation while it ran).", ["activity", "outcome"],
            registry=self.registry)
        self.runs = Counter(
            "onward_runs", "Runs closed, by workflow and final status (completed, failed, "
            "canceled, terminated, continued_as_new).", ["workflow", "status"],
            registry=self.registry)
        self.step_latency = Histogram(
            "onward_step_latency_seconds", "Step latency: from an activity being scheduled "
            "(its ActivityScheduled event durable) to its outcome being durable "
            "(ActivityCompleted, or ActivityFailed after its last attempt): queueing, "
            "every attempt and the retry backoff between them (Temporal's activity "
            "end-to-end latency). Observed when this process scheduled it.", ["activity"],
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.workflow_tasks = Counter(
            "onward_workflow_tasks", "Workflow tasks run (workflow code advanced over new "
            "events in one transaction), by workflow and outcome (ok, or held: the run "
            "was held stuck).", ["workflow", "outcome"], registry=self.registry)
        self._lock = threading.Lock()
        self._scheduled: PerRun[float] = PerRun()
        """When activities were scheduled, by run and ref."""
        self._running: PerRun[str] = PerRun()
        """Activities of attempts started here, not yet recorded, by run, (ref, attempt)."""
        self._children: dict[tuple[Any, ...], Any] = {}
        """Labelled series already looked up (``labels()`` costs more than a dict)."""

    # -- the turn reporter ----------------------------------------------------------------
    def started(self, attempts: Sequence[Attempt]) -> None:
        """Remember attempts that start now (counted canceled if their run closes first)."""
        with self._lock:
            for attempt in attempts:
                self._running.put(attempt.run_id, (attempt.ref, attempt.attempt),
                                  attempt.name)

    def committed(self, tx: Tx) -> None:
        """Count what ``tx`` (committed) recorded."""
        for task in workflow_tasks(tx):
            self._child(self.workflow_tasks, task.run.workflow, "ok" if task.ok else "held").inc()
        with self._lock:
            for run, event in published_events(tx):
                self._count(run.run_id, run.workflow, event)

    def _count(self, run_id: str, workflow: str, event: Event) -> None:
        kind, at, attrs = event.type, event.time, event.attrs
        if kind == "ActivityScheduled":
            self._scheduled.put(run_id, event.seq, at)
        elif kind in ("ActivityCompleted", "ActivityAttemptFailed"):
            name = str(attrs.get("name") or "")
            self._running.pop(run_id, (int(attrs.get("ref") or 0),
                                       int(attrs.get("attempt") or 0)))
            self._child(self.attempts, name, attempt_outcome(kind, attrs)).inc()
            if kind == "ActivityCompleted":
                self._step_done(run_id, attrs, at)
        elif kind == "ActivityFailed":
            self._step_done(run_id, attrs, at)
        elif kind in CLOSES:
            self._child(self.runs, workflow, CLOSES[kind]).inc()
            for name in self._running.forget(run_id).values():
                self._child(self.attempts, name, "canceled").inc()
            self._scheduled.forget(run_id)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _step_done(self, run_id: str, attrs: dict[str, Any], at: float) -> None:
        scheduled = self._scheduled.pop(run_id, int(attrs.get("ref") or 0))
        if scheduled is not None:
            self._child(self.step_latency, str(attrs.get("name") or "")).observe(
                max(0.0, at - scheduled))


def serve_metrics(engine: Engine, port: int, host: str = "127.0.0.1"
                  ) -> Callable[[], None]:
    """Count the turns ``engine``'s workers commit and serve them at
    ``http://HOST:PORT/metrics`` (Prometheus text format) from a thread; returns the
    function that stops serving and counting. A port that cannot be bound is BadInput."""
    if not 0 < port < 65536:
        raise BadInput(f"--metrics-port {port}: choose a port from 1 to 65535")
    metrics = Metrics()
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as err:
        reason = "already in use" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
        raise BadInput(f"--metrics-port {port}: cannot serve on {host}:{port} ({reason})"
                       ) from None
    engine.runtime.reporters.append(metrics)

    def stop() -> None:
        if metrics in engine.runtime.reporters:
            engine.runtime.reporters.remove(metrics)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
