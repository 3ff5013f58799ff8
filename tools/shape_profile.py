"""Where the concurrent shapes' time goes: ``python tools/shape_profile.py SHAPE [options]``.

    drain     N runs pre-started with no worker, then drained by an in-process worker (×32)
    stream    one caller starts N runs back to back while the worker drains them
    threads   C caller threads, each ``start`` → ``result`` in a loop for S seconds

The shapes of ``python -m bench --only drain,stream,threads`` (bench/shapes.py), on the
benchmarks' 3-step workflow. Printed per workflow: wall time, CPU time of the whole process
(``time.process_time``: every thread) and by thread kind, commits, group-commit batches and
jobs, dispatcher turns, outcomes settled inline, SQL statements (``--sql``), and context
switches; with ``--yappi`` the functions with the most CPU time (all threads, own time and
with callees). ``--sync OFF`` takes the fsyncs out. Figures only: nothing here is a test.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FLOWS = REPO / "bench" / "flows.py"
WORKFLOW = "plain_three_steps"
CONCURRENCY = 32


def _connections() -> list[Any]:
    import apsw
    return [o for o in gc.get_objects() if isinstance(o, apsw.Connection)]


def _task_stats() -> dict[int, tuple[float, int, int]]:
    """CPU seconds and voluntary / involuntary context switches of each live thread (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[float, int, int]] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text().splitlines()
        except OSError:
            continue
        switches = {line.split(":")[0]: int(line.split()[1]) for line in status
                    if "ctxt_switches" in line}
        out[int(task.name)] = ((int(stat[11]) + int(stat[12])) / tick,
                               switches.get("voluntary_ctxt_switches", 0),
                               switches.get("nonvoluntary_ctxt_switches", 0))
    return out


def _kind(name: str) -> str:
    for prefix, kind in (("onward-activity", "activity threads"),
                         ("onward-dispatcher", "dispatcher"), ("bench-caller", "callers"),
                         ("MainThread", "main")):
        if name.startswith(prefix):
            return kind
    return "other"


class Probe:
    """Counters read before and after the measured part."""

    def __init__(self, eng: Any, sql: bool) -> None:
        self.eng = eng
        self.sql = sql
        self.statements: collections.Counter[str] = collections.Counter()

    def begin(self) -> None:
        import apsw
        self.tracing = self.sql
        if self.sql:  # (connections opened later are not traced: warm up first)
            for conn in _connections():
                for _ in range(1000):  # a pool connection may be mid-statement elsewhere
                    try:
                        conn.trace_v2(apsw.SQLITE_TRACE_STMT, self._traced)
                        break
                    except apsw.ThreadingViolationError:
                        time.sleep(0.001)
        eng = self.eng
        worker = eng.runtime.workers[0] if eng.runtime.workers else None
        self.worker = worker
        self.c0 = (eng.store.commits, eng.runtime.committer.batches, eng.runtime.committer.jobs)
        self.w0 = (worker.ticks, worker.inline_settled) if worker else (0, 0)
        self.tasks0 = _task_stats()
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def _traced(self, event: dict[str, Any]) -> None:
        if self.tracing:
            text = " ".join(str(event["sql"]).split())[:80]
            self.statements[text] += 1

    def end(self) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        eng = self.eng
        tasks = _task_stats()
        names = {t.native_id: t.name for t in threading.enumerate()}
        self.by_kind: collections.Counter[str] = collections.Counter()
        self.switches = [0, 0]
        for tid, (cpu, vol, invol) in tasks.items():
            b_cpu, b_vol, b_invol = self.tasks0.get(tid, (0.0, 0, 0))
            self.by_kind[_kind(names.get(tid, "?"))] += cpu - b_cpu
            self.switches[0] += vol - b_vol
            self.switches[1] += invol - b_invol
        self.by_kind["exited threads"] += max(0.0, self.cpu - sum(self.by_kind.values()))
        c = (eng.store.commits, eng.runtime.committer.batches, eng.runtime.committer.jobs)
        self.commits, self.batches, self.jobs = (a - b for a, b in zip(c, self.c0, strict=True))
        w = (self.worker.ticks, self.worker.inline_settled) if self.worker else (0, 0)
        self.ticks, self.inline = (a - b for a, b in zip(w, self.w0, strict=True))
        self.tracing = False

    def report(self, n: int, extra: str = "") -> None:
        print(f"{n} workflows: {n / self.wall:,.0f} wf/s{extra}")
        print(f"per workflow: wall {self.wall / n * 1e6:,.0f} us, CPU {self.cpu / n * 1e6:,.0f} us"
              f" (all threads), commits {self.commits / n:.3f}, batches {self.batches / n:.3f},"
              f" jobs {self.jobs / n:.3f}, turns {self.ticks / n:.3f}, inline settles "
              f"{self.inline / n:.3f}")
        total = sum(self.by_kind.values()) or 1.0
        print("CPU by thread kind (/proc, per workflow): " + ", ".join(
            f"{kind} {sec / n * 1e6:,.0f} us ({sec / total:.0%})"
            for kind, sec in self.by_kind.most_common()))
        print(f"context switches per workflow: voluntary {self.switches[0] / n:.1f}, "
              f"involuntary {self.switches[1] / n:.1f}")
        if self.sql:
            print(f"SQL: {sum(self.statements.values()) / n:.1f} statements per workflow")
            for text, count in self.statements.most_common(25):
                print(f"  {count / n:6.2f}  {text}")


def _engine(db: Path) -> Any:
    from onward import Engine
    return Engine(db, flows=[str(FLOWS)])


def _wait_completed(eng: Any, n: int) -> None:
    """Wait as the benchmark does until ``n`` runs completed."""
    from bench.onward_bench import _wait_completed as wait
    wait(eng, n, timeout=max(120.0, n / 5))


def drain(tmp: Path, n: int, sql: bool, profiler: Any) -> None:
    """N runs started with no worker, then drained."""
    db = tmp / "drain.db"
    with _engine(db) as eng:
        for i in range(n):
            eng.start(WORKFLOW, i)
        probe = Probe(eng, sql)
        with eng.worker(concurrency=CONCURRENCY):
            probe.begin()
            profiler.start()
            _wait_completed(eng, n)
            profiler.stop()
            probe.end()
    probe.report(n)


def stream(tmp: Path, n: int, sql: bool, profiler: Any) -> None:
    """One caller starts N runs back to back while the worker drains them."""
    db = tmp / "stream.db"
    with _engine(db) as eng, eng.worker(concurrency=CONCURRENCY):
        for i in range(5):
            eng.start(WORKFLOW, -i - 10).result(timeout=60)
        warmed = eng.counts()["completed"]
        probe = Probe(eng, sql)
        probe.begin()
        profiler.start()
        handles = [eng.start(WORKFLOW, i) for i in range(n)]
        started = time.perf_counter() - probe.wall
        _wait_completed(eng, warmed + n)
        profiler.stop()
        probe.end()
        for i, handle in enumerate(handles):
            if handle.result(timeout=60) != i + 3:
                raise SystemExit(f"{WORKFLOW}({i}) returned a wrong result")
    probe.report(n, f" (starts took {started:.2f} s)")


def threads(tmp: Path, callers: int, seconds: float, sql: bool, profiler: Any) -> None:
    """``callers`` threads, each start → result in a loop, for ``seconds``."""
    from bench.shapes import caller_loop, latency_stats
    db = tmp / "threads.db"
    cpu: list[float] = []

    def caller(*args: Any) -> None:
        caller_loop(eng, *args)
        cpu.append(time.thread_time())  # a caller's CPU, read before it exits

    with _engine(db) as eng, eng.worker(concurrency=max(CONCURRENCY, callers)):
        for i in range(5):
            eng.start(WORKFLOW, -i - 10).result(timeout=60)
        go = threading.Event()
        stop_at = [0.0]
        latencies: list[list[float]] = [[] for _ in range(callers)]
        failures: list[str] = []
        pool = [threading.Thread(target=caller, daemon=True, name=f"bench-caller-{c}",
                                 args=(c, go, stop_at, latencies[c], failures))
                for c in range(callers)]
        for t in pool:
            t.start()
        probe = Probe(eng, sql)
        probe.begin()
        profiler.start()
        stop_at[0] = time.perf_counter() + seconds
        go.set()
        for t in pool:
            t.join()
        profiler.stop()
        probe.end()
    if failures:
        raise SystemExit(failures[0])
    probe.by_kind["exited threads"] -= sum(cpu)
    probe.by_kind["callers"] += sum(cpu)
    flat = [x for per in latencies for x in per]
    stats = latency_stats(flat)
    probe.report(len(flat), f" ({callers} callers; p50 {stats['p50_ms']:.1f} ms, "
                 f"p99 {stats['p99_ms']:.1f} ms)")


class NoProfiler:
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Yappi:
    """yappi on the CPU clock, all threads; prints the top functions when stopped."""

    def __init__(self, top: int, per_workflow: int | None = None) -> None:
        self.top = top

    def start(self) -> None:
        import yappi
        yappi.set_clock_type("cpu")
        yappi.start(builtins=True)

    def stop(self) -> None:
        import yappi
        yappi.stop()
        self.stats = yappi.get_func_stats()
        self.threads = yappi.get_thread_stats()

    def print(self, n: int) -> None:
        total = sum(t.ttot for t in self.threads)
        print(f"yappi: {total / n * 1e6:,.0f} us CPU per workflow under the profiler")
        for t in sorted(self.threads, key=lambda t: -t.ttot)[:8]:
            print(f"  thread {t.name:<22} {t.ttot / n * 1e6:8.0f} us")
        for key, title in (("ttot", "with callees"), ("tsub", "own time")):
            print(f"top {self.top} by {title} (us per workflow, calls per workflow):")
            for st in sorted(self.stats, key=lambda s: -getattr(s, key))[:self.top]:
                where = f"{Path(st.module).name}:{st.lineno} {st.name}"
                print(f"  {getattr(st, key) / n * 1e6:8.1f}  {st.ncall / n:7.2f}  {where[:100]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=["drain", "stream", "threads"])
    parser.add_argument("--n", type=int, default=2000, help="workflows (drain, stream)")
    parser.add_argument("--callers", type=int, default=32, help="caller threads (threads)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long (threads)")
    parser.add_argument("--sync", default="FULL", choices=["OFF", "NORMAL", "FULL"])
    parser.add_argument("--sql", action="store_true", help="count SQL statements")
    parser.add_argument("--yappi", type=int, default=0, metavar="TOP",
                        help="profile with yappi and print the TOP functions")
    parser.add_argument("--switch", type=float, default=None,
                        help="sys.setswitchinterval (seconds) for the run")
    args = parser.parse_args(argv)
    os.environ["ONWARD_SYNCHRONOUS"] = args.sync
    if args.switch is not None:
        sys.setswitchinterval(args.switch)
    sys.path.insert(0, str(REPO))
    profiler: Any = Yappi(args.yappi) if args.yappi else NoProfiler()
    tmp = Path(tempfile.mkdtemp(prefix="onward-shape-"))
    if args.shape == "drain":
        drain(tmp, args.n, args.sql, profiler)
        n = args.n
    elif args.shape == "stream":
        stream(tmp, args.n, args.sql, profiler)
        n = args.n
    else:
        threads(tmp, args.callers, args.seconds, args.sql, profiler)
        n = 0
    if args.yappi:
        import yappi
        starts = [s.ncall for s in yappi.get_func_stats() if s.name == "Engine.start"]
        profiler.print(n or (starts[0] if starts else 1))

if __name__ == "__main__":
    main()
