"""``onward console --serve``: the console in a browser (textual-serve), driven in headless
Chromium through chromedriver; and the serving options' command line."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from onward import Engine
from onward.console.serve import console_command

from .conftest import FLOWS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
LAUNCH = "import sys; from onward.cli import main; sys.exit(main())"
ANSI = re.compile(r"\x1b\[[0-9;?$]*[a-zA-Z]|\x1b\][^\x07]*\x07")
# Every websocket message the page receives (the console's screen output), kept for the test.
TAP = """
window.__screen = [];
const Native = window.WebSocket;
window.WebSocket = function (...args) {
  const ws = new Native(...args);
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data === 'string') { window.__screen.push(ev.data); }
    else if (ev.data instanceof Blob) { ev.data.text().then((t) => window.__screen.push(t)); }
    else { window.__screen.push(new TextDecoder().decode(ev.data)); }
  });
  return ws;
};
window.WebSocket.prototype = Native.prototype;
Object.assign(window.WebSocket, Native);
"""


def test_the_console_command_drops_only_the_serving_options() -> None:
    command = console_command(["console", "--db", "a b.db", "--serve", "--port", "9000",
                               "--host=0.0.0.0", "--demo", "--port=81"])
    assert command.endswith("console --db 'a b.db' --demo")
    assert sys.executable in command


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_a_bad_port_is_refused_with_exit_2(port: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", LAUNCH, "console", "--db",
                           str(tmp_path / "x.db"), "--serve", "--port", port],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--port" in done.stderr and port in done.stderr
    assert not (tmp_path / "x.db").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(make_engine: Any, workdir: Path) -> Iterator[int]:
    """A database with one run, served by ``onward console --serve``; yields the port."""
    engine: Engine = make_engine(flows=[FLOWS])
    engine.start("waiter", "go-live", id="launch-1")
    db = str(workdir / "onward.db")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "console", "--db", db, "--flows", FLOWS,
         "--no-worker", "--serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert server.stdout is not None
        first = server.stdout.readline()  # printed before the server starts listening
        assert f"http://127.0.0.1:{port}" in first, first
        deadline = time.monotonic() + 30
        while True:  # the only wait: for the port to accept connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("the console server did not start listening") from None
                time.sleep(0.1)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the consoles it started
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _screen(driver: Any) -> str:
    """Everything the console has drawn in the page so far, without escape codes."""
    return ANSI.sub("", str(driver.execute_script("return window.__screen.join('')")))


def _until(driver: Any, predicate: Any, what: str, within: float = 30.0) -> str:
    deadline = time.monotonic() + within
    while True:
        text = _screen(driver)
        if predicate(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the page showed: "
                                 f"{text[-800:]!r}")
        time.sleep(0.2)


@pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                    reason="needs Debian's chromium and chromium-driver (.ci/run installs "
                           "them)")
def test_the_console_in_a_browser_shows_runs_and_answers_keys(served: int) -> None:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                # the page asks for a web font: nothing may leave this machine
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TAP})
        driver.get(f"http://127.0.0.1:{served}/")
        before = _until(driver, lambda t: "launch-1" in t and "Onward · Runs" in t,
                        "the runs screen with launch-1")
        assert "Help — keys and symbols" not in before
        keys = driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")
        keys.send_keys("?")
        shown = _until(driver, lambda t: "Help — keys and symbols" in t[len(before):],
                       "the help screen after pressing ?")
        keys.send_keys(Keys.ESCAPE)  # back to the runs, redrawn whole
        _until(driver, lambda t: "Onward · Runs" in t[len(shown):] and
               "launch-1" in t[len(shown):], "the runs screen again after escape")
    finally:
        driver.quit()
