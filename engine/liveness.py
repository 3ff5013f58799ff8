"""Is a worker alive? Same-host workers by their process, others by their lease.

A worker records its host, pid and the pid's start time. On the same host a dead worker is
noticed at once (its process is gone, or the pid now belongs to another process); on
another host only its heartbeat can tell, so it is presumed dead once its lease expires.

"Same host" means the same kernel (boot id) *and* the same PID namespace: a pid means
something only in its namespace, so workers in other containers on this machine are judged
by their lease like workers elsewhere.
"""

from __future__ import annotations

import os
import socket


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


def death_of(worker_id: str, host: str, pid: int, pid_start: str, heartbeat: float,
             lease_ttl: float, now: float) -> str | None:
    """Why the worker described by a ``workers`` row is dead, or None while it is alive."""
    if host == HOST:
        start = process_start(pid)
        if start is None or (start != pid_start and pid_start != "?"):
            return f"worker {worker_id} (pid {pid}) exited"
        return None
    if now - heartbeat > lease_ttl:
        return f"worker {worker_id} on {host.split(':')[0]} missed its lease"
    return None
