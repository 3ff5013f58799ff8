"""OpenTelemetry spans: one per run (start to close), per workflow task (a child of the
run's) and per activity attempt (a child of the task that scheduled it, linked to the run),
with the run's ids as attributes; on only when asked for, and opentelemetry not imported
otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from onward import Engine, WorkflowFailed
from tests.helpers import REPO, WorkerProcess, cli, env_for, wait_until

FLOWS = str(Path(__file__).parents[1] / "flows" / "basic.py")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def spans_of(exporter: InMemorySpanExporter, run_id: str) -> dict[str, list[ReadableSpan]]:
    """The run's finished spans by name, oldest first."""
    found: dict[str, list[ReadableSpan]] = {}
    for span in sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0):
        if (span.attributes or {}).get("onward.run_id") == run_id:
            found.setdefault(span.name, []).append(span)
    return found


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def test_a_run_its_workflow_tasks_and_attempts_make_one_trace(
        tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    with Engine(tmp_path / "onward.db", flows=[FLOWS]) as eng, \
            eng.worker(tracer_provider=provider):
        handle = eng.start("retrying", 1, id="traced")
        assert handle.result(timeout=30) == "ok after 2"
        spans = wait_until(lambda: (s := spans_of(exporter, handle.run_id))
                           and "run retrying" in s and s, message="the run's span ended")
    [run] = spans["run retrying"]
    tasks = spans["workflow task retrying"]
    attempts = spans["activity flaky"]
    assert len(tasks) == 2 and len(attempts) == 2
    assert run.parent is None
    ids = {"onward.workflow_id": "traced", "onward.run_id": handle.run_id,
           "onward.workflow": "retrying"}
    assert run.attributes is not None and run.context is not None
    assert {**run.attributes} == {**ids, "onward.status": "completed"}
    assert run.status.status_code is not StatusCode.ERROR
    for task in tasks:
        assert task.parent is not None and task.parent.span_id == span_id(run)
        assert {**(task.attributes or {})} == ids
        assert run.start_time is not None and run.end_time is not None
        assert run.start_time <= (task.start_time or 0) <= (task.end_time or 0) <= run.end_time
    first, second = attempts
    for number, attempt in enumerate(attempts, 1):
        assert attempt.context is not None and \
            attempt.context.trace_id == run.context.trace_id
        assert attempt.parent is not None
        assert attempt.parent.span_id == span_id(tasks[0])  # the task that scheduled it
        assert [link.context.span_id for link in attempt.links] == [span_id(run)]
        attrs = attempt.attributes or {}
        assert {k: attrs[k] for k in ids} == ids
        assert attrs["onward.activity"] == "flaky" and attrs["onward.attempt"] == number
        assert attrs["onward.provider"] == "basic"
        assert attrs["onward.provider_version"]
    assert (first.attributes or {})["onward.outcome"] == "failed"
    assert first.status.status_code is StatusCode.ERROR
    assert "flaky failure 1" in (first.status.description or "")
    assert (second.attributes or {})["onward.outcome"] == "completed"
    assert second.status.status_code is not StatusCode.ERROR
    assert (first.end_time or 0) <= (second.start_time or 0)


def test_a_failed_run_and_a_stuck_task_are_errors(
        tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    with Engine(tmp_path / "onward.db", flows=[FLOWS]) as eng, \
            eng.worker(tracer_provider=provider):
        failed = eng.start("refused", "non_retryable", id="refused")
        with pytest.raises(WorkflowFailed):
            failed.result(timeout=30)
        stuck = eng.start("buggy", id="buggy")
        wait_until(lambda: spans_of(exporter, stuck.run_id).get("workflow task buggy", [])
                   [1:], message="the buggy run's second task")
        failed_spans = wait_until(lambda: (s := spans_of(exporter, failed.run_id))
                                  and "run refused" in s and s)
    [run] = failed_spans["run refused"]
    assert run.status.status_code is StatusCode.ERROR
    assert (run.attributes or {})["onward.status"] == "failed"
    held = spans_of(exporter, stuck.run_id)["workflow task buggy"][-1]
    assert held.status.status_code is StatusCode.ERROR
    assert "KeyError" in (held.status.description or "")


def test_an_attempt_whose_task_ran_in_another_worker_is_a_child_of_the_run(
        tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    with Engine(tmp_path / "onward.db", flows=[FLOWS]) as eng:
        with eng.worker():  # untraced: runs the first task and the first attempt
            handle = eng.start("retrying", 1, 1.0, id="moved")
            wait_until(lambda: any(e["type"] == "ActivityAttemptFailed"
                                   for e in eng.history("moved")))
        with eng.worker(tracer_provider=provider):
            assert handle.result(timeout=30) == "ok after 2"
            spans = wait_until(lambda: (s := spans_of(exporter, handle.run_id))
                               and "run retrying" in s and s)
    [run], [attempt], [task] = (spans["run retrying"], spans["activity flaky"],
                                spans["workflow task retrying"])
    assert (attempt.attributes or {})["onward.attempt"] == 2
    assert attempt.parent is not None and attempt.parent.span_id == span_id(run)
    assert task.parent is not None and task.parent.span_id == span_id(run)


def test_without_the_environment_opentelemetry_is_not_imported(tmp_path: Path) -> None:
    code = ("import sys\nfrom onward import Engine\n"
            f"with Engine({str(tmp_path / 'x.db')!r}, flows=[{FLOWS!r}]) as eng, "
            "eng.worker():\n"
            "    eng.start('three_steps', 1, id='plain').result(timeout=30)\n"
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n")
    env = {k: v for k, v in env_for().items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_otel_environment_turns_spans_on_in_a_worker(tmp_path: Path) -> None:
    env = env_for(OTEL_SERVICE_NAME="onward-test", OTEL_TRACES_EXPORTER="console")
    db = tmp_path / "onward.db"
    worker = WorkerProcess(db, flows=[FLOWS], env=env).wait_ready()
    with Engine(db, flows=[FLOWS]) as eng:
        handle = eng.start("three_steps", 1, id="exported")
        handle.result(timeout=30)
    assert worker.stop() == 0  # the console exporter writes on stderr as spans batch up
    text = worker.log_path.read_text()
    spans = [json.loads(chunk) for chunk in _json_objects(text)]
    names = {s["name"] for s in spans if s["attributes"].get("onward.run_id") == handle.run_id}
    assert names == {"run three_steps", "workflow task three_steps", "activity step"}
    assert all(s["resource"]["attributes"]["service.name"] == "onward-test" for s in spans)


def _json_objects(text: str) -> list[str]:
    """The multi-line JSON objects the console exporter wrote among other lines."""
    chunks, current = [], []
    for line in text.splitlines():
        if line == "{":
            current = [line]
        elif current:
            current.append(line)
            if line == "}":
                chunks.append("\n".join(current))
                current = []
    return chunks


def test_an_exporter_that_is_not_installed_is_a_one_line_error(tmp_path: Path) -> None:
    done = cli("worker", "--db", str(tmp_path / "onward.db"), "--flows", FLOWS,
               env=env_for(OTEL_TRACES_EXPORTER="nowhere"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "onward: OTEL_TRACES_EXPORTER: no span exporter 'nowhere' is installed (otlp, "
        "console and none need only onward[otel])"]
