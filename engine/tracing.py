"""OpenTelemetry spans for runs, workflow tasks and activity attempts.

A worker emits spans when given a ``tracer_provider`` (tests, embedding applications) or
when the environment asks for them (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_TRACES_EXPORTER`` set) and opentelemetry-sdk is installed (the ``otel`` extra).
Otherwise opentelemetry is never imported. From the environment, the SDK's own variables
configure everything: the resource (``OTEL_SERVICE_NAME``, default ``onward``;
``OTEL_RESOURCE_ATTRIBUTES``), the sampler (``OTEL_TRACES_SAMPLER``), the exporters
(``OTEL_TRACES_EXPORTER``: ``otlp``, the default, ``console`` on stderr, ``none``, or any
installed exporter's name) with their endpoints and headers (``OTEL_EXPORTER_OTLP_*``) and
batching (``OTEL_BSP_*``).

Spans are made from what the worker commits (engine/worklog.py), after it is durable:

``run <workflow>``
    One span per run, from the run's start to its close being durable, opened when this
    process runs a workflow task of the run and ended when this process commits its close
    (status ERROR for failed and terminated runs). A run that moves to another process
    gets a run span there too; a run closed elsewhere (``onward terminate`` in another
    process) has its span ended when this process forgets it (see
    :data:`MAX_OPEN_RUNS`).
``workflow task <workflow>``
    One per workflow task (the run's code advanced over new events in one transaction):
    a child of the run span, ERROR when the task held the run stuck.
``activity <activity>``
    One per attempt, from its start to its outcome being durable: a child of the
    workflow task that scheduled the activity (when this process ran that task, else of
    the run span), always with a link to the run span; ERROR when the attempt failed.

Every span has ``onward.workflow_id``, ``onward.run_id`` and ``onward.workflow``; attempt
spans also ``onward.activity``, ``onward.attempt``, ``onward.provider``,
``onward.provider_version`` and ``onward.outcome``; run spans ``onward.status``.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import BadInput
from .worklog import CLOSES, PerRun, WorkflowTask, attempt_outcome, published_events, workflow_tasks

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, SpanContext, Tracer

    from .attempts import Attempt
    from .events import Event
    from .history import RunRow
    from .store.base import Tx

log = logging.getLogger("onward.tracing")

ENABLING = ("OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER")
"""Any of these set (non-empty) turns spans on for workers without a tracer provider."""

MAX_OPEN_RUNS = 10_000
"""Run spans kept open at once; beyond this the oldest is ended (``onward.run.cut``)."""

_env_provider: Any = None
_env_lock = threading.Lock()


def wanted_by_environment(environ: dict[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` environment asks for spans."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in ENABLING)


def tracing_for(tracer_provider: Any = None) -> Spans | None:
    """The span reporter for a worker: with ``tracer_provider``, to it; else to the
    provider the environment configures, if it asks for spans and the SDK is installed;
    else None (and opentelemetry is not imported)."""
    if tracer_provider is not None:
        return Spans(tracer_provider)
    if not wanted_by_environment():
        return None
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        log.warning("OTEL_* is set but opentelemetry-sdk is not installed: no spans "
                    "(install onward[otel])")
        return None
    return Spans(environment_provider(), flush_on_close=True)


def environment_provider() -> TracerProvider:
    """The process's tracer provider as the ``OTEL_*`` environment configures it (made
    once). BadInput for an exporter that is not installed."""
    global _env_provider
    with _env_lock:
        if _env_provider is None:
            _env_provider = _provider_from_environment()
        provider: TracerProvider = _env_provider
        return provider


def _provider_from_environment() -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "onward"}))
    provider = TracerProvider(resource=resource)  # (the sampler: OTEL_TRACES_SAMPLER)
    names = os.environ.get("OTEL_TRACES_EXPORTER") or "otlp"
    for name in (n.strip() for n in names.split(",")):
        if name and name != "none":
            provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    return provider


def _exporter(name: str) -> Any:
    """The span exporter ``OTEL_TRACES_EXPORTER`` names, configured by its own variables."""
    from importlib.metadata import entry_points
    if name == "console":  # stdout is not the worker's to write on
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter(out=sys.stderr)
    if name == "otlp":
        protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
        name = "otlp_proto_grpc" if protocol == "grpc" else "otlp_proto_http"
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise BadInput(f"OTEL_TRACES_EXPORTER: no span exporter {name!r} is installed "
                       "(otlp, console and none need only onward[otel])")
    return next(iter(found)).load()()


class Spans:
    """Turns committed turns into spans (a turn reporter, engine/worklog.py)."""

    def __init__(self, provider: Any, *, flush_on_close: bool = False) -> None:
        from importlib.metadata import version
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("onward", version("onward"))
        self._flush_on_close = flush_on_close
        self._lock = threading.Lock()
        self._runs: collections.OrderedDict[str, Span] = collections.OrderedDict()
        self._starts: PerRun[int] = PerRun()
        """When attempts started (ns), by run, (ref, attempt)."""
        self._scheduled_by: PerRun[SpanContext] = PerRun()
        """The workflow task span that scheduled an activity, by run, ref."""

    # -- the turn reporter ----------------------------------------------------------------
    def started(self, attempts: Sequence[Attempt]) -> None:
        """Remember when each attempt starts (its span begins there)."""
        now = time.time_ns()
        with self._lock:
            for attempt in attempts:
                self._starts.put(attempt.run_id, (attempt.ref, attempt.attempt), now)

    def committed(self, tx: Tx) -> None:
        """Make the spans of what ``tx`` (committed) recorded."""
        tasks = workflow_tasks(tx)
        events = published_events(tx)
        if not tasks and not events:
            return
        with self._lock:
            by_run: dict[str, SpanContext] = {}
            for task in tasks:
                by_run[task.run.run_id] = self._task_span(task)
            for run, event in events:
                self._on_event(run, event, by_run)

    def close(self) -> None:
        """Flush what the environment's exporters hold (when the worker stops)."""
        if self._flush_on_close:
            self.provider.force_flush()

    # -- spans ------------------------------------------------------------------------------
    def _run_span(self, run: RunRow, first: int | None = None) -> Span:
        """The run's span, opened at the run's start (or at ``first``, the start of its
        first span here, if earlier: the engine's clock may follow the database's)."""
        span = self._runs.get(run.run_id)
        if span is None:
            start = _ns(run.started) if first is None else min(_ns(run.started), first)
            span = self.tracer.start_span(f"run {run.workflow}", attributes=_ids(run),
                                          start_time=start)
            self._runs[run.run_id] = span
            while len(self._runs) > MAX_OPEN_RUNS:
                _, old = self._runs.popitem(last=False)
                old.set_attribute("onward.run.cut", True)
                old.end()
        return span

    def _task_span(self, task: WorkflowTask) -> SpanContext:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode
        run_span = self._run_span(task.run, _ns(task.started))
        span = self.tracer.start_span(
            f"workflow task {task.run.workflow}", context=trace.set_span_in_context(run_span),
            attributes=_ids(task.run), start_time=_ns(task.started))
        if not task.ok:
            span.set_status(Status(StatusCode.ERROR, task.run.stuck_reason or "held stuck"))
        span.end(end_time=_ns(task.ended))
        return span.get_span_context()

    def _on_event(self, run: RunRow, event: Event, by_run: dict[str, SpanContext]) -> None:
        if event.type == "ActivityScheduled" and run.run_id in by_run:
            self._scheduled_by.put(run.run_id, event.seq, by_run[run.run_id])
        elif event.type in ("ActivityCompleted", "ActivityAttemptFailed"):
            self._attempt_span(run, event)
            if event.type == "ActivityCompleted":
                self._scheduled_by.pop(run.run_id, int(event.attrs.get("ref") or 0))
        elif event.type == "ActivityFailed":
            self._scheduled_by.pop(run.run_id, int(event.attrs.get("ref") or 0))
        elif event.type in CLOSES:
            self._close_run(run, event)

    def _attempt_span(self, run: RunRow, event: Event) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Link, Status, StatusCode
        attrs = event.attrs
        ref, number = int(attrs.get("ref") or 0), int(attrs.get("attempt") or 0)
        end = time.time_ns()
        started = self._starts.pop(run.run_id, (ref, number))
        start = end if started is None else min(started, end)
        run_span = self._run_span(run, start)
        parent = self._scheduled_by.get(run.run_id, ref)
        context = trace.set_span_in_context(
            trace.NonRecordingSpan(parent) if parent is not None else run_span)
        outcome = attempt_outcome(event.type, attrs)
        span = self.tracer.start_span(
            f"activity {attrs.get('name')}", context=context, start_time=start,
            links=[Link(run_span.get_span_context(), {"onward.link": "run"})],
            attributes={**_ids(run), "onward.activity": str(attrs.get("name") or ""),
                        "onward.attempt": number,
                        "onward.provider": str(attrs.get("provider") or ""),
                        "onward.provider_version": str(attrs.get("provider_version") or ""),
                        "onward.outcome": outcome})
        if outcome != "completed":
            error = attrs.get("error") or {}
            span.set_status(Status(StatusCode.ERROR, f"{error.get('type', 'Error')}: "
                                                     f"{error.get('message', '')}"[:500]))
        span.end(end_time=end)

    def _close_run(self, run: RunRow, event: Event) -> None:
        from opentelemetry.trace import Status, StatusCode
        span = self._run_span(run)
        del self._runs[run.run_id]
        status = CLOSES[event.type]
        span.set_attribute("onward.status", status)
        if status in ("failed", "terminated"):
            error = event.attrs.get("error") or {}
            span.set_status(Status(StatusCode.ERROR, str(
                error.get("message") or event.attrs.get("reason") or status)[:500]))
        span.end(end_time=time.time_ns())  # its close is durable now
        self._scheduled_by.forget(run.run_id)
        self._starts.forget(run.run_id)


def _ids(run: RunRow) -> dict[str, str]:
    return {"onward.workflow_id": run.workflow_id, "onward.run_id": run.run_id,
            "onward.workflow": run.workflow}


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)
