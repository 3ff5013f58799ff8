"""The command line as a process: --version, colours in help (NO_COLOR), shell completion
through argcomplete's protocol, and a worker refusing a bad port before it opens anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from onward import Engine, __version__
from tests.helpers import cli, env_for

ESCAPE = "\x1b["
FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "basic.py")


def test_version_prints_the_package_version() -> None:
    done = cli("--version")
    assert done.returncode == 0 and done.stdout == f"onward {__version__}\n"


def test_help_is_coloured_on_a_colour_terminal_and_plain_under_no_color() -> None:
    base = env_for()
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE"):
        base.pop(name, None)
    coloured = cli("--help", env={**base, "FORCE_COLOR": "1"})
    assert coloured.returncode == 0 and ESCAPE in coloured.stdout  # the check can fail
    # rich alone drops colours under NO_COLOR but keeps bold (`commands` in backquotes)
    plain = cli("--help", env={**base, "FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.returncode == 0 and ESCAPE not in plain.stdout
    assert "ONWARD_PLUGINS" in plain.stdout and "`onward COMMAND --help`" in plain.stdout
    piped = cli("list", "--help", env=base)  # not a terminal: no colours either
    assert piped.returncode == 0 and ESCAPE not in piped.stdout
    assert "--limit N" in piped.stdout and "examples:" in piped.stdout


def complete(line: str, tmp_path: Path) -> list[str]:
    """What ``onward`` offers for ``line`` (cursor at its end), asked the way the shell
    code asks: ``$_ARGCOMPLETE``, ``$COMP_LINE``, ``$COMP_POINT``, answers on fd 8."""
    read, write = os.pipe()
    env = {**env_for(), "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "COMP_TYPE": "9"}
    env.pop("_ARC_DEBUG", None)
    try:
        # fd 8 is made in the child just before exec (close_fds would close it after);
        # Python's own descriptors are not inherited (PEP 446), so nothing else leaks in
        child = subprocess.Popen(
            [sys.executable, "-m", "onward.cli"], env=env, cwd=tmp_path, close_fds=False,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=lambda: os.dup2(write, 8))  # the fd argcomplete answers on
    finally:
        os.close(write)
    with os.fdopen(read) as answers:
        text = answers.read()
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    return [word.strip() for word in text.split("\n") if word.strip()]


def test_completion_offers_subcommands_and_option_choices(tmp_path: Path) -> None:
    assert set(complete("onward re", tmp_path)) == {"result", "replay", "resume", "retry",
                                                     "reset"}
    assert complete("onward list --output ", tmp_path) == ["text", "json", "jsonl"]
    assert not (tmp_path / "onward.db").exists()  # completing makes no database


def test_completion_offers_the_run_ids_of_the_database_on_the_line(tmp_path: Path) -> None:
    db = tmp_path / "ids.db"
    eng = Engine(db, flows=[FLOWS])
    for ident in ("claim-1", "claim-2", "other"):
        eng.start("three_steps", 1, id=ident)
    eng.close()
    assert sorted(complete(f"onward --db {db} show cl", tmp_path)) == ["claim-1", "claim-2"]
    assert complete(f"onward show --db {tmp_path / 'missing.db'} cl", tmp_path) == []
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_bash_completion_script_completes_through_the_installed_command(
        tmp_path: Path) -> None:
    """`eval "$(onward completion bash)"`, then bash's completion function, as on TAB."""
    scripts = Path(sys.executable).parent
    if not (scripts / "onward").exists():
        pytest.skip("the onward command is not installed beside this interpreter")
    env = {**env_for(), "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = ('eval "$(onward completion bash)"\n'
              'COMP_LINE="onward comp"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=(onward comp)\n'
              'COMP_CWORD=1; COMP_TYPE=9\n'
              '_python_argcomplete onward comp onward\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["completion"]


@pytest.mark.parametrize("shell,marker", [("bash", "complete "), ("zsh", "#compdef onward"),
                                          ("fish", "complete ")])
def test_completion_prints_the_script_for_each_shell(shell: str, marker: str) -> None:
    done = cli("completion", shell)
    assert done.returncode == 0 and marker in done.stdout and "onward" in done.stdout


def test_completion_of_an_unknown_shell_is_refused() -> None:
    done = cli("completion", "powershell")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_worker_with_a_bad_port_stops_before_creating_its_database(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    done = cli("worker", "--db", str(db), "--metrics-port", "70000", timeout=30)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "--metrics-port" in done.stderr and not db.exists()
