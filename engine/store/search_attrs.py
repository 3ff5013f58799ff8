"""Search attributes and memos in the store: the type registry, the indexed values, and
each run's attributes and memo as JSON (``run_meta``).

``search_attrs`` holds one row per value (a keyword list one per element): keywords in
``kw``, numbers, bools (0/1) and datetimes (epoch seconds) in ``num``; indexed by
(name, kw) and (name, num) so a query on an attribute reads only its matches.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..errors import BadInput
from .base import Tx


def types(tx: Tx, names: Sequence[str] | None = None) -> dict[str, str]:
    """The stored type of each attribute name (of ``names``, or every one)."""
    if names is None:
        rows = tx.execute("SELECT name, type FROM search_attr_types")
    elif not names:
        return {}
    else:
        marks = ", ".join("?" * len(names))
        rows = tx.execute(f"SELECT name, type FROM search_attr_types WHERE name IN ({marks})",
                          list(names))
    return {name: kind for name, kind in rows}


def register(tx: Tx, kinds: dict[str, str]) -> None:
    """Fix the type of names seen for the first time; a name a concurrent transaction
    typed otherwise meanwhile is refused (BadInput), so one type per name holds."""
    for name, kind in kinds.items():
        tx.execute("INSERT INTO search_attr_types (name, type) VALUES (?, ?) "
                   "ON CONFLICT (name) DO NOTHING", (name, kind))
    if kinds:
        stored = types(tx, list(kinds))
        for name, kind in kinds.items():
            if stored.get(name) != kind:
                raise BadInput(f"search attribute {name!r} is a {stored.get(name)}; got a "
                               f"{kind}")


def replace_values(tx: Tx, run_id: str, values: dict[str, list[tuple[str | None,
                                                                      float | None]]],
                   *, removed: Sequence[str] = (), clear: bool = False) -> None:
    """Store a run's values of each named attribute in place of what it had (``clear``:
    drop every attribute of the run first; ``removed``: names to drop)."""
    if clear:
        tx.execute("DELETE FROM search_attrs WHERE run_id = ?", (run_id,))
    for name in [*values, *removed]:
        if not clear:
            tx.execute("DELETE FROM search_attrs WHERE run_id = ? AND name = ?",
                       (run_id, name))
    rows = [(run_id, name, pos, kw, num) for name, pairs in values.items()
            for pos, (kw, num) in enumerate(pairs)]
    if rows:
        tx.executemany("INSERT INTO search_attrs (run_id, name, pos, kw, num) "
                       "VALUES (?, ?, ?, ?, ?)", rows)


def meta(tx: Tx, run_id: str) -> tuple[dict[str, Any], str | None]:
    """A run's attributes (as given, JSON) and its memo text (None: none)."""
    row = tx.one("SELECT search_attributes, memo FROM run_meta WHERE run_id = ?", (run_id,))
    if row is None:
        return {}, None
    return json.loads(row[0]), row[1]


def save_meta(tx: Tx, run_id: str, attrs: dict[str, Any], memo: str | None) -> None:
    """Store a run's attributes and memo as shown by ``show``."""
    tx.execute("DELETE FROM run_meta WHERE run_id = ?", (run_id,))
    if attrs or memo is not None:
        tx.execute("INSERT INTO run_meta (run_id, search_attributes, memo) VALUES (?, ?, ?)",
                   (run_id, json.dumps(attrs), memo))


def copy_meta(tx: Tx, from_run: str, to_run: str) -> None:
    """Give a new run (continued as new, reset, retried) the attributes and memo of the
    run it follows."""
    tx.execute("INSERT INTO run_meta (run_id, search_attributes, memo) SELECT ?, "
               "search_attributes, memo FROM run_meta WHERE run_id = ?", (to_run, from_run))
    tx.execute("INSERT INTO search_attrs (run_id, name, pos, kw, num) SELECT ?, name, pos, "
               "kw, num FROM search_attrs WHERE run_id = ?", (to_run, from_run))


def attributes_of(tx: Tx, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The attributes of each of ``run_ids`` that has some."""
    if not run_ids:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(run_ids), 500):
        chunk = list(run_ids[start:start + 500])
        marks = ", ".join("?" * len(chunk))
        for run_id, text in tx.execute(
                f"SELECT run_id, search_attributes FROM run_meta WHERE run_id IN ({marks})",
                chunk):
            found[run_id] = json.loads(text)
    return found
