"""How the ``onward`` command logs: every record under the ``onward`` logger, on stderr,
as text or one JSON object per line, with the run's ids as fields when a record has them.

Library users configure logging themselves; only the CLI (worker, console) calls
:func:`configure_logging`. Other libraries' loggers (watchfiles, asyncio, psycopg) are held
at WARNING so that their chatter ("2 changes detected") does not bury the engine's records.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
FIELDS = ("workflow_id", "run_id", "activity", "attempt")
"""Record attributes the engine sets on records about a run (``extra=``)."""

QUIET = ("watchfiles", "asyncio", "psycopg", "psycopg.pool", "markdown_it")


class TextFormatter(logging.Formatter):
    """``time level logger: message [field=value ...]`` on one line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{name}={getattr(record, name)}" for name in FIELDS
                  if getattr(record, name, None) is not None]
        return f"{line} [{' '.join(fields)}]" if fields else line


def json_formatter() -> logging.Formatter:
    """One JSON object per record: time, level, logger, message and the run's fields."""
    from pythonjsonlogger.json import JsonFormatter
    return JsonFormatter("{asctime}{levelname}{name}{message}", style="{",
                         rename_fields={"asctime": "time", "levelname": "level",
                                        "name": "logger"})


def configure_logging(level: str = "INFO", fmt: str = "text",
                      stream: TextIO | None = None) -> logging.Handler:
    """Send the ``onward`` loggers' records at ``level`` and above to ``stream`` (stderr)
    in ``fmt``; returns the handler. Calling it again replaces the previous handler."""
    if level.upper() not in LEVELS:
        raise ValueError(f"log level {level!r}: choose one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: choose one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter())
    handler.set_name("onward")
    root = logging.getLogger("onward")
    for old in [h for h in root.handlers if h.get_name() == "onward"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler

