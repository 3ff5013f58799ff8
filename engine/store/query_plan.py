"""Running a compiled list-filter query: which runs, in which order, how many.

A page of the newest runs (``list --query Q --limit N``; also ordered by StartTime,
WorkflowId or RunId) is planned from cheap, capped counts of the query's top-level AND
terms that an index can answer:

- if one such term matches fewer than ``CAP`` rows, it drives: the runs it names are
  fetched by key, the other terms test each of them (EXISTS on the run's own rows), and
  at most ``CAP`` rows are sorted;
- otherwise every term matches many runs, so matches are dense among the newest: the
  runs are read newest first, each tested, until the page is full.

A page ordered by one attribute is read along that attribute's value index (runs without
it follow, newest first).

This planning is for a database that plans without statistics (SQLite, never ANALYZEd):
PostgreSQL (``Store.plans_by_statistics``) gets one plain statement, which its planner
serves well, except that a page ordered by one attribute is still read along its index.

A count of several top-level AND terms, one of them on attributes or assignees, is planned
the same way: the term matching fewest rows drives if under ``CAP``, else if under
``COUNT_CAP``; the others test its runs by key.

Anything else (another order, no limit, other counts) is one statement whose attribute
terms are ``run_id IN (matching rows)``. Plans change only the cost: every plan returns
the same rows (the property tests compare them with a model and with each other).
"""

from __future__ import annotations

from typing import Any

from ..errors import BadInput
from ..listfilter import Between, BoolOp, Compare, Expr, InList, Query, QueryError, StartsWith
from .base import Tx
from .query_sql import STATUS_NAMES, Compiler, Field, resolve
from .runs import RUN_COLUMNS, RunRow, runs_from
from .search_attrs import types as attr_types

CAP = 5000
"""Rows a term may match and still drive a page (counted up to this many, no further)."""
COUNT_CAP = 200_000
"""Rows a term may match and still drive a count of several terms: reading its runs and
testing each of them by key is still cheaper than intersecting sets of many runs."""

_INDEXED_COLUMNS = frozenset({"WorkflowId", "RunId", "ExecutionStatus", "StartTime",
                              "CloseTime"})
"""Built-in fields an index answers alone (the workflow type only after a status)."""
_COLUMNS = ", ".join("runs." + c.strip() for c in RUN_COLUMNS.split(","))
_NEWEST = "ORDER BY runs.started DESC, runs.run_id DESC"


def _terms(where: Expr) -> list[Expr]:
    return list(where.items) if isinstance(where, BoolOp) and where.op == "AND" else [where]


def _indexed(term: Expr, types: dict[str, str]) -> bool:
    """A positive comparison an index answers (attribute values, or an indexed column)."""
    if isinstance(term, Compare):
        if term.op == "!=":
            return False
    elif isinstance(term, InList | Between | StartsWith):
        if term.negated:
            return False
    else:
        return False
    field = resolve(term.field, term.pos, types)
    return field.source == "attr" or field.name in _INDEXED_COLUMNS


def _estimate(tx: Tx, term: Expr, field: Field, types: dict[str, str], collate: str,
              cap: int | None = None) -> int:
    """How many rows ``term`` matches, counted up to ``cap`` (default ``CAP``)."""
    compiler = Compiler(types, collate)
    compiler.estimating = True
    inner = compiler.expr(term, negated=False)
    if field.source != "attr":
        inner = f"SELECT 1 FROM runs WHERE {inner}"
    return int(tx.scalar(f"SELECT count(*) FROM ({inner} LIMIT ?) capped",
                         [*compiler.params, CAP if cap is None else cap]) or 0)


def _page(tx: Tx, query: Query, types: dict[str, str], collate: str, order: str,
          limit: int, offset: int) -> list[RunRow]:
    """A page in an order an index of ``runs`` gives (``order``)."""
    terms = _terms(query.where) if query.where is not None else []
    best: tuple[int, int] | None = None
    for index, term in enumerate(terms):
        if _indexed(term, types):
            field = resolve(term.field, term.pos, types)  # type: ignore[union-attr]
            count = _estimate(tx, term, field, types, collate)
            if best is None or count < best[0]:
                best = (count, index)
    params: list[Any] = []
    parts: list[str] = []
    for index, term in enumerate(terms):
        drives = best is not None and best[0] < CAP and index == best[1]
        compiler = Compiler(types, collate, correlated=not drives)
        parts.append(compiler.expr(term, negated=False))
        params += compiler.params
    where = " AND ".join(parts) or "1 = 1"
    rows = tx.execute(f"SELECT {_COLUMNS} FROM runs WHERE {where} {order} LIMIT ? OFFSET ?",
                      [*params, limit, offset])
    return runs_from(rows)


def _attribute_page(tx: Tx, query: Query, field: Field, descending: bool,
                    types: dict[str, str], collate: str, limit: int, offset: int
                    ) -> list[RunRow]:
    """A page ordered by a one-valued attribute, read along its value index; runs
    without it follow, newest first."""
    compiler = Compiler(types, collate, correlated=True)
    where = compiler.where(query.where)
    column = "o.kw" if field.type == "keyword" else "o.num"
    joined = (f"FROM search_attrs o JOIN runs ON runs.run_id = o.run_id WHERE o.name = ? "
              f"AND {where}")
    rows = runs_from(tx.execute(
        f"SELECT {_COLUMNS} {joined} ORDER BY {column}{' DESC' if descending else ''}, "
        f"runs.started DESC, runs.run_id DESC LIMIT ? OFFSET ?",
        [field.name, *compiler.params, limit, offset]))
    if len(rows) == limit:
        return rows
    present = offset + len(rows) if rows else int(tx.scalar(
        f"SELECT count(*) {joined}", [field.name, *compiler.params]) or 0)
    rest = Compiler(types, collate, correlated=True)
    rest_where = rest.where(query.where)
    return rows + runs_from(tx.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE NOT EXISTS (SELECT 1 FROM search_attrs o WHERE "
        f"o.run_id = runs.run_id AND o.name = ?) AND {rest_where} {_NEWEST} "
        f"LIMIT ? OFFSET ?",
        [field.name, *rest.params, limit - len(rows), max(0, offset - present)]))


def _one_attribute_order(query: Query, types: dict[str, str]) -> bool:
    if len(query.order) != 1:
        return False
    field = resolve(query.order[0].field, query.order[0].pos, types)
    return field.source == "attr" and field.type != "keyword_list"


def _ordered_page(tx: Tx, query: Query, types: dict[str, str], collate: str, limit: int,
                  offset: int) -> list[RunRow] | None:
    """A page whose order an index gives (start time, workflow or run id, or one
    attribute), else None."""
    if not query.order:
        return _page(tx, query, types, collate, _NEWEST, limit, offset)
    if len(query.order) > 1:
        return None
    key = query.order[0]
    field = resolve(key.field, key.pos, types)
    direction = " DESC" if key.descending else ""
    if field.name == "StartTime":
        order = f"ORDER BY runs.started{direction}, runs.run_id DESC"
        return _page(tx, query, types, collate, order, limit, offset)
    if field.name in ("WorkflowId", "RunId"):
        order = f"ORDER BY {field.sql}{collate}{direction}, runs.started DESC, runs.run_id DESC"
        return _page(tx, query, types, collate, order, limit, offset)
    if field.source == "attr" and field.type != "keyword_list":
        return _attribute_page(tx, query, field, key.descending, types, collate, limit,
                               offset)
    return None


def find_runs(tx: Tx, query: Query, *, binary_collate: str, limit: int | None,
              offset: int = 0, planned: bool = True) -> list[RunRow]:
    """The runs (every run, older runs of an id too) matching ``query``, in its order
    (default: newest start first). Raises QueryError for a field or value of the wrong
    type; reads only the attribute types before that. ``planned`` False: one statement,
    left to a database that plans from statistics (pages ordered by one attribute are
    still read along its index)."""
    types = attr_types(tx)
    compiler = Compiler(types, binary_collate)
    where = compiler.where(query.where)
    order = compiler.order_by(query)
    if limit is not None and (planned or _one_attribute_order(query, types)):
        page = _ordered_page(tx, query, types, binary_collate, limit, offset)
        if page is not None:
            return page
    sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE {where} {order}"
    params = compiler.params
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    return runs_from(tx.execute(sql, params))


def _shown(field: Field, value: Any) -> Any:
    """A stored value of ``field`` as queries write it (for ``count --group-by``)."""
    if value is None:
        return None
    if field.type == "status":
        return next((k for k, v in STATUS_NAMES.items() if v == value), value)
    if field.type == "bool":
        return bool(value)
    if field.type == "datetime":
        from ..events import iso
        return iso(float(value))
    if field.type == "number":
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def _type_and_status_only(query: Query) -> bool:
    """Whether the query's terms are all ``=``/``IN`` on WorkflowType or ExecutionStatus
    (what runs_by_status_type answers per status)."""
    terms = _terms(query.where) if query.where is not None else []
    return all(isinstance(t, Compare | InList) and t.field in ("WorkflowType",
                                                               "ExecutionStatus")
               and (t.op == "=" if isinstance(t, Compare) else not t.negated)
               for t in terms)


_FLAGS = frozenset({"Stuck", "Paused", "Retrying"})
"""Flags whose true runs a small partial index lists (runs_stuck, runs_paused,
runs_retrying)."""


def _flag_set(term: Expr, types: dict[str, str]) -> bool:
    """``Stuck``/``Paused``/``Retrying = true``: a term its partial index answers."""
    if not (isinstance(term, Compare) and term.op == "=" and term.value.kind == "bool"
            and term.value.value is True):
        return False
    field = resolve(term.field, term.pos, types)
    return field.source == "column" and field.name in _FLAGS


def _counted_where(tx: Tx, where: Expr, types: dict[str, str], collate: str,
                   plain: str, params: list[Any]) -> tuple[str, list[Any]]:
    """The condition a count runs: when one of several AND terms an index answers matches
    fewer than ``COUNT_CAP`` rows, the one matching fewest drives and the others test each
    of its runs (by key, EXISTS); else ``plain`` (whose attribute terms are sets of runs,
    ``IN``) and its ``params``. Either way the same runs match."""
    terms = _terms(where)
    estimable = [i for i, term in enumerate(terms)
                 if _indexed(term, types) or _flag_set(term, types)]
    if len(terms) < 2 or not estimable or "SELECT" not in plain:
        # without subqueries (attributes, assignees) the plain statement reads one index of
        # runs, where the columns of several terms may meet (status with workflow type)
        return plain, params
    driver = None
    for cap in (CAP, COUNT_CAP):  # a term under CAP is found without counting further
        best: tuple[int, int] | None = None
        for index in estimable:
            term = terms[index]
            field = resolve(term.field, term.pos, types)  # type: ignore[union-attr]
            count = _estimate(tx, term, field, types, collate, cap)
            if best is None or count < best[0]:
                best = (count, index)
        if best is not None and best[0] < cap:
            driver = best[1]
            break
    if driver is None:
        return plain, params
    parts: list[str] = []
    planned: list[Any] = []
    for index, term in enumerate(terms):
        compiler = Compiler(types, collate, correlated=index != driver)
        parts.append(compiler.expr(term, negated=False))
        planned += compiler.params
    return "(" + " AND ".join(parts) + ")", planned


def count_runs(tx: Tx, query: Query, *, binary_collate: str, group_by: str | None = None,
               planned: bool = True) -> tuple[int, list[tuple[Any, int]] | None]:
    """How many runs match ``query``; with ``group_by``, also (value, count) per value of
    that one-valued field, largest group first (None: runs without it)."""
    types = attr_types(tx)
    if group_by is None and query.where is not None and _indexed(query.where, types):
        field = resolve(query.where.field, query.where.pos, types)  # type: ignore[union-attr]
        if field.source == "attr":  # counted in the attribute's own index
            counter = Compiler(types, binary_collate)
            counter.estimating = True
            inner = counter.expr(query.where, negated=False)
            if field.type == "keyword_list":  # one row per element: count runs once
                inner = inner.replace("SELECT 1 FROM", "SELECT DISTINCT a.run_id FROM", 1)
            return int(tx.scalar(f"SELECT count(*) FROM ({inner}) matching",
                                 counter.params) or 0), None
    compiler = Compiler(types, binary_collate)
    where = compiler.where(query.where)  # (a bad query fails here, on its first error)
    params = compiler.params
    if planned and query.where is not None:
        where, params = _counted_where(tx, query.where, types, binary_collate, where, params)
    if group_by is None:
        return int(tx.scalar(f"SELECT count(*) FROM runs WHERE {where}", params) or 0), None
    try:
        field = resolve(group_by, 1, types)
    except QueryError:
        raise BadInput(f"--group-by {group_by}: unknown field (not a built-in field, and no "
                       "run has had a search attribute of that name)") from None
    if field.source == "assignee" or field.type == "keyword_list":
        raise BadInput(f"--group-by {group_by}: cannot group by a list")
    if planned and field.type == "status" and _type_and_status_only(query):
        # one indexed count per status (runs_by_status_type answers `status = ? AND
        # workflow = ?`); a GROUP BY would read the whole index
        rows = [(value, tx.scalar(f"SELECT count(*) FROM runs WHERE runs.status = ? AND "
                                  f"{where}", [value, *params]))
                for value in STATUS_NAMES.values()]
        rows = [(v, n) for v, n in rows if n]
    else:
        grouper = Compiler(types, binary_collate)
        expr = grouper.scalar(field)
        rows = tx.execute(f"SELECT {expr} AS g, count(*) FROM runs WHERE {where} GROUP BY g",
                          [*grouper.params, *params])
    groups = sorted(((_shown(field, v), int(n)) for v, n in rows),
                    key=lambda g: (-g[1], g[0] is None, str(g[0])))
    return sum(n for _, n in groups), groups
