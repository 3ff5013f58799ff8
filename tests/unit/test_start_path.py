"""The client's start path: counts of what a start costs (commits, batches,
introspection), never its time."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from onward import Engine, convert
from onward.store.base import Tx
from tests.unit.test_group_commit import _log_job

FLOWS = str(Path(__file__).parents[1] / "flows" / "basic.py")


def test_jobs_left_behind_a_lone_write_are_led_by_one_of_them_in_one_batch(
        db_path: Path) -> None:
    """Worker (background) jobs queued behind a lone caller's write stay out of its batch;
    as it commits, one of them leads and takes all of them along: two commits in all."""
    eng = Engine(db_path, flows=[FLOWS])
    try:
        committer = eng.runtime.committer
        background = 5
        queued = threading.Event()
        committer.on_queue = lambda n: queued.set() if n >= background else None
        outcomes: dict[str, Any] = {}

        def worker_job(name: str) -> None:
            outcomes[name] = committer.run_job(_log_job(name), background=True)[0]

        threads = [threading.Thread(target=worker_job, args=(f"w{i}",))
                   for i in range(background)]

        def lone(tx: Tx) -> str:
            for thread in threads:
                thread.start()
            assert queued.wait(30), "the worker's jobs never queued"
            return _log_job("lone")(tx)

        commits, batches = eng.store.commits, committer.batches
        assert committer.run(lone) == "lone"
        for thread in threads:
            thread.join(30)
        committer.on_queue = None
        assert outcomes == {f"w{i}": f"w{i}" for i in range(background)}
        assert eng.store.commits - commits == 2 and committer.batches - batches == 2
        assert committer.idle
    finally:
        eng.close()


def test_a_workflows_signature_is_read_once_for_many_starts(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a workflow many times reads its signature (hints) once, not per start."""
    calls: list[Any] = []
    real = convert._signature

    def counted(fn: Any) -> Any:
        calls.append(fn)
        return real(fn)

    monkeypatch.setattr(convert, "_signature", counted)
    monkeypatch.setattr(convert, "_HINTS", type(convert._HINTS)())
    with Engine(db_path, flows=[FLOWS]) as eng:
        for i in range(20):
            eng.start("three_steps", i)
    assert len(calls) == 1
