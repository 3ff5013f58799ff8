"""Visibility for the client: list and count runs with the list-filter language.

``parse_query`` reads no database (a bad query is refused before the store is opened for
reading); ``list_matching`` and ``count`` compile it against the stored attribute types
(``engine.store.query_sql``) in a read transaction.
"""

from __future__ import annotations

from typing import Any

from . import search_attributes
from .errors import BadInput
from .listfilter import BoolOp, Compare, Expr, Query, Value, parse
from .store import query_plan, query_sql, search_attrs
from .store.base import Tx
from .store.schema import SchemaTypes
from .views import run_summary

_STATUS_FILTERS: dict[str, list[tuple[str, Value]]] = {
    "open": [("ExecutionStatus", Value("string", "Running", 1))],
    "stuck": [("Stuck", Value("bool", True, 1)),
              ("ExecutionStatus", Value("string", "Running", 1))],
    "retrying": [("Retrying", Value("bool", True, 1)),
                 ("ExecutionStatus", Value("string", "Running", 1))],
    "paused": [("Paused", Value("bool", True, 1)),
               ("ExecutionStatus", Value("string", "Running", 1))],
    "waiting": [("WaitingOnPerson", Value("bool", True, 1))],
}


def _status_terms(status: str) -> list[Expr]:
    if status in query_sql.STATUS_NAMES.values():
        name = next(k for k, v in query_sql.STATUS_NAMES.items() if v == status)
        return [Compare("ExecutionStatus", "=", Value("string", name, 1), 1)]
    if status in _STATUS_FILTERS:
        return [Compare(f, "=", v, 1) for f, v in _STATUS_FILTERS[status]]
    raise BadInput(f"--status {status} cannot be combined with --query; write it in the "
                   "query (e.g. ExecutionStatus = \"Running\")")


def parse_query(text: str | Query | None, *, status: str | None = None,
                search: str | None = None) -> Query:
    """A query parsed (no database read), with a ``status`` (a status or one of open,
    stuck, retrying, paused, waiting) ANDed in. Raises QueryError/BadInput."""
    query = text if isinstance(text, Query) else parse(text or "")
    if search:
        raise BadInput("a text search cannot be combined with a query; use "
                       "WorkflowId STARTS_WITH '...' in the query")
    if status is None or status == "all":
        return query
    terms = _status_terms(status)
    where = query.where
    items = tuple(terms) + ((where,) if where is not None else ())
    return Query(items[0] if len(items) == 1 else BoolOp("AND", items), query.order)


def list_matching(tx: Tx, query: Query, types: SchemaTypes, *, limit: int | None = None,
                  offset: int = 0, planned: bool = True) -> list[dict[str, Any]]:
    """Runs matching ``query`` as ``list --json`` shows them, with their attributes
    (``planned``: pages are planned here, for a database without statistics)."""
    rows = query_plan.find_runs(tx, query, binary_collate=types.binary_collate, limit=limit,
                                offset=offset, planned=planned)
    attrs = search_attrs.attributes_of(tx, [r.run_id for r in rows])
    return [{**run_summary(r), "search_attributes": attrs.get(r.run_id, {})} for r in rows]


def count(tx: Tx, query: Query, group_by: str | None, types: SchemaTypes, *,
          planned: bool = True) -> dict[str, Any]:
    """``{"count": N}``, with ``group_by`` also ``"groups"`` (``count --json``)."""
    total, groups = query_plan.count_runs(tx, query, binary_collate=types.binary_collate,
                                          group_by=group_by, planned=planned)
    result: dict[str, Any] = {"count": total}
    if groups is not None:
        result["groups"] = [{"value": v, "count": n} for v, n in groups]
    return result


def check_start(attrs: dict[str, Any], memo: Any) -> None:
    """What ``start`` can refuse before opening a transaction: names, memo, values no
    attribute can hold (types against the store are checked inside it)."""
    if not isinstance(attrs, dict):
        raise BadInput("search_attributes must be a dict of name -> value")
    search_attributes.check_names(attrs, allow_system=True)
    search_attributes.check_memo(memo)
    for value in attrs.values():
        if value is not None:
            search_attributes.type_of(value)
