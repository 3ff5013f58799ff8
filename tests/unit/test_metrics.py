"""``onward worker --metrics-port P`` serves Prometheus metrics counted from the turns the
worker commits: attempts by outcome, closed runs by status, workflow tasks and step
latency, exact for what this worker did; each engine counts in a registry of its own."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from onward import Engine, WorkflowFailed
from onward.metrics import serve_metrics
from tests.helpers import WorkerProcess, cli, wait_until

FLOWS = str(Path(__file__).parents[1] / "flows" / "basic.py")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(port: int) -> Samples:
    """Every sample served at ``/metrics``, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[WorkerProcess, int]]:
    port = free_port()
    with WorkerProcess(tmp_path / "onward.db", flows=[FLOWS],
                       extra=["--metrics-port", str(port)]) as w:
        yield w, port


def test_a_worker_serves_exact_counts_of_what_it_committed(
        tmp_path: Path, worker: tuple[WorkerProcess, int]) -> None:
    _, port = worker
    with Engine(tmp_path / "onward.db", flows=[FLOWS]) as eng:  # a client: no worker here
        assert eng.start("retrying", 1, id="flaky-run").result(timeout=30) == "ok after 2"
        with pytest.raises(WorkflowFailed):
            eng.start("refused", "non_retryable", id="refused-run").result(timeout=30)
    samples = wait_until(
        lambda: (s := scrape(port)) and
        value(s, "onward_runs_total", workflow="refused", status="failed") and s,
        message="both closes counted")
    attempts = "onward_activity_attempts_total"
    assert value(samples, attempts, activity="flaky", outcome="failed") == 1
    assert value(samples, attempts, activity="flaky", outcome="completed") == 1
    assert value(samples, attempts, activity="refuse", outcome="failed") == 1
    assert value(samples, attempts, activity="flaky", outcome="timed_out") is None
    assert value(samples, "onward_runs_total", workflow="retrying", status="completed") == 1
    assert value(samples, "onward_runs_total", workflow="refused", status="failed") == 1
    # a task starts each run; one more each when its activity's outcome is durable
    tasks = "onward_workflow_tasks_total"
    assert value(samples, tasks, workflow="retrying", outcome="ok") == 2
    assert value(samples, tasks, workflow="refused", outcome="ok") == 2
    # one step each: flaky's two attempts and the backoff between them are one step
    latency = "onward_step_latency_seconds"
    assert value(samples, latency + "_count", activity="flaky") == 1
    assert value(samples, latency + "_count", activity="refuse") == 1
    total = value(samples, latency + "_sum", activity="flaky")
    assert total is not None and total > 0


def test_timed_out_attempts_are_counted_as_such(tmp_path: Path) -> None:
    port = free_port()
    with Engine(tmp_path / "onward.db", flows=[FLOWS]) as eng:
        stop = serve_metrics(eng, port)
        try:
            with eng.worker(), pytest.raises(WorkflowFailed):
                eng.start("times_out", 5.0, 0.2, id="slow").result(timeout=30)
            samples = wait_until(lambda: (s := scrape(port)) and value(
                s, "onward_runs_total", workflow="times_out", status="failed") and s)
        finally:
            stop()
    attempts = "onward_activity_attempts_total"
    assert value(samples, attempts, activity="hang", outcome="timed_out") == 2
    assert value(samples, attempts, activity="hang", outcome="completed") is None


def test_an_attempt_cut_short_by_its_runs_cancel_is_counted_canceled(
        tmp_path: Path) -> None:
    port = free_port()
    with Engine(tmp_path / "onward.db", flows=[FLOWS]) as eng:
        stop = serve_metrics(eng, port)
        try:
            with eng.worker():
                handle = eng.start("times_out", 1.0, 30.0, id="canceled-run")
                wait_until(lambda: any(e["type"] == "ActivityScheduled"
                                       for e in eng.history("canceled-run")))
                eng.cancel("canceled-run")
                with pytest.raises(WorkflowFailed):
                    handle.result(timeout=30)
                samples = wait_until(lambda: (s := scrape(port)) and value(
                    s, "onward_runs_total", workflow="times_out", status="canceled") and s)
        finally:
            stop()
    attempts = "onward_activity_attempts_total"
    assert value(samples, attempts, activity="hang", outcome="canceled") == 1
    assert value(samples, attempts, activity="hang", outcome="completed") is None


def test_two_engines_in_one_process_count_apart(tmp_path: Path) -> None:
    ports = free_port(), free_port()
    engines = [Engine(tmp_path / f"{n}.db", flows=[FLOWS]) for n in ("a", "b")]
    stops = [serve_metrics(eng, port) for eng, port in zip(engines, ports, strict=True)]
    try:
        with engines[0].worker():
            engines[0].start("three_steps", 1, id="only-in-a").result(timeout=30)
        wait_until(lambda: value(scrape(ports[0]), "onward_runs_total",
                                 workflow="three_steps", status="completed") == 1)
        assert value(scrape(ports[1]), "onward_runs_total", workflow="three_steps",
                     status="completed") is None
    finally:
        for stop in stops:
            stop()
        for eng in engines:
            eng.close()
    with pytest.raises(OSError):  # stopped: nothing serves there any more
        scrape(ports[0])


def test_a_metrics_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cli("worker", "--db", str(tmp_path / "onward.db"), "--flows", FLOWS,
                   "--metrics-port", str(port))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"onward: --metrics-port {port}: cannot serve on 127.0.0.1:{port} (already in use)"]
    assert done.stdout == ""
