"""The wheel is what a user installs: built once from this checkout, installed with its
dependencies from the package index into a clean venv, it carries one import package,
``onward``, runs the README's tour from an empty folder, and lives beside PyPI's unrelated
``console``, ``engine`` and ``plugins`` distributions (names of the repository's folders).

Nothing here imports the checkout's ``onward`` into the venv: every command runs the
venv's own ``onward`` or ``python`` with PYTHONPATH cleared."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
import subprocess
import warnings
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, wait_until
from tests.package.installed import (
    DIST_INFO,
    VERSION,
    Installed,
    build_wheel,
    one_step_run,
    unreachable_index,
    worker,
)

pytestmark = pytest.mark.slow

LAYOUT = {"engine": "onward", "console": "onward/console", "plugins": "onward/plugins",
          "sample_flows": "onward/sample_flows"}
"""Each folder of the checkout and where its files belong in the wheel."""
NEVER_TOP_LEVEL = {"engine", "console", "plugins", "sample_flows", "tools", "tests", "bench",
                   "docs"}
FOREIGN = ("console", "engine", "plugins")
"""PyPI distributions named like the repository's folders."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once for the module."""
    reason = unreachable_index()
    if reason:
        pytest.skip(reason)
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A clean venv with the wheel and its dependencies installed (once for the module)."""
    return Installed.create(tmp_path_factory.mktemp("venv") / "venv", wheel)


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    """An empty working folder, outside the checkout."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    assert not folder.is_relative_to(REPO)
    return folder


def test_the_wheel_holds_onward_and_its_metadata_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"onward", DIST_INFO}
    assert "onward/py.typed" in names
    for folder, package in LAYOUT.items():
        tracked = subprocess.run(["git", "ls-files", folder], cwd=REPO, capture_output=True,
                                 text=True, check=True).stdout.split()
        shipped = [n for n in tracked if n.endswith((".py", ".tcss"))]
        expected = {package + n.removeprefix(folder) for n in shipped}
        assert expected <= set(names), f"missing from the wheel: {expected - set(names)}"
    assert any(n.endswith(".tcss") for n in names)


def test_installing_adds_only_onward_to_site_packages(installed: Installed) -> None:
    tops = installed.recorded_top_level()
    assert tops.pop(DIST_INFO) == {"onward", DIST_INFO}
    assert {"onward", DIST_INFO} <= installed.top_level
    assert not NEVER_TOP_LEVEL & installed.top_level
    # everything else at the top was put there by a dependency (or pip, setuptools)
    from_dependencies = set().union(*tops.values()) | {"__pycache__"}
    assert installed.top_level - {"onward", DIST_INFO} - from_dependencies == set()


def test_version_agrees_with_pyproject(installed: Installed, empty: Path) -> None:
    cli = installed.run("onward", "--version", cwd=empty)
    assert (cli.returncode, cli.stdout.strip()) == (0, f"onward {VERSION}"), cli.stderr
    code = installed.run("python", "-c", "import onward; print(onward.__version__)", cwd=empty)
    assert code.stdout.strip() == VERSION, code.stderr


def _tour() -> tuple[str, list[str]]:
    """hello.py and the shell lines of the README's tour, as written."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## A tour"):]
    section = section[:section.index("\n## ", 1)]
    python = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    shell = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert python and shell, "the README's tour lost its hello.py or its commands"
    return python.group(1), [line for line in shell.group(1).splitlines() if line.strip()]


def _history(installed: Installed, cwd: Path, run_id: str) -> list[dict[str, object]]:
    shown = installed.run("onward", "show", run_id, "--json", cwd=cwd)
    return json.loads(shown.stdout)["history"] if shown.returncode == 0 else []


def test_the_readme_tour_runs_from_an_empty_folder(installed: Installed, empty: Path) -> None:
    hello, lines = _tour()
    assert "await workflow.sleep(10)" in hello  # shortened: the rest is run as written
    (empty / "hello.py").write_text(hello.replace("workflow.sleep(10)", "workflow.sleep(5)"))
    jobs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        for n, line in enumerate(lines):
            words = shlex.split(line, comments=True)
            if words[:2] == ["kill", "-9"]:
                # the reader kills the worker while the timer runs
                wait_until(lambda: any(e["type"] == "TimerStarted"
                                       for e in _history(installed, empty, "h1")),
                           20, "the tour's timer to start")
                job = jobs[int(words[2].removeprefix("%")) - 1]
                job.send_signal(signal.SIGKILL)
                assert job.wait(10) == -signal.SIGKILL
                assert "TimerFired" not in {e["type"] for e in _history(installed, empty, "h1")}
                continue
            assert words[0] == ".venv/bin/onward", line  # the user's venv: here, ours
            args = ["onward", *words[1:]]
            if args[-1] == "&":
                flows = args[args.index("--flows") + 1]
                jobs.append(stack.enter_context(worker(installed, flows, empty, f"w{n}")))
                continue
            done = installed.run(*args, cwd=empty)
            assert done.returncode == 0, f"{line}: {done.stderr}"
            if args[1] == "result":
                assert done.stdout.strip() == '"hello, hello, ada"'
            if args[1] == "show":
                assert "TimerFired" in done.stdout and "WorkflowCompleted" in done.stdout
        assert len(jobs) == 2
    printed = [line for f in sorted(empty.glob("w*.out")) for line in f.read_text().splitlines()]
    assert [p.split(" (key")[0] for p in printed] == ["greeting ada", "greeting hello, ada"]
    completed = [e for e in _history(installed, empty, "h1") if e["type"] == "ActivityCompleted"]
    assert [e["attrs"]["attempt"] for e in completed] == [1, 1]  # type: ignore[index]


SHADOWS = ("engine", "console", "plugins", "sample_flows")

DEMO = """\
import json, onward.console.app, onward.cli
from onward import Engine
print(json.dumps([str(onward.cli.DEMO_FLOWS), str(onward.cli.DEMO_PLUGINS),
                  Engine.__module__]))
"""


def _shadowed_folder(folder: Path) -> Path:
    """``folder`` with a user's own engine.py, console.py, ... that fail when imported."""
    for name in SHADOWS:
        (folder / f"{name}.py").write_text(f"raise ImportError('the user\\'s {name}.py')\n")
    return folder


def test_user_modules_named_like_folders_do_not_shadow_onward(installed: Installed,
                                                               empty: Path) -> None:
    cwd = _shadowed_folder(empty)
    done = installed.run("python", "-c", DEMO, cwd=cwd)
    assert done.returncode == 0, done.stderr
    flows, plugins, engine_module = json.loads(done.stdout)
    assert engine_module.startswith("onward.")
    for folder in (Path(flows), Path(plugins)):  # what `onward console --demo` loads
        assert folder.parent == installed.site / "onward", folder
        assert list(folder.glob("*.py")), f"{folder} holds no code"
    assert installed.run("onward", "console", "--help", cwd=cwd).returncode == 0
    assert one_step_run(installed, cwd, "shadowed") == '"HI"'


def test_pypi_distributions_named_like_folders_break_nothing(installed: Installed,
                                                             empty: Path) -> None:
    version_before = installed.run("onward", "--version", cwd=empty)
    added = []
    for name in FOREIGN:
        done = installed.pip("install", "-q", "--no-compile", name)
        if done.returncode == 0:
            added.append(name)
        else:  # engine and plugins on PyPI have had no installable files
            last = done.stderr.strip().splitlines()[-1:] or ["?"]
            warnings.warn(f"PyPI's {name!r} does not install: {last[0]}", stacklevel=1)
    assert "console" in added
    check = installed.pip("check")
    assert check.returncode == 0, check.stdout
    version = installed.run("onward", "--version", cwd=empty)  # its own test checks the text
    assert (version.returncode, version.stdout) == (version_before.returncode,
                                                    version_before.stdout)
    imported = installed.run("python", "-c", DEMO, cwd=empty)
    assert imported.returncode == 0, imported.stderr
    assert one_step_run(installed, empty, "beside-pypi") == '"HI"'
    removed = installed.pip("uninstall", "-y", "console")
    assert removed.returncode == 0, removed.stderr
    assert not (installed.site / "console").exists()
    assert installed.missing_or_changed() == []
