"""``python -m tests.soak``: the soak from the command line (see the package docstring)."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from . import __doc__ as package_doc
from .chaos import run_soak
from .mix import SoakConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak",
                                     description=(package_doc or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="length of the chaos phase (runs start and kills land in it)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--settle", type=float, default=300.0,
                        help="seconds the runs may take to close after the chaos phase")
    parser.add_argument("--no-samples", action="store_true",
                        help="synthetic flows only (no reimbursement through the bank)")
    parser.add_argument("--dir", type=Path, help="keep the database and logs here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir even if OK")
    parser.add_argument("--db", help="postgresql://… : run on a fresh schema of this server")
    parser.add_argument("--pid-namespaces", action="store_true",
                        help="every worker in a PID namespace of its own (unshare; root)")
    parser.add_argument("--operators", type=int, default=0,
                        help="operator threads steering op-* ids during the chaos")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed}")
    report = run_soak(SoakConfig(
        runs=args.runs, workers=args.workers, kills=args.kills, seconds=args.seconds,
        concurrency=args.concurrency, seed=seed, settle_timeout=args.settle,
        samples=not args.no_samples, directory=args.dir, keep=args.keep, db=args.db,
        pid_namespaces=args.pid_namespaces, operators=args.operators))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
