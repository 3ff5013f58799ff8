"""The lowest-versions CI step: prove that the minimum versions in pyproject.toml work.

Creates a venv holding uv (installed from the package index), then a second venv into which
uv installs the project (editable, with the ``postgres`` extra and the ``test`` group)
resolving every direct dependency to the OLDEST release pyproject.toml allows
(``--resolution lowest-direct``); prints what it chose for each direct dependency, then runs
the unit tests and one console Pilot test with that venv. Exit status: the tests' (1 when
one fails), 2 for bad arguments.

    python3 tools/lowest_versions.py                     # what .ci/run does
    python3 tools/lowest_versions.py --pin textual==7.3.0 -- tests/console/test_app.py

``--pin`` overrides a requirement (even below its floor): the way to try a candidate
minimum. Package indexes: uv does not read pip's configuration, so the index URLs and
find-links pip is configured with (when they exist) are given to uv too, and uv considers
every index's releases, as pip does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("postgres",)
GROUPS = ("test",)
TESTS = ("tests/unit", "tests/console/test_app.py::test_start_a_workflow_from_the_dialog")


def direct_dependencies() -> list[str]:
    """The names of the project's direct requirements that this step installs."""
    toml = tomllib.loads((ROOT / "pyproject.toml").read_text())
    specs = list(toml["project"]["dependencies"])
    for extra in EXTRAS:
        specs += toml["project"]["optional-dependencies"][extra]
    for group in GROUPS:
        specs += [s for s in toml["dependency-groups"][group] if isinstance(s, str)]
    names = [re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0] for spec in specs]
    return list(dict.fromkeys(names))


def _pip_config() -> dict[str, str]:
    """pip's configuration (files and PIP_* variables), keys without their scope."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                            capture_output=True, text=True).stdout
    config = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        config[key.rsplit(".", 1)[-1]] = value.strip().strip("'\"")
    return config


def _exists(location: str) -> bool:
    """True for a remote URL and for a local folder (or file:// URL) that exists."""
    if location.startswith("file://"):
        return Path(location.removeprefix("file://")).exists()
    return "://" in location or Path(location).exists()


def uv_environment() -> dict[str, str]:
    """The environment for uv: the indexes and find-links pip uses, when they exist."""
    env = dict(os.environ)
    config = _pip_config()
    for pip_key, uv_key in (("index-url", "UV_DEFAULT_INDEX"),
                            ("extra-index-url", "UV_EXTRA_INDEX_URL"),
                            ("find-links", "UV_FIND_LINKS")):
        found = [loc for loc in config.get(pip_key, "").split() if _exists(loc)]
        if found:
            env[uv_key] = " ".join(found) if uv_key != "UV_FIND_LINKS" else ",".join(found)
    if "UV_EXTRA_INDEX_URL" in env or "UV_FIND_LINKS" in env:
        # uv's default takes each package from the first index that has it, which would hide
        # the older releases of a package a local mirror holds a few of; pip merges them all
        env.setdefault("UV_INDEX_STRATEGY", "unsafe-best-match")
    return env


def run(*args: str | Path, **kwargs: object) -> None:
    """Run a command, echoing it; stop with its exit status when it fails."""
    print("+", " ".join(map(str, args)), flush=True)
    done = subprocess.run([str(a) for a in args], cwd=ROOT, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        sys.exit(done.returncode)


def main(argv: list[str] | None = None) -> int:
    """Install the lowest versions into ``--dir``/venv and run the tests there."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="working folder, emptied first and kept (default: a temporary "
                             "folder, removed at the end)")
    parser.add_argument("--pin", action="append", default=[], metavar="SPEC",
                        help="override a requirement, e.g. textual==7.3.0 (repeatable)")
    parser.add_argument("tests", nargs="*", default=list(TESTS),
                        help="pytest arguments (default: tests/unit and one console test)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.dir is None:
        work = Path(tempfile.mkdtemp(prefix="onward-lowest-"))
        work.chmod(0o755)  # tests that drop to user nobody import onward from this venv
        try:
            return _lowest(work, args.pin, args.tests, started)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    return _lowest(args.dir.resolve(), args.pin, args.tests, started)


def _lowest(work: Path, pins: list[str], tests: list[str], started: float) -> int:
    """Install into ``work``/venv and run ``tests`` there; pytest's exit status."""
    tool, venv = work / "uv", work / "venv"
    run(sys.executable, "-m", "venv", tool)
    run(tool / "bin/python", "-m", "pip", "install", "--quiet", "uv")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    install: list[str | Path] = [
        tool / "bin/uv", "pip", "install", "--python", venv / "bin/python",
        "--resolution", "lowest-direct", "-e", f".[{','.join(EXTRAS)}]"]
    for group in GROUPS:
        install += ["--group", group]
    if pins:
        overrides = work / "overrides.txt"
        overrides.write_text("\n".join(pins) + "\n")
        install += ["--override", overrides]
    run(*install, env=uv_environment())
    script = ("import importlib.metadata as m, json, sys\n"
              "print(json.dumps({n: m.version(n) for n in json.loads(sys.argv[1])}))")
    versions = subprocess.run([venv / "bin/python", "-c", script,
                               json.dumps(direct_dependencies())], capture_output=True,
                              text=True, check=True).stdout
    print("lowest direct dependencies installed:")
    for name, version in json.loads(versions).items():
        print(f"  {name}=={version}")
    print(f"installed in {time.monotonic() - started:.0f} s", flush=True)
    done = subprocess.run([venv / "bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *tests], cwd=ROOT)
    print(f"lowest versions: tests exited {done.returncode} after "
          f"{time.monotonic() - started:.0f} s in all", flush=True)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
