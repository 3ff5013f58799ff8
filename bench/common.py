"""Shared plumbing for the benchmark sections: paths, subprocesses, waits, fsync counts."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BASIC_FLOWS = REPO / "tests" / "flows" / "basic.py"
BENCH_FLOWS = REPO / "bench" / "flows.py"
THROUGHPUT_WORKFLOW = "plain_three_steps"
"""The throughput sections' workflow (in BENCH_FLOWS): three trivial steps, as DBOS runs."""
SCRATCH = REPO / ".bench-tmp"


class BenchError(Exception):
    """A section could not produce its figure (the message says why)."""


def scratch_dir() -> Path:
    """A fresh directory under ``<repo>/.bench-tmp`` (same disk as the repository)."""
    SCRATCH.mkdir(exist_ok=True)
    ignore = SCRATCH / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# benchmark scratch space (python -m bench)\n*\n")
    return Path(tempfile.mkdtemp(prefix="run-", dir=SCRATCH))


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child interpreter: the repository importable, no test clock shift."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env.pop("ONWARD_TIME_SHIFT", None)
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.01) -> Any:
    """Poll ``predicate`` until truthy; BenchError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# -- worker processes -------------------------------------------------------------------
_children: list[subprocess.Popen[bytes]] = []


class WorkerProc:
    """``python -m engine.cli worker`` in a child process, its output in a log file."""

    def __init__(self, db: Path, log: Path, *, flows: Sequence[Path] = (BASIC_FLOWS,),
                 concurrency: int = 32, env: dict[str, str] | None = None) -> None:
        args = [sys.executable, "-m", "engine.cli", "worker", "--db", str(db),
                "--concurrency", str(concurrency)]
        for f in flows:
            args += ["--flows", str(f)]
        self.log = log
        self.launched = time.perf_counter()
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                         env=env or child_env(), cwd=REPO)
        _children.append(self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def is_ready(self) -> bool:
        if self.proc.poll() is not None:
            raise BenchError(f"worker exited with status {self.proc.returncode}: "
                             f"{self.tail()}")
        try:
            return any(line.startswith("worker ")
                       for line in self.log.read_text(errors="replace").splitlines())
        except FileNotFoundError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until the worker printed its first line; seconds since launch."""
        wait_for(self.is_ready, timeout, f"worker pid {self.pid} to start", 0.005)
        return time.perf_counter() - self.launched

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def run_child(args: Sequence[str], *, timeout: float, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """Run a child interpreter to completion, tracked so it is killed if we are interrupted."""
    proc = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env or child_env(), cwd=REPO)
    _children.append(proc)  # type: ignore[arg-type]
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise BenchError(f"{' '.join(args[1:4])} took longer than {timeout:.0f}s: "
                         f"{err[-800:]}") from None
    return subprocess.CompletedProcess(list(args), proc.returncode, out, err)


def kill_children() -> None:
    """SIGKILL every child process this run started that is still alive."""
    for proc in _children:
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS (bytes) of a live process, from /proc/<pid>/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "VmPeak", "VmSize"):
                out[key] = int(rest.split()[0]) * 1024
    return out


# -- fsync counting with strace ---------------------------------------------------------
def strace_path() -> str | None:
    return shutil.which("strace")


def count_fsyncs(args: Sequence[str], outdir: Path, *, timeout: float = 300.0
                 ) -> tuple[int, str]:
    """Run ``args`` under ``strace -f -c`` counting fsync/fdatasync; (count, child stdout)."""
    strace = strace_path()
    if strace is None:
        raise BenchError("strace is not installed")
    summary = Path(tempfile.mkstemp(prefix="strace-", suffix=".txt", dir=outdir)[1])
    base = [strace, "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(summary)]
    done = run_child([*base[:2], "--seccomp-bpf", *base[2:], *args], timeout=timeout)
    if done.returncode != 0 and "seccomp" in done.stderr:
        done = run_child([*base, *args], timeout=timeout)
    if done.returncode != 0:
        raise BenchError(f"strace run failed ({done.returncode}): {done.stderr[-600:]}")
    total = 0
    for line in summary.read_text().splitlines():
        match = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$",
                         line)
        if match:
            total += int(match.group(1))
    summary.unlink(missing_ok=True)
    return total, done.stdout
