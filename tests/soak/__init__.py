"""Crash soak: several workers on one database, a mix of flows, and a killer with SIGKILL.

    python -m tests.soak [--runs N --workers W --kills K --seconds S --concurrency C --seed X]
                         [--db postgresql://...] [--pid-namespaces] [--operators N]

For ``S`` seconds runs are started at an even pace while a killer sends SIGKILL to a random
worker at random moments (``K`` in all) and restarts it, and a scripted operator answers
manual tasks and sends signals through the Engine API. Then every worker is left alone
until each run has closed. The mix: parallel activities, durable timers, signals, manual
tasks, child workflows, continue-as-new, a timer racing a signal, and (when the sample
flows are present) the reimbursement flow paying through the bank provider.

At the end it checks that every run reached its expected result; that no completed activity
ran again (per idempotency key, from the activities' execution log and the bank's call log
against history: no attempt number ran twice, nothing ran after its completed attempt, no
execution went unrecorded); that each bank key was paid at most once, and exactly once per
paid claim; that the database passes ``PRAGMA integrity_check``. It prints the figures:
runs, kills, activity executions, re-executions inside the allowed in-flight window,
duplicates (must be 0), and recovery after each kill (median and max).

``--db postgresql://…`` runs it on a fresh schema of that server (dropped afterwards unless
kept). ``--pid-namespaces`` starts every worker in a PID namespace of its own
(``unshare --pid --fork --mount-proc``, as root): same host and boot id, overlapping pids;
no worker may then take another for dead (each 'worker lost' must name a killed worker).
``--operators N`` adds N operator threads that, during the chaos, start (two clients at the
same moment), rerun, signal, cancel (twice), terminate, retry and reset (by workflow id and
by an old run id, which must be refused naming the current run) a small set of ids of
their own (``op-*``, the saga and chain flows of tests/flows/stateful.py); checked: one run
made per successful start, at most one open run per id, no completed activity repeated, no
signal handled twice, every canceled run compensated.
"""

from .chaos import Pool, pg_drop_schema, pg_url_for, run_soak
from .checks import attempt_events, find_repeats, read_executions
from .mix import Kill, RunSpec, SoakConfig, SoakReport, make_specs, sample_flows_available
from .steering import (
    Steering,
    activity_events,
    compensation_problems,
    open_run_problems,
    repeated_work,
    run_rows,
    signal_problems,
)

__all__ = ["Kill", "Pool", "RunSpec", "SoakConfig", "SoakReport", "Steering", "activity_events",
           "attempt_events", "compensation_problems", "find_repeats", "make_specs",
           "open_run_problems", "pg_drop_schema", "pg_url_for", "read_executions",
           "repeated_work", "run_rows", "run_soak", "sample_flows_available",
           "signal_problems"]
