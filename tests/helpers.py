"""Shared test helpers: real worker processes, the CLI as a subprocess, bounded waits."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def executions(log: Path) -> list[dict[str, Any]]:
    """The lines test activities appended to ``log`` (``$ONWARD_TEST_LOG``), one per run."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0,
               message: str | Callable[[], str] = "", interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (and return that); after
    ``timeout`` s fail with AssertionError naming ``message`` (a callable: called then).
    The one bounded wait of the tests, the soak and the benchmarks."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            what = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout}s waiting for: "
                                 f"{what or predicate}")
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


def gated_env(tmp_path: Path) -> dict[str, str]:
    """A subprocess environment whose test activities log to ``tmp_path/log.jsonl`` and wait
    at gates (files) in ``tmp_path/gates``."""
    gates = tmp_path / "gates"
    gates.mkdir(exist_ok=True)
    return env_for(ONWARD_TEST_LOG=str(tmp_path / "log.jsonl"), ONWARD_TEST_GATES=str(gates))


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``onward ARGS`` in a fresh interpreter and capture its output."""
    return subprocess.run([sys.executable, "-m", "onward.cli", *args], capture_output=True,
                          text=True, env=env or env_for(), timeout=timeout, cwd=cwd)


def cli_json(*args: str, **kwargs: Any) -> Any:
    """Run a ``--json`` command and parse its output (asserting it succeeded)."""
    done = cli(*args, "--json", **kwargs)
    assert done.returncode == 0, f"onward {' '.join(args)} failed: {done.stderr}"
    return json.loads(done.stdout)


LIVE_WORKERS: list[WorkerProcess] = []
"""Every worker process started and not yet reaped by :func:`kill_leftover_workers`."""

_log_folder: Callable[[], Path] | None = None


def worker_logs_in(folder: Callable[[], Path] | None) -> None:
    """Where a :class:`WorkerProcess` started without ``log=`` writes its log: the folder
    ``folder()`` returns (tests/conftest.py points it at the running test's ``tmp_path``)."""
    global _log_folder
    _log_folder = folder


def _default_log() -> Path:
    if _log_folder is None:
        raise ValueError("WorkerProcess needs log= (a path) outside a test")
    folder = _log_folder()
    for n in itertools.count(1):
        path = folder / f"worker-{n}.log"
        try:
            path.open("x").close()  # made here and now: two workers never share a log
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def kill_leftover_workers() -> None:
    """SIGKILL every worker process a test started and did not stop (teardown)."""
    while LIVE_WORKERS:
        worker = LIVE_WORKERS.pop()
        if worker.proc.poll() is None:
            worker.kill()


UNSHARE_PID = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"]
"""The wrapper that starts a worker as pid 1 of a PID namespace of its own (needs root)."""


class WorkerProcess:
    """``onward worker`` in a subprocess that tests, the soak and the benchmarks SIGKILL.

    Its stderr (banner and log records) is copied line by line to ``log`` by a thread of its
    own, which also spots the banner (printed once the worker has registered), so waiting
    for it ends at its deadline even while the worker prints nothing, and the pipe never
    fills. ``prefix`` runs the worker under a
    wrapper command (``pid_namespace=True``: :data:`UNSHARE_PID`); signals then go to the
    worker inside the wrapper.
    """

    _reader: threading.Thread | None = None
    _first_line: bytes = b""
    wrapped = False
    """True when a wrapper command (``prefix``/``pid_namespace``) runs the worker."""
    worker_id: str | None = None
    """The id the worker printed in its first line (after :meth:`wait_ready`)."""
    first_line = ""
    """The line the worker printed once registered: its id, workflow and activity counts
    (after :meth:`wait_ready`)."""

    def __init__(self, db: Path | str, *, flows: Sequence[str | Path] = (),
                 plugins: Sequence[str | Path] = (), concurrency: int = 4,
                 env: dict[str, str] | None = None, extra: list[str] | None = None,
                 log: Path | None = None, prefix: Sequence[str] = (),
                 pid_namespace: bool = False, cwd: Path | None = None) -> None:
        args = [sys.executable, "-m", "onward.cli", "worker", "--db", str(db),
                "--concurrency", str(concurrency)]
        for f in flows:
            args += ["--flows", str(f)]
        for p in plugins:
            args += ["--plugins", str(p)]
        args += extra or []
        wrapper = [*prefix, *(UNSHARE_PID if pid_namespace else [])]
        self.wrapped = bool(wrapper)
        self.log_path = log if log is not None else _default_log()
        self.proc = subprocess.Popen([*wrapper, *args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env or env_for(), cwd=cwd)
        LIVE_WORKERS.append(self)
        self._ready = False
        self._start_reader()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        """True until the process (the wrapper, if any) has exited."""
        return self.proc.poll() is None

    def _start_reader(self) -> None:
        """Copy stderr to the log in a daemon thread, watching for the banner."""
        if self._reader is not None:
            return
        self._line_read = threading.Event()
        self._reader = threading.Thread(target=self._read_output, daemon=True,
                                        name=f"worker-{self.pid}-stderr")
        self._reader.start()

    def _read_output(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        try:
            with open(self.log_path, "ab", buffering=0) as out:
                for line in iter(stderr.readline, b""):
                    out.write(line)
                    if not self._line_read.is_set() and line.startswith(b"worker "):
                        self._first_line = line
                        self._line_read.set()
        finally:
            self._line_read.set()
            stderr.close()

    def wait_ready(self, timeout: float = 30.0) -> WorkerProcess:
        """Block until the worker has registered with the store (its first line); after
        ``timeout`` s, or if it exits first, kill it and fail naming its exit and log."""
        self._start_reader()
        seen = self._line_read.wait(timeout)
        line = self._first_line
        if not seen or not line.startswith(b"worker "):
            self.kill()
            why = f"no line within {timeout}s" if not seen else repr(line)
            raise AssertionError(f"worker pid {self.pid} did not start ({why}; exit "
                                 f"{self.proc.poll()}): {self.tail()}")
        self.first_line = line.decode(errors="replace")
        self.worker_id = line.split()[1].decode()
        self._ready = True
        return self

    def tail(self, chars: int = 2000) -> str:
        """The last ``chars`` characters of the worker's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _targets(self) -> list[int]:
        """The pids to signal: the worker inside the wrapper, or the process itself."""
        if self.wrapped:
            try:
                text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
            except OSError:
                text = ""
            if text.split():
                return [int(p) for p in text.split()]
        return [self.pid]

    def _signal(self, sig: signal.Signals) -> None:
        for pid in self._targets():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye (the wrapper too, if any)."""
        if self.proc.poll() is None:
            if self.wrapped:
                self._signal(signal.SIGKILL)
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait for a graceful exit; its status, or None if it had to be
        SIGKILLed after ``timeout`` s."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def __enter__(self) -> WorkerProcess:
        return self if self._ready else self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
