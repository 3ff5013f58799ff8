"""``onward console --serve``: the same console in a browser, through textual-serve.

textual-serve answers each browser connection by starting the console in a process of its
own (the command built here: this ``onward console`` command line less ``--serve``,
``--port`` and ``--host``) and relaying the screen over a websocket."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from onward import BadInput

SERVE_OPTIONS = {"--serve": False, "--port": True, "--host": True}
"""Options of the serving process that the console processes must not get (True: they take
a value)."""


def console_command(argv: Sequence[str]) -> str:
    """The shell command that runs one console like ``onward ARGV`` minus the serving
    options (``--port 8000`` and ``--port=8000`` forms alike)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in SERVE_OPTIONS:
            skip = SERVE_OPTIONS[name] and "=" not in arg
            continue
        kept.append(arg)
    launcher = "import sys; from onward.cli import main; sys.exit(main())"
    return shlex.join([sys.executable, "-c", launcher, *kept])


def serve(argv: Sequence[str], host: str, port: int) -> int:
    """Serve the console at ``http://HOST:PORT`` until interrupted; the exit status."""
    try:
        from textual_serve.server import Server  # loaded only when serving
    except ImportError as err:
        raise BadInput("onward console --serve needs textual-serve: pip install "
                       "'onward[serve]'") from err
    command = console_command(argv)
    print(f"Serving the Onward console at http://{host}:{port} (ctrl+c to stop)",
          flush=True)
    Server(command, host=host, port=port, title="Onward console").serve()
    return 0
