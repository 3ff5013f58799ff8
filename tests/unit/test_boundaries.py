"""Boundaries that keep the engine's shape: SQL text lives in ``engine/store/`` only.

Each engine module outside the store is parsed (never imported) and every string constant
in it, f-strings included, is checked for the look of an SQL statement or a clause naming
one of Onward's tables. A hit names file:line, so the statement can be moved behind a named
store operation (``engine/store/runs.py``, ``visibility.py``, ``copy.py``, ...).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ENGINE = Path(__file__).parents[2] / "engine"
TABLES = ("runs", "events", "activity_tasks", "timers", "manual_tasks", "workers",
          "workflow_types", "provider_log", "rate_limits")
_STATEMENT = re.compile(r"""\s*(?:
      SELECT\s | INSERT\s+INTO\s | UPDATE\s+\S+\s+SET\s | DELETE\s+FROM\s
    | CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|VIEW|TRIGGER|SCHEMA|TEMP)\b
    | DROP\s+(?:TABLE|INDEX|VIEW|TRIGGER|SCHEMA)\b | ALTER\s+TABLE\s
    | WITH\s+(?:RECURSIVE\s+)?\S+(?:\s*\([^)]*\))?\s+AS\s*\(
    | (?:BEGIN|COMMIT|ROLLBACK)(?:\s+(?:IMMEDIATE|EXCLUSIVE|DEFERRED|TRANSACTION))?\s*;?\s*$
    | PRAGMA\s )""", re.VERBOSE)
"""An SQL statement's opening (keywords in capitals, as the engine writes them)."""
_CLAUSE = re.compile(r"\b(?:FROM|INTO|JOIN|UPDATE)\s+(?:" + "|".join(TABLES) + r")\b")
"""A clause naming one of Onward's tables, wherever it sits in a string (a fragment)."""

STILL_HOLDING_QUEUE_SQL: set[str] = set()
"""Modules whose remaining SQL (activity tasks, timers, manual tasks, rate limits,
workers) the ``store-queues`` step moves into engine/store/queues.py and membership.py;
client.py (``_close_task``) and repair.py (``_recreate_pending``, ``_hurry``) keep a few
such statements until then. Remove a name once its module is clean: the strict xfail
fails as soon as a listed module holds no SQL."""


def _text(node: ast.AST) -> str | None:
    """The text of a string constant, an f-string's with ``{}`` for each hole."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}"
                       for part in node.values)
    return None


def sql_strings(source: str, filename: str) -> list[str]:
    """``file:line: text`` for each string in ``source`` that looks like SQL."""
    tree = ast.parse(source, filename)
    inside_fstring = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                      for part in node.values}
    found = []
    for node in ast.walk(tree):
        if id(node) in inside_fstring:
            continue  # judged as part of its f-string
        text = _text(node)
        if text is not None and (_STATEMENT.match(text) or _CLAUSE.search(text)):
            found.append(f"{filename}:{node.lineno}: {text.strip()[:60]!r}")
    return sorted(found)


def _engine_modules() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if "store" not in p.relative_to(ENGINE).parts)


def _param(path: Path) -> object:
    name = ".".join(path.relative_to(ENGINE).with_suffix("").parts)
    marks = [pytest.mark.xfail(strict=True, reason="store-queues step")] \
        if name in STILL_HOLDING_QUEUE_SQL else []
    return pytest.param(path, id=name, marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in _engine_modules()])
def test_no_sql_outside_the_store_in(path: Path) -> None:
    found = sql_strings(path.read_text(encoding="utf-8"),
                        str(path.relative_to(ENGINE.parent)))
    assert not found, "SQL outside engine/store/ (move it into a store operation):\n" + \
        "\n".join(found)


def test_the_modules_left_to_the_queues_step_exist() -> None:
    names = {".".join(p.relative_to(ENGINE).with_suffix("").parts) for p in _engine_modules()}
    assert names >= STILL_HOLDING_QUEUE_SQL


@pytest.mark.parametrize("text", [
    "SELECT 1 FROM runs", "  INSERT INTO events (run_id) VALUES (?)",
    "UPDATE runs SET paused = 1", "DELETE FROM timers WHERE run_id = ?", "BEGIN IMMEDIATE",
    "ROLLBACK", "PRAGMA table_info(runs)", "CREATE INDEX x ON runs (a)", "DROP TABLE runs",
    "ALTER TABLE runs ADD COLUMN x", "WITH due AS (SELECT 1) SELECT * FROM due",
    " AND EXISTS (SELECT 1 FROM manual_tasks t WHERE t.run_id = runs.run_id)",
])
def test_the_sql_detector_finds_statements_and_fragments(text: str) -> None:
    assert sql_strings(f"x = {text!r}\n", "m.py") == [f"m.py:1: {text.strip()[:60]!r}"]


def test_the_sql_detector_finds_statements_in_f_strings() -> None:
    source = 'def f(t):\n    return tx.execute(f"SELECT {t} FROM {t} WHERE a = ?")\n'
    assert sql_strings(source, "m.py") == ["m.py:2: 'SELECT {} FROM {} WHERE a = ?'"]


@pytest.mark.parametrize("text", [
    "Create the new run of the id from its history", "drop signals received after the cut",
    " with status ", "select a workflow to start", "Begin again from the top",
    "the runs from this worker", "Update the view", "Delete from the list what you saw",
])
def test_the_sql_detector_leaves_prose_alone(text: str) -> None:
    assert sql_strings(f"x = {text!r}\n", "m.py") == []


OPERATION_MODULES = ("runs", "visibility", "copy")
"""Store modules of named domain operations (queues and membership join them later)."""


@pytest.mark.parametrize("module", OPERATION_MODULES)
def test_store_operations_take_a_transaction_and_say_what_they_do(module: str) -> None:
    import importlib
    import inspect
    mod = importlib.import_module(f"engine.store.{module}")
    assert (mod.__doc__ or "").strip(), f"engine/store/{module}.py says nothing of its job"
    operations = [fn for name, fn in vars(mod).items() if inspect.isfunction(fn)
                  and fn.__module__ == mod.__name__ and not name.startswith("_")
                  and "tx" in inspect.signature(fn).parameters]
    assert operations
    for fn in operations:
        first = next(iter(inspect.signature(fn).parameters.values()))
        assert first.name == "tx" and first.annotation in ("Tx", "Tx | None"), fn.__name__
        assert len((fn.__doc__ or "").strip()) > 20, f"{module}.{fn.__name__} has no docstring"


def test_a_transaction_streams_and_bulk_loads_where_the_backend_has_no_faster_way(
        tmp_path: Path) -> None:
    from onward.store.base import COPY_BATCH, Tx
    from onward.store.sqlite import SqliteStore
    store = SqliteStore(tmp_path / "copy.db")
    try:
        names = [(f"wf-{i:05d}", float(i)) for i in range(COPY_BATCH * 2 + 7)]
        with store.write() as tx:
            loaded = Tx.copy_rows(tx, "workflow_types", ["name", "registered"], iter(names))
        with store.read() as tx:
            streamed = list(tx.stream("SELECT name, registered FROM workflow_types "
                                      "ORDER BY name"))
            by_default = list(Tx.stream(tx, "SELECT name FROM workflow_types WHERE "
                                            "registered < ?", (2,)))
        assert loaded == len(names) and streamed == names
        assert by_default == [("wf-00000",), ("wf-00001",)]
    finally:
        store.close()
