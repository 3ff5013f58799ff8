"""The check printer: prints each check once per idempotency key, and sometimes jams.

Activities
    ``printer.print_check(payee, cents, memo) -> {"check_no", "payee", "cents", "memo"}``
        Appends one line to ``checks.txt`` in the data directory. The line carries the
        attempt's idempotency key; a repeated attempt (a retry, or a run recovered after a
        crash) finds its line and returns the check already printed instead of printing
        another. An exclusive ``fcntl`` lock makes lookup-and-append one step across
        worker processes.
    ``printer.status() -> {"jammed": bool, "printed": int}``

Switch: the file ``printer.jammed`` in the data directory (``$ONWARD_DATA``, default
``./onward-data``) jams the printer. A jam needs a person, so printing fails with a
*non-retryable* ``PrinterJammed``: the run fails, the operator clears the jam
(``clear_jam()`` or delete the file) and retries the run from the console or with
``onward retry``. ``jam()``, ``clear_jam()`` and ``checks()`` help tests and demos.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from onward import ApplicationError, activity, hookimpl

JAM_FILE = "printer.jammed"


def data_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the printer's output (created if missing)."""
    path = Path(data_dir or os.environ.get("ONWARD_DATA", "onward-data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _locked(data: Path) -> Iterator[Path]:
    """Hold the printer's lock; yields the path of ``checks.txt``."""
    with open(data / "checks.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield data / "checks.txt"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _clean(text: str) -> str:
    return " ".join(str(text).split())  # one line, no tabs: the file stays readable


def _read_checks(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    result = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) != 5:  # a line torn by a crash mid-write: not a printed check
            continue
        number, key, payee, cents, memo = fields
        result.append({"check_no": int(number.lstrip("#")), "key": key, "payee": payee,
                       "cents": int(cents), "memo": memo})
    return result


@activity.defn(name="printer.print_check")
def print_check(payee: str, cents: int, memo: str) -> dict[str, Any]:
    """Print a check, once per idempotency key; return what was printed."""
    key = activity.info().idempotency_key
    data = data_path()
    if (data / JAM_FILE).exists():
        raise ApplicationError("printer is jammed", type="PrinterJammed", non_retryable=True)
    with _locked(data) as path:
        printed = _read_checks(path)
        for check in printed:
            if check["key"] == key:
                return {k: v for k, v in check.items() if k != "key"}
        check = {"check_no": len(printed) + 1, "payee": _clean(payee), "cents": int(cents),
                 "memo": _clean(memo)}
        line = (f"#{check['check_no']:04d}\t{key}\t{check['payee']}\t{check['cents']}\t"
                f"{check['memo']}\n")
        torn = path.exists() and not path.read_bytes().endswith(b"\n") and path.stat().st_size
        with open(path, "a", encoding="utf-8") as out:
            out.write("\n" + line if torn else line)
            out.flush()
            os.fsync(out.fileno())
    return check


@activity.defn(name="printer.status")
def status() -> dict[str, Any]:
    """Whether the printer is jammed and how many checks it has printed."""
    data = data_path()
    with _locked(data) as path:
        printed = len(_read_checks(path))
    return {"jammed": (data / JAM_FILE).exists(), "printed": printed}


@hookimpl
def onward_activities() -> list[Any]:
    return [print_check, status]


# --------------------------------------------------------------------- for tests and demos


def jam(data_dir: str | os.PathLike[str] | None = None) -> None:
    """Jam the printer: prints fail (non-retryable) until ``clear_jam``."""
    (data_path(data_dir) / JAM_FILE).touch()


def clear_jam(data_dir: str | os.PathLike[str] | None = None) -> None:
    """Clear a jam."""
    (data_path(data_dir) / JAM_FILE).unlink(missing_ok=True)


def checks(data_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every check printed, in order, each with the idempotency key that printed it."""
    data = data_path(data_dir)
    with _locked(data) as path:
        return _read_checks(path)
