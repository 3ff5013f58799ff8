"""Two (or more) real processes doing the same thing to the same ids at the same moment.

``race(db, action, ids)`` spawns processes that each open their own ``Engine`` on ``db``,
then for every id wait at a shared barrier and do ``action`` to it, so the processes hit
each id together. Each returns, per id, ``["ok", value]`` or ``[error type, message]``.
"""

from __future__ import annotations

import json
import multiprocessing
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onward import Engine, OnwardError

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "races.py")


def _start(eng: Engine, ident: str, index: int) -> Any:
    handle = eng.start("two_steps", ident, id=ident)
    return [handle.run_id, handle.created]


def _rerun(eng: Engine, ident: str, index: int) -> Any:
    handle = eng.start("two_steps", ident, id=ident, rerun=True)
    return [handle.run_id, handle.created]


def _retry(eng: Engine, ident: str, index: int) -> Any:
    return eng.retry(ident)


def _reset(eng: Engine, ident: str, index: int) -> Any:
    handle = eng.reset(ident, 1)
    return [handle.run_id, handle.created]


def _child(eng: Engine, ident: str, index: int) -> Any:
    handle = eng.start("claims_child", ident, id=f"{ident}-parent-{index}")
    return [handle.run_id, handle.created]


def _rerun_or_retry(eng: Engine, ident: str, index: int) -> Any:
    return _rerun(eng, ident, index) if index == 0 else _retry(eng, ident, index)


def _child_or_start(eng: Engine, ident: str, index: int) -> Any:
    if index == 0:
        return _child(eng, ident, index)
    handle = eng.start("waits_for_go", id=ident)
    return [handle.run_id, handle.created]


ACTIONS: dict[str, Callable[[Engine, str, int], Any]] = {
    "start": _start, "rerun": _rerun, "retry": _retry, "reset": _reset, "child": _child,
    "rerun_or_retry": _rerun_or_retry, "child_or_start": _child_or_start,
}
"""Per process index: the mixed actions set one path against another."""
WITH_WORKER = {"child", "child_or_start"}
"""Actions run with an in-process worker, so a start runs the first workflow task in its
own transaction (the parent's child start then races the other process's)."""


def _racer(db: str, action: str, ids: list[str], barrier: Any, out: str, index: int) -> None:
    results: list[list[Any]] = []
    try:
        eng = Engine(db, flows=[FLOWS])
        try:
            if action in WITH_WORKER:
                with eng.worker(concurrency=2):
                    _each(eng, action, ids, barrier, index, results)
            else:
                _each(eng, action, ids, barrier, index, results)
        finally:
            eng.close()
    except BaseException:  # noqa: BLE001 - reported to the test, which fails on it
        results.append(["crash", "crash", traceback.format_exc()])
        barrier.abort()
    Path(out).write_text(json.dumps(results))


def _each(eng: Engine, action: str, ids: list[str], barrier: Any, index: int,
          results: list[list[Any]]) -> None:
    for ident in ids:
        barrier.wait(timeout=60)
        try:
            results.append([ident, "ok", ACTIONS[action](eng, ident, index)])
        except OnwardError as err:
            results.append([ident, type(err).__name__, str(err)])


def race(db: str | Path, action: str, ids: list[str], tmp: Path, processes: int = 2
         ) -> list[dict[str, list[Any]]]:
    """Run ``action`` on every id from ``processes`` processes at once; per process, a map
    from id to ``["ok", value]`` or ``[error type, message]``."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    outs = [tmp / f"racer-{action}-{i}.json" for i in range(processes)]
    procs = [ctx.Process(target=_racer, args=(str(db), action, ids, barrier, str(out), i))
             for i, out in enumerate(outs)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        if proc.is_alive():
            proc.kill()
            raise AssertionError(f"a {action} racer did not finish within 120 s")
    reports = []
    for proc, out in zip(procs, outs, strict=True):
        assert out.exists(), f"a {action} racer exited {proc.exitcode} without reporting"
        rows = json.loads(out.read_text())
        crashed = [r for r in rows if r[0] == "crash"]
        assert not crashed, crashed[0][2]
        reports.append({r[0]: r[1:] for r in rows})
    return reports
