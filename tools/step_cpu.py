"""The engine's Python per workflow step, alone: ``python tools/step_cpu.py N [--activation]``.

Runs N of the benchmarks' 3-step workflows in one thread, as a worker's turn does it but
without the worker's threads: each workflow task (``Advancer.advance``) and each step's
outcome (``attempts.record_outcomes``) in a write transaction of its own, the activity
"run" inline. The runs are started first and not timed. ``--activation`` times only the
workflow code's activation (a ``WorkflowInstance`` fed the same four events, no store).
Prints CPU µs per workflow (``time.process_time``). For counts that do not move with the
machine's load, run it under callgrind twice and divide the difference::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python tools/step_cpu.py 100
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python tools/step_cpu.py 500

(instructions per workflow = (second - first) / 400). Figures only: nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FLOWS = REPO / "bench" / "flows.py"
WORKFLOW = "plain_three_steps"
STARTS = 600
"""Runs started before timing (the same count whatever N is, so two Ns differ only in
the workflows advanced)."""


def advance_all(eng: Any, run_ids: list[str]) -> None:
    """Run each workflow to its end: its tasks and its steps' outcomes, one by one."""
    from onward import attempts, history
    advancer, store = eng.runtime.advancer, eng.store

    def eager(_name: str) -> str:
        return "step-cpu"

    for run_id in run_ids:
        with store.write() as tx:
            run = history.get_run(tx, run_id, lock=True)
            claimed = advancer.advance(tx, run, eager).claimed
        while claimed:
            attempt = claimed[0]
            ending = attempts.Ending(attempt.run_id, attempt.ref, "step-cpu", attempt.attempt,
                                     True, attempt.args[1] + 1)
            with store.write() as tx:
                claimed = []
                for run in attempts.record_outcomes(tx, [ending], time.time(), save=False):
                    claimed = advancer.advance(tx, run, eager).claimed


def activation_only(n: int) -> float:
    """CPU seconds for ``n`` activations of the 3-step workflow, store left out."""
    sys.path.insert(0, str(FLOWS.parent))
    import flows  # type: ignore[import-not-found]

    from onward.events import Event
    from onward.instance import WorkflowInstance
    from onward.workflow_runtime import WorkflowInfo
    info = WorkflowInfo("step-cpu", "step-cpu", WORKFLOW, 1.0)

    def one() -> None:
        inst = WorkflowInstance(flows.plain_three_steps, info)
        activation = inst.activate([Event(1, "WorkflowStarted", 1.0, {"input": [5]})])
        for result in (6, 7, 8):
            ref = activation.commands[-1].seq
            activation = inst.activate([Event(inst.cursor + 1, "ActivityCompleted", 2.0, {
                "ref": ref, "name": "plain_step", "attempt": 1, "result": result,
                "provider": "", "provider_version": ""})])
        assert activation.commands[-1].type == "WorkflowCompleted"

    one()
    cpu = time.process_time()
    for _ in range(n):
        one()
    return time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="workflows to time (at most 600)")
    parser.add_argument("--activation", action="store_true",
                        help="time the workflow code's activation alone")
    args = parser.parse_args()
    if args.activation:
        print(f"{activation_only(args.n) / args.n * 1e6:.1f} us CPU per workflow activation")
        return
    from onward import Engine
    os.environ["ONWARD_SYNCHRONOUS"] = "OFF"
    db = Path(tempfile.mkdtemp(prefix="onward-step-cpu-")) / "steps.db"
    with Engine(db, flows=[str(FLOWS)]) as eng:
        warm = [eng.start(WORKFLOW, i).run_id for i in range(50)]
        advance_all(eng, warm)  # imports, caches, the WAL file
        run_ids = [eng.start(WORKFLOW, i).run_id for i in range(STARTS)][:args.n]
        cpu = time.process_time()
        advance_all(eng, run_ids)
        cpu = time.process_time() - cpu
    print(f"{cpu / len(run_ids) * 1e6:.1f} us CPU per workflow (tasks and outcomes)")


if __name__ == "__main__":
    main()
