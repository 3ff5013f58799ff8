"""Notifications: an outbox that sends each message once per idempotency key.

Activities
    ``notify.send(to, subject, body) -> message``
        Appends the message as one JSON line to ``outbox.jsonl`` in the data directory
        (``$ONWARD_DATA``, default ``./onward-data``). A repeated attempt with the same
        idempotency key finds its line and returns the message already sent, so nobody
        gets the same mail twice however often the attempt is retried or recovered.
    ``notify.out_of_office(person, claim_id) -> message``
        Tells ``person`` that a claim waited for them while they were away and went to
        the backup approver (the reimbursement flow calls it when an approval times out).

Lookup-and-append happens under an exclusive ``fcntl`` lock, so several worker processes
can share the outbox. ``outbox()`` returns what was sent, for tests and demos.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from onward import activity, hookimpl


def data_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the outbox (created if missing)."""
    path = Path(data_dir or os.environ.get("ONWARD_DATA", "onward-data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    messages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            messages.append(json.loads(line))
        except ValueError:  # a line torn by a crash mid-write was never sent
            continue
    return messages


def _send_once(message: dict[str, Any]) -> dict[str, Any]:
    """Append ``message`` under the attempt's idempotency key unless already sent."""
    key = activity.info().idempotency_key
    data = data_path()
    path = data / "outbox.jsonl"
    with open(data / "outbox.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for sent in _read(path):
                if sent.get("key") == key:
                    return sent
            message = {"key": key, "sent_at": time.time(), **message}
            torn = path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
            with open(path, "a", encoding="utf-8") as out:
                out.write(("\n" if torn else "") + json.dumps(message) + "\n")
                out.flush()
                os.fsync(out.fileno())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return message


@activity.defn(name="notify.send")
def send(to: str, subject: str, body: str) -> dict[str, Any]:
    """Send a message, once per idempotency key; return it as sent."""
    return _send_once({"to": to, "subject": subject, "body": body})


@activity.defn(name="notify.out_of_office")
def out_of_office(person: str, claim_id: str) -> dict[str, Any]:
    """Tell ``person`` that claim ``claim_id`` went to the backup approver while they were away."""
    return _send_once({
        "to": person,
        "subject": f"Claim {claim_id} was passed on while you were away",
        "body": (f"Claim {claim_id} waited for your approval and went to the backup "
                 "approver. No action is needed."),
        "kind": "out_of_office",
    })


@hookimpl
def onward_activities() -> list[Any]:
    return [send, out_of_office]


def outbox(data_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every message sent, oldest first (for tests and demos)."""
    return _read(data_path(data_dir) / "outbox.jsonl")
