"""Onward's ``seq`` shape in a child interpreter (the ``dura`` section runs it on the same
Python as dura): ``python -m bench.seq_child --dir DIR --n N`` prints one JSON line."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seq_child")
    parser.add_argument("--dir", required=True, help="an existing directory for the database")
    parser.add_argument("--n", type=int, required=True)
    args = parser.parse_args(argv)
    from .onward_bench import sequential
    fig = sequential(Path(args.dir), args.n, None)
    print(json.dumps({**fig, "python": platform.python_version()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
