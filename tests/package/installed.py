"""Build the wheel from this checkout's files and install it, with its dependencies from the
package index, into a clean virtual environment that never sees the checkout; run its
``onward`` and ``python`` there."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import REPO, wait_until

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
VERSION: str = PROJECT["version"]
DIST_INFO = f"onward-{VERSION}.dist-info"


def unreachable_index() -> str | None:
    """Why the package index cannot be reached (None when it can): the wheel's build
    backend and its dependencies come from there."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/")
    try:
        with urllib.request.urlopen(f"{index}/pip/", timeout=15) as reply:
            reply.read(1)
    except (urllib.error.URLError, OSError) as error:
        return f"no network to the package index {index}: {error}"
    return None


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points at the checkout or its
    venv (PYTHONPATH, VIRTUAL_ENV, ONWARD_*): the wheel's venv must stand alone."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
           and not k.startswith("ONWARD_")}
    env.update(extra)
    return env


def build_wheel(out: Path) -> Path:
    """Build the wheel from a copy of the checkout's files (tracked plus new, not ignored),
    so nothing left in ``build/`` or ``*.egg-info`` can slip into it."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    source = out / "source"
    for name in names:
        if name and (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    dist = out / "dist"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                           "-q", "-w", str(dist)], capture_output=True, text=True,
                          env=clean_env(), timeout=300)
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout}\n{done.stderr}"
    wheels = list(dist.glob("onward-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def record_hash(path: Path) -> str:
    """A file's hash as a wheel's RECORD writes it."""
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Installed:
    """A venv holding the wheel (and what pip installed with it)."""

    venv: Path
    site: Path
    top_level: set[str] = field(default_factory=set)
    """The names at the top of site-packages right after the wheel was installed."""

    @classmethod
    def create(cls, venv: Path, wheel: Path) -> Installed:
        """A fresh venv (no system site-packages) with ``wheel`` installed into it."""
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean_env(),
                       timeout=120)
        site = next((venv / "lib").glob("python3*/site-packages"))
        installed = cls(venv, site)
        # no byte-compiling: it is most of the install's time and changes nothing tested
        done = installed.pip("install", "-q", "--no-compile", str(wheel))
        assert done.returncode == 0, f"installing the wheel failed:\n{done.stderr}"
        installed.top_level = {p.name for p in site.iterdir()}
        return installed

    def bin(self, name: str) -> str:
        """The path of a script in the venv's bin folder."""
        return str(self.venv / "bin" / name)

    def run(self, *args: str, cwd: Path, timeout: float = 60.0,
            **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``args`` (its first item a script in the venv's bin) in ``cwd``."""
        return subprocess.run([self.bin(args[0]), *args[1:]], cwd=cwd, capture_output=True,
                              text=True, env=clean_env(**env), timeout=timeout)

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The venv's own pip."""
        return subprocess.run([self.bin("python"), "-m", "pip", *args], capture_output=True,
                              text=True, env=clean_env(), timeout=300, cwd=self.venv)

    def record(self, dist_info: str = DIST_INFO) -> list[tuple[str, str]]:
        """(path relative to site-packages, hash) for each line of a RECORD."""
        rows = []
        for line in (self.site / dist_info / "RECORD").read_text().splitlines():
            path, digest, _size = line.rsplit(",", 2)
            rows.append((path, digest))
        return rows

    def recorded_top_level(self) -> dict[str, set[str]]:
        """For each installed distribution, the names its RECORD puts at the top of
        site-packages (``../`` entries, the scripts, left out)."""
        tops: dict[str, set[str]] = {}
        for dist in self.site.glob("*.dist-info"):
            if (dist / "RECORD").is_file():
                tops[dist.name] = {path.split("/")[0] for path, _ in self.record(dist.name)
                                   if not path.startswith("../")}
        return tops

    def missing_or_changed(self) -> list[str]:
        """Files of onward's RECORD that are gone or whose content no longer matches."""
        bad = []
        for path, digest in self.record():
            file = (self.site / path).resolve()
            if not file.is_file():
                bad.append(f"{path}: missing")
            elif digest and record_hash(file) != digest:
                bad.append(f"{path}: changed")
        return bad


@contextlib.contextmanager
def worker(installed: Installed, flows: str, cwd: Path, name: str) -> Iterator[
        subprocess.Popen[bytes]]:
    """``onward worker --flows FLOWS`` in the background in ``cwd``, its output in
    ``cwd/NAME.out`` and ``.err``; ready once its banner is on stderr. Killed at the end."""
    out, err = cwd / f"{name}.out", cwd / f"{name}.err"
    # unbuffered: what the activities print reaches the file even when the worker is killed
    env = clean_env(PYTHONUNBUFFERED="1")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([installed.bin("onward"), "worker", "--flows", flows], cwd=cwd,
                                stdout=stdout, stderr=stderr, env=env)
    try:
        wait_until(lambda: "worker " in err.read_text() or proc.poll() is not None, 30,
                   f"the banner of {name}")
        assert proc.poll() is None, f"{name} exited: {err.read_text()}"
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)


ONE_STEP = '''\
from onward import activity, workflow

@activity.defn
def shout(text: str) -> str:
    return text.upper()

@workflow.defn
async def one(text: str) -> str:
    return await workflow.execute_activity(shout, text)
'''


def one_step_run(installed: Installed, cwd: Path, run_id: str) -> str:
    """Run a one-activity workflow through a worker of the venv in ``cwd``; its result."""
    (cwd / "one.py").write_text(ONE_STEP)
    with worker(installed, "one.py", cwd, f"worker-{run_id}"):
        started = installed.run("onward", "start", "one", "--input", '["hi"]', "--id", run_id,
                                cwd=cwd)
        assert started.returncode == 0, started.stderr
        result = installed.run("onward", "result", run_id, "--wait", "30", cwd=cwd)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()
