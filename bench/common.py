"""Shared plumbing for the benchmark sections: paths, child interpreters, fsync counts.

Worker processes and bounded waits are the tests' own (``tests.helpers.WorkerProcess``,
``wait_until``): one implementation for the suite, the soak and the benchmarks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tests.helpers import env_for, kill_leftover_workers

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


# -- child interpreters -----------------------------------------------------------------
_children: list[subprocess.Popen[str]] = []


def run_child(args: Sequence[str], *, timeout: float, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    """Run a child interpreter to completion, tracked so it is killed if we are interrupted."""
    proc = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env or env_for(), cwd=REPO)
    _children.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise BenchError(f"{' '.join(args[1:4])} took longer than {timeout:.0f}s: "
                         f"{err[-800:]}") from None
    return subprocess.CompletedProcess(list(args), proc.returncode, out, err)


def kill_children() -> None:
    """SIGKILL every child process and worker process this run started that is still alive."""
    kill_leftover_workers()
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


def tracked_popen(args: Sequence[str], *, log: Path) -> subprocess.Popen[str]:
    """A child interpreter talking on stdin/stdout (text lines), its stderr in ``log``;
    tracked so it is killed if we are interrupted."""
    with open(log, "w") as err:
        proc = subprocess.Popen(list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=err, text=True, env=env_for(), cwd=REPO)
    _children.append(proc)
    return proc
