"""Shared test helpers: real worker processes, the CLI as a subprocess, bounded waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def executions(log: Path) -> list[dict[str, Any]]:
    """The lines test activities appended to ``log`` (``$ONWARD_TEST_LOG``), one per run."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, message: str = "",
               interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail clearly after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: "
                                 f"{message or predicate}")
        time.sleep(interval)


def env_for(data_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for a subprocess: repo on the path, provider data in ``data_dir``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("ONWARD_TIME_SHIFT", None)
    if data_dir is not None:
        env["ONWARD_DATA"] = str(data_dir)
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``onward ARGS`` in a fresh interpreter and capture its output."""
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,
                          text=True, env=env or env_for(), timeout=timeout, cwd=cwd)


def cli_json(*args: str, **kwargs: Any) -> Any:
    """Run a ``--json`` command and parse its output (asserting it succeeded)."""
    done = cli(*args, "--json", **kwargs)
    assert done.returncode == 0, f"onward {' '.join(args)} failed: {done.stderr}"
    return json.loads(done.stdout)


LIVE_WORKERS: list[WorkerProcess] = []


def kill_leftover_workers() -> None:
    """SIGKILL every worker process a test started and did not stop (teardown)."""
    while LIVE_WORKERS:
        worker = LIVE_WORKERS.pop()
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)


class WorkerProcess:
    """``onward worker`` in a subprocess that tests can SIGKILL."""

    def __init__(self, db: Path | str, *, flows: list[str | Path] = (),  # type: ignore[assignment]
                 plugins: list[str | Path] = (),  # type: ignore[assignment]
                 concurrency: int = 4, env: dict[str, str] | None = None,
                 extra: list[str] | None = None, log: Path | None = None) -> None:
        args = [sys.executable, "-m", "engine.cli", "worker", "--db", str(db),
                "--concurrency", str(concurrency)]
        for f in flows:
            args += ["--flows", str(f)]
        for p in plugins:
            args += ["--plugins", str(p)]
        args += extra or []
        if log is None:
            import tempfile
            log = Path(tempfile.mkstemp(prefix="onward-worker-", suffix=".log")[1])
        self.log_path = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=out,
                                         env=env or env_for())
        LIVE_WORKERS.append(self)
        self._ready = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 30.0) -> WorkerProcess:
        """Block until the worker has registered with the store (its first line)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if not line.startswith(b"worker ") or time.monotonic() > deadline:
            raise AssertionError(f"worker did not start: {line!r} (exit {self.proc.poll()}): "
                                 f"{self.log_path.read_text()[-2000:]}")
        self._ready = True
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for a graceful exit; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> WorkerProcess:
        return self if self._ready else self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
