"""The list-filter language compiled to SQL: type checks against the stored attribute
types, then one WHERE clause with every value bound as a parameter.

Negation is pushed down to the comparisons first (De Morgan; ``NOT a = 1`` is ``a != 1``),
and a comparison with a field a run lacks is false (both it and its opposite): exactly SQL's
three-valued rule for a WHERE clause, on both backends. Attributes live one row per value
in ``search_attrs``; a comparison on one is ``run_id IN (rows of that name matching)``.
A keyword list (and ``TaskAssignee``, the open manual tasks' assignees) matches ``=`` and
``IN`` when any of its values does; ``!=`` and ``NOT IN`` when it has values and none does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..listfilter import (
    Between,
    BoolOp,
    Compare,
    Expr,
    InList,
    IsNull,
    Not,
    Query,
    QueryError,
    StartsWith,
    Value,
)
from ..search_attributes import SYSTEM_SET, parse_datetime

STATUS_NAMES = {"Running": "running", "Completed": "completed", "Failed": "failed",
                "Canceled": "canceled", "Terminated": "terminated",
                "ContinuedAsNew": "continued_as_new"}
"""ExecutionStatus values as queries name them, and as the store keeps them."""

_OPEN_TASKS = ("EXISTS (SELECT 1 FROM manual_tasks t WHERE t.run_id = runs.run_id AND "
               "t.status = 'open'")
_BUILTIN_COLUMNS = {
    "WorkflowId": ("runs.workflow_id", "keyword"),
    "RunId": ("runs.run_id", "keyword"),
    "WorkflowType": ("runs.workflow", "keyword"),
    "ExecutionStatus": ("runs.status", "status"),
    "StartTime": ("runs.started", "datetime"),
    "CloseTime": ("runs.closed", "datetime"),
    "Stuck": ("runs.stuck", "bool"),
    "Paused": ("runs.paused", "bool"),
    "Retrying": ("runs.retrying", "bool"),
    "WaitingOnPerson": (f"(CASE WHEN {_OPEN_TASKS}) THEN 1 ELSE 0 END)", "bool"),
}
_NEGATED_OP = {"=": "!=", "!=": "=", ">": "<=", ">=": "<", "<": ">=", "<=": ">"}
_ORDERED = ("keyword", "number", "datetime")


@dataclass(frozen=True)
class Field:
    """A field a query names: a column expression, an attribute, or the assignees."""

    name: str
    source: str  # "column", "attr" or "assignee"
    type: str
    sql: str = ""


def resolve(name: str, pos: int, types: dict[str, str]) -> Field:
    """The field ``name`` names. Raises QueryError for a name no run can have."""
    if name in _BUILTIN_COLUMNS:
        sql, kind = _BUILTIN_COLUMNS[name]
        return Field(name, "column", kind, sql)
    if name == "TaskAssignee":
        return Field(name, "assignee", "keyword_list")
    if name in SYSTEM_SET:
        return Field(name, "attr", types.get(name, "keyword"))
    if name in types:
        return Field(name, "attr", types[name])
    raise QueryError(pos, f"unknown field {name!r}: not a built-in field, and no run has "
                          "had a search attribute of that name")


class Compiler:
    """Turns a parsed query into SQL over ``runs`` (one compiler per query)."""

    def __init__(self, types: dict[str, str], binary_collate: str = "", *,
                 correlated: bool = False) -> None:
        self.types = types
        self.collate = binary_collate
        self.correlated = correlated
        self.estimating = False
        """Compile an attribute comparison as the bare select of its matching rows."""
        """Test attributes run by run (EXISTS on the run's own rows, by primary key)
        rather than as the set of matching runs (IN): cheaper when few runs are read."""
        self.params: list[Any] = []
        self.under_or = 0
        """How many ORs enclose the comparison being compiled."""

    # -- values ---------------------------------------------------------------------------
    def literal(self, field: Field, value: Value) -> Any:
        """The stored form of a literal compared with ``field``; QueryError if its type
        differs from the field's."""
        kind = field.type
        if kind in ("keyword", "keyword_list") and value.kind == "string":
            return value.value
        if kind == "status" and value.kind == "string":
            if value.value not in STATUS_NAMES:
                raise QueryError(value.pos, f"ExecutionStatus is one of "
                                            f"{', '.join(STATUS_NAMES)}; got {value.value!r}")
            return STATUS_NAMES[value.value]
        if kind == "number" and value.kind == "number":
            return float(value.value)
        if kind == "bool" and value.kind == "bool":
            return 1 if value.value else 0
        if kind == "datetime" and value.kind == "string":
            parsed = parse_datetime(value.value)
            if parsed is None:
                raise QueryError(value.pos, f"{field.name} is a datetime: write an ISO time "
                                            "with an offset, e.g. '2026-01-31T09:00:00Z'")
            return parsed.timestamp()
        shown = {"string": "a string", "number": "a number", "bool": "a bool"}[value.kind]
        raise QueryError(value.pos, f"{field.name} is a {kind.replace('_', ' ')}; cannot "
                                    f"compare it with {shown}")

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    # -- the condition ------------------------------------------------------------------------
    def where(self, expr: Expr | None) -> str:
        """The SQL condition of ``expr`` (``1 = 1`` for None); parameters in ``params``."""
        return "1 = 1" if expr is None else self.expr(expr, negated=False)

    def expr(self, expr: Expr, negated: bool) -> str:
        if isinstance(expr, Not):
            return self.expr(expr.item, not negated)
        if isinstance(expr, BoolOp):
            op = expr.op if not negated else ("OR" if expr.op == "AND" else "AND")
            self.under_or += op == "OR"
            try:
                return "(" + f" {op} ".join(self.expr(e, negated) for e in expr.items) + ")"
            finally:
                self.under_or -= op == "OR"
        field = resolve(expr.field, expr.pos, self.types)
        if isinstance(expr, IsNull):
            present = expr.negated != negated  # IS NOT NULL, or NOT (... IS NULL)
            return self.presence(field, present)
        if isinstance(expr, Compare):
            return self.compare(field, expr, negated)
        if isinstance(expr, InList):
            self.check_kind(field, expr.pos, "IN", ("keyword", "keyword_list", "number",
                                                    "datetime", "bool", "status"))
            values = [self.literal(field, v) for v in expr.values]
            return self.atom(field, "IN", values, expr.negated != negated)
        if isinstance(expr, Between):
            self.check_kind(field, expr.pos, "BETWEEN", _ORDERED)
            low, high = self.literal(field, expr.low), self.literal(field, expr.high)
            return self.atom(field, "BETWEEN", [low, high], expr.negated != negated)
        if isinstance(expr, StartsWith):
            self.check_kind(field, expr.pos, "STARTS_WITH", ("keyword",))
            prefix = self.literal(field, expr.prefix)
            return self.atom(field, "STARTS_WITH", [prefix], expr.negated != negated)
        raise AssertionError(expr)

    @staticmethod
    def check_kind(field: Field, pos: int, what: str, allowed: tuple[str, ...]) -> None:
        if field.type not in allowed:
            raise QueryError(pos, f"{what} does not apply to {field.name}, a "
                                  f"{field.type.replace('_', ' ')}")

    def compare(self, field: Field, expr: Compare, negated: bool) -> str:
        op = expr.op
        if op not in ("=", "!=") and field.type not in _ORDERED:
            raise QueryError(expr.pos, f"{op} does not apply to {field.name}, a "
                                       f"{field.type.replace('_', ' ')} (use = or !=)")
        value = self.literal(field, expr.value)
        if field.source != "column" and field.type == "keyword_list" or \
                field.source == "assignee":
            return self.atom(field, "IN", [value], negated != (op == "!="))
        return self.atom(field, _NEGATED_OP[op] if negated else op, [value], False)

    def presence(self, field: Field, present: bool) -> str:
        if field.source == "column":
            return f"{field.sql} IS {'NOT ' if present else ''}NULL"
        has = self.member(field, lambda: "1 = 1")
        return has if present else f"NOT {has}"

    def condition(self, field: Field, column: str, op: str, values: list[Any],
                  negated: bool) -> str:
        """``column op values`` (negated as SQL's NOT would, for present values)."""
        text = field.type == "keyword" and field.source == "column"
        ranged = f"{column}{self.collate}" if text else column
        if op == "IN":
            marks = ", ".join(self.bind(v) for v in values)
            return f"{column} {'NOT ' if negated else ''}IN ({marks})"
        if op == "BETWEEN":
            low, high = self.bind(values[0]), self.bind(values[1])
            if negated:
                return f"({ranged} < {low} OR {ranged} > {high})"
            return f"({ranged} >= {low} AND {ranged} <= {high})"
        if op == "STARTS_WITH":
            prefix = values[0]
            start, length, same = self.bind(prefix), self.bind(len(prefix)), self.bind(prefix)
            matches = f"({ranged} >= {start} AND substr({column}, 1, {length}) = {same})"
            return f"NOT {matches}" if negated else matches
        if negated:
            op = _NEGATED_OP[op]
        if op in ("=", "!="):
            return f"{column} {'<>' if op == '!=' else '='} {self.bind(values[0])}"
        return f"{ranged} {op} {self.bind(values[0])}"

    def atom(self, field: Field, op: str, values: list[Any], negated: bool) -> str:
        """One comparison with its negation folded in; false where the field is absent."""
        if field.source == "column":
            column = field.sql
            if self.correlated and column.startswith("runs.") and column != "runs.started":
                # leave the index to the plan (a start-time range goes with its order)
                column = f"({column} || '')" if field.type in ("keyword", "status") else \
                    f"({column} + 0)"
            elif field.type == "status" and self.under_or:
                # SQLite 3.54's planner fails ("internal query planner error") on an OR
                # of two equal `status = ?` terms, matched against the partial index
                # runs_open; under an OR, status is compared as an expression instead
                column = f"({column} || '')"
            return "(" + self.condition(field, column, op, values, negated) + ")"
        column = "t.assignee" if field.source == "assignee" else (
            "a.kw" if field.type in ("keyword", "keyword_list") else "a.num")
        if self.correlated and field.source == "attr":  # probe by key, not by value index
            column = f"({column} || '')" if column == "a.kw" else f"({column} + 0)"
        if field.type == "keyword_list" or field.source == "assignee":
            if not negated:  # any value matches
                return self.member(
                    field, lambda: self.condition(field, column, op, values, False))
            has = self.member(field, lambda: "1 = 1")
            hit = self.member(field, lambda: self.condition(field, column, op, values, False))
            return f"({has} AND NOT {hit})"
        return self.member(field, lambda: self.condition(field, column, op, values, negated))

    def member(self, field: Field, condition: Callable[[], str]) -> str:
        """Runs having a value of ``field`` that meets ``condition()`` (called after the
        name is bound: parameters are bound in the order they appear)."""
        if field.source == "assignee":
            return f"{_OPEN_TASKS} AND t.assignee IS NOT NULL AND {condition()})"
        name = self.bind(field.name)
        if self.estimating:
            return f"SELECT 1 FROM search_attrs a WHERE a.name = {name} AND {condition()}"
        if self.correlated:
            return (f"EXISTS (SELECT 1 FROM search_attrs a WHERE a.run_id = runs.run_id AND "
                    f"a.name = {name} AND {condition()})")
        return (f"runs.run_id IN (SELECT a.run_id FROM search_attrs a WHERE a.name = {name} "
                f"AND {condition()})")

    # -- order and grouping -----------------------------------------------------------------
    def order_by(self, query: Query) -> str:
        """The ORDER BY clause: the query's keys (absent values last), then newest start."""
        keys: list[str] = []
        for item in query.order:
            field = resolve(item.field, item.pos, self.types)
            if field.source != "column" and field.type == "keyword_list" or \
                    field.source == "assignee":
                raise QueryError(item.pos, f"cannot order by {field.name}, a list")
            absent = f"CASE WHEN {self.scalar(field)} IS NULL THEN 1 ELSE 0 END"
            expr = self.scalar(field)  # bound again: each occurrence has its parameter
            if field.type == "keyword" and field.source == "column":
                expr += self.collate
            direction = " DESC" if item.descending else ""
            keys.append(f"{absent}, {expr}{direction}")
        keys.append("runs.started DESC, runs.run_id DESC")
        return "ORDER BY " + ", ".join(keys)

    def scalar(self, field: Field) -> str:
        """A SQL expression giving a run's value of a one-valued field (NULL if absent)."""
        if field.source == "column":
            return field.sql
        column = "kw" if field.type == "keyword" else "num"
        return (f"(SELECT g.{column} FROM search_attrs g WHERE g.run_id = runs.run_id AND "
                f"g.name = {self.bind(field.name)})")

