"""A client process of the ``processes`` shape (run by ``bench.shapes.processes``).

    python -m bench.client --db PATH --callers C --seconds S

Opens its own Engine on PATH with an in-process worker (none with ``--no-worker``: worker
processes then run the runs), warms up, prints ``ready``, waits
for a ``go`` line on stdin, then runs C caller threads (``start`` → ``result`` in a loop)
for about S seconds and prints one JSON line: calls, per-call latencies (seconds), wall
times of its begin and end, commits, and any failures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client")
    parser.add_argument("--db", required=True)
    parser.add_argument("--callers", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--no-worker", action="store_true",
                        help="no in-process worker: worker processes run the runs")
    args = parser.parse_args(argv)
    from contextlib import nullcontext

    from .shapes import WORKER_CONCURRENCY, _engine, _warm, run_callers
    with _engine(Path(args.db)) as eng:
        worker = nullcontext() if args.no_worker else eng.worker(
            concurrency=max(WORKER_CONCURRENCY, args.callers))
        with worker:
            _warm(eng)
            print("ready", flush=True)
            if sys.stdin.readline().strip() != "go":
                return 1
            raw = run_callers(eng, args.callers, args.seconds)
    print(json.dumps(raw), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
