"""Is a worker alive? Same-host workers by their process, others by their lease.

A worker records its host, pid and the pid's start time. On the same host a dead worker is
noticed at once (its process is gone, or the pid now belongs to another process); on
another host only its heartbeat can tell, so it is presumed dead once its lease expires.

A lease is judged without comparing clocks: the heartbeat a worker writes is its own clock's
reading, so another host cannot subtract it from *its* time. Each reaper instead watches the
value and presumes the worker dead once it has not changed for longer than the lease, timed
by the reaper's own monotonic clock (:class:`LeaseWatch`).

"Same host" means the same kernel (boot id) *and* the same PID namespace: a pid means
something only in its namespace, so workers in other containers on this machine are judged
by their lease like workers elsewhere.

:class:`Membership` is one worker's side of it: registering, heartbeating, advertising
its activities, deregistering, and taking over the attempts of workers found dead.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable

from .attempts import Ending, record_outcomes
from .history import RunRow, get_run
from .store import membership, queues
from .store.base import Tx

log = logging.getLogger("onward.worker")


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()[:8]
    except OSError:
        return ""


def _pid_namespace() -> str:
    """This process's PID namespace, when ``/proc`` shows that namespace's processes.

    If ``/proc`` belongs to another namespace (``unshare --pid`` without a fresh proc
    mount), pids read there are not ours to judge: a name no other process can share
    makes every worker judge this one, and this one every worker, by lease alone."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
        own = os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return ""
    return namespace if own else f"{namespace}/{os.getpid()}-{os.urandom(4).hex()}"


# Which process space a worker runs in: workers in the same one are checked by process
# liveness, others by lease expiry. ``$ONWARD_HOST_ID`` overrides it (network-namespace tests).
HOST = (os.environ.get("ONWARD_HOST_ID")
        or f"{socket.gethostname()}:{_boot_id()}:{_pid_namespace()}")


def process_start(pid: int) -> str | None:
    """A token that changes when ``pid`` is reused (its start time), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        stat = ""
    if stat:
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 19 and fields[0] != "Z":
            return fields[19]
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "?"


class LeaseWatch:
    """When this process last saw each other worker's heartbeat change, by its own
    monotonic clock: lease expiry that holds however far apart the hosts' clocks are."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._seen: dict[str, tuple[float, float]] = {}

    def silent_for(self, worker_id: str, heartbeat: float) -> float:
        """Seconds since ``worker_id``'s heartbeat was last seen to change (0 at first
        sight: a worker never watched before gets a whole lease from now)."""
        now = self._monotonic()
        seen = self._seen.get(worker_id)
        if seen is None or seen[0] != heartbeat:
            self._seen[worker_id] = (heartbeat, now)
            return 0.0
        return now - seen[1]

    def keep_only(self, worker_ids: Iterable[str]) -> None:
        """Forget the workers that are no longer registered."""
        keep = set(worker_ids)
        for worker_id in [w for w in self._seen if w not in keep]:
            del self._seen[worker_id]


def death_of(worker_id: str, host: str, pid: int, pid_start: str, silent_for: float,
             lease_ttl: float) -> str | None:
    """Why the worker described by a ``workers`` row is dead, or None while it is alive.

    ``silent_for`` is how long its heartbeat has not changed (:meth:`LeaseWatch.silent_for`)."""
    if host == HOST:
        start = process_start(pid)
        if start is None or (start != pid_start and pid_start != "?"):
            return f"worker {worker_id} (pid {pid}) exited"
        return None
    if silent_for > lease_ttl:
        return f"worker {worker_id} on {host.split(':')[0]} missed its lease"
    return None


class Membership:
    """One worker's registration: who it is, that it lives, what it offers, and taking
    over from the workers it finds dead."""

    def __init__(self, worker_id: str, *, lease_ttl: float, concurrency: int,
                 activity_names: Callable[[], list[str]]) -> None:
        self.worker_id = worker_id
        self.lease_ttl = lease_ttl
        self.concurrency = concurrency
        self.activity_names = activity_names
        self.advertised: list[str] = []
        self.orphans: list[str] = []
        """Ready activities no live worker offers: claimed here so they fail visibly."""
        self.leases = LeaseWatch()
        self.beat_value = 0.0

    def register(self, tx: Tx, now: float) -> None:
        """Register (or register again) with this host's process identity."""
        activities = self.activity_names()
        membership.register_worker(
            tx, self.worker_id, host=HOST, pid=os.getpid(),
            pid_start=process_start(os.getpid()) or "?", now=now, lease_ttl=self.lease_ttl,
            concurrency=self.concurrency, activities=activities)
        self.advertised = activities

    def beat(self, tx: Tx, now: float) -> None:
        """Renew the heartbeat; rejoin if others presumed this worker dead meanwhile."""
        # Others see this worker alive while the value changes (whatever the clock).
        self.beat_value = max(now, self.beat_value + 0.001)
        if not membership.renew_heartbeat(tx, self.worker_id, self.beat_value):
            log.warning("worker %s was presumed dead; rejoining", self.worker_id)
            self.register(tx, now)

    def find_orphans(self, tx: Tx, now: float) -> None:
        """Ready activities that no live worker offers: claim them so their attempts fail
        visibly ("no provider") and retry until a provider appears."""
        activities = self.activity_names()
        if self.advertised != activities:
            membership.advertise_activities(tx, self.worker_id, activities)
            self.advertised = activities
        waiting = queues.ready_activity_names(tx, now)
        if not waiting:
            self.orphans = []
            return
        self.orphans = sorted(waiting - membership.offered_activities(tx))

    def release(self, tx: Tx, now: float) -> None:
        """Hand back attempts still running at shutdown, so others retry them at once."""
        lose_attempts_of(tx, self.worker_id, "worker stopped", now)
        membership.deregister_worker(tx, self.worker_id)

    def reap(self, tx: Tx, now: float,
             settle: Callable[[RunRow], None] | None = None) -> None:
        """Take over from workers that died (same host by process check, others by
        lease); ``settle`` each run whose attempts were lost, after its worker is gone."""
        others = membership.other_workers(tx, self.worker_id)
        self.leases.keep_only(other.worker_id for other in others)
        for other in others:
            silent = self.leases.silent_for(other.worker_id, other.heartbeat)
            reason = death_of(other.worker_id, other.host, other.pid, other.pid_start, silent,
                              other.lease_ttl)
            if reason is None:
                continue
            log.info("taking over from %s", reason)
            runs = lose_attempts_of(tx, other.worker_id, reason, now)
            membership.deregister_worker(tx, other.worker_id)
            if settle is not None:
                for run in runs:
                    settle(run)


def lose_attempts_of(tx: Tx, worker_id: str, reason: str, now: float) -> list[RunRow]:
    """Record every attempt ``worker_id`` held as lost (retried at once); the runs
    touched, each read once after all its attempts were recorded."""
    error = {"type": "WorkerLost", "message": f"worker lost: {reason}"}
    endings = (Ending(run_id, ref, worker_id, attempt, False, error=error, retry_now=True)
               for run_id, ref, attempt in queues.attempts_held_by(tx, worker_id))
    lost = dict.fromkeys(run.run_id for run in record_outcomes(tx, endings, now))
    runs = (get_run(tx, run_id) for run_id in lost)
    return [run for run in runs if run is not None]
