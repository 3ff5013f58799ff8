"""The list-filter language (Temporal's syntax): a tokenizer and a recursive-descent parser.

``parse(text)`` turns a query such as ``amount > 100 AND ExecutionStatus = "Running"
ORDER BY StartTime DESC`` into a small AST (``Query``), or raises ``QueryError`` naming the
1-based character position of the problem. Nothing here reads a database: types are checked
and SQL is made by ``engine.store.query_sql``.

A hand-written parser rather than a grammar library: the grammar is six rules, the error
messages are our own words with positions, and no dependency is added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

from .errors import BadInput


class QueryError(BadInput):
    """A query that does not parse, or does not type-check; the message names the position."""

    def __init__(self, pos: int, message: str) -> None:
        super().__init__(f"query: at {pos}: {message}")
        self.pos = pos


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is ``name``, ``string``, ``number``, ``op``, ``punct``,
    ``keyword`` (upper-cased in ``text``) or ``end``; ``pos`` is 1-based."""

    kind: str
    text: str
    value: Any
    pos: int


KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "BETWEEN", "STARTS_WITH", "IS", "NULL",
                      "ORDER", "BY", "ASC", "DESC", "TRUE", "FALSE"})
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_OPS = ("!=", "<>", ">=", "<=", "=", ">", "<")


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token. Raises QueryError."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        pos = i + 1
        if ch in "'\"":
            chars: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise QueryError(pos, f"string opened with {ch} is not closed")
                if text[j] == "\\":
                    if j + 1 >= n:
                        raise QueryError(j + 1, "a backslash at the end of the query")
                    chars.append(text[j + 1])
                    j += 2
                    continue
                if text[j] == ch:
                    break
                chars.append(text[j])
                j += 1
            tokens.append(Token("string", text[i:j + 1], "".join(chars), pos))
            i = j + 1
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0 or end == i + 1:
                raise QueryError(pos, "a `quoted name` is not closed or is empty")
            tokens.append(Token("name", text[i + 1:end], text[i + 1:end], pos))
            i = end + 1
            continue
        match = _NUMBER.match(text, i)
        if match and (ch != "-" or match.end() > i + 1):
            tail = match.end()
            if tail < n and (text[tail].isalnum() or text[tail] == "_"):
                raise QueryError(pos, f"not a number: {text[i:tail + 1]!r}")
            word = match.group()
            value: Any = float(word) if any(c in word for c in ".eE") else int(word)
            tokens.append(Token("number", word, value, pos))
            i = tail
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token("op", "!=" if op == "<>" else op, None, pos))
            i += len(op)
            continue
        if ch in "(),":
            tokens.append(Token("punct", ch, None, pos))
            i += 1
            continue
        match = _NAME.match(text, i)
        if match:
            word = match.group()
            if word.upper() in KEYWORDS:
                tokens.append(Token("keyword", word.upper(), None, pos))
            else:
                tokens.append(Token("name", word, word, pos))
            i = match.end()
            continue
        raise QueryError(pos, f"unexpected character {ch!r}")
    tokens.append(Token("end", "", None, n + 1))
    return tokens


# -- the AST --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    """A literal: ``kind`` is ``string``, ``number`` or ``bool``."""

    kind: str
    value: Any
    pos: int


@dataclass(frozen=True)
class Compare:
    """``field op value`` (op one of = != > >= < <=)."""

    field: str
    op: str
    value: Value
    pos: int


@dataclass(frozen=True)
class InList:
    """``field [NOT] IN (v, ...)``."""

    field: str
    values: tuple[Value, ...]
    negated: bool
    pos: int


@dataclass(frozen=True)
class Between:
    """``field [NOT] BETWEEN low AND high`` (both ends included)."""

    field: str
    low: Value
    high: Value
    negated: bool
    pos: int


@dataclass(frozen=True)
class StartsWith:
    """``field [NOT] STARTS_WITH 'prefix'``."""

    field: str
    prefix: Value
    negated: bool
    pos: int


@dataclass(frozen=True)
class IsNull:
    """``field IS [NOT] NULL``."""

    field: str
    negated: bool
    pos: int


@dataclass(frozen=True)
class Not:
    """``NOT expr``."""

    item: Expr


@dataclass(frozen=True)
class BoolOp:
    """``a AND b AND ...`` or ``a OR b OR ...`` (``op`` is ``AND`` or ``OR``)."""

    op: str
    items: tuple[Expr, ...]


Expr = Union[Compare, InList, Between, StartsWith, IsNull, Not, BoolOp]  # noqa: UP007


@dataclass(frozen=True)
class OrderItem:
    """One ``ORDER BY`` key."""

    field: str
    descending: bool
    pos: int


@dataclass(frozen=True)
class Query:
    """A parsed query: a condition (None: every run) and its order."""

    where: Expr | None
    order: tuple[OrderItem, ...] = field(default=())


# -- the parser -----------------------------------------------------------------------------

def _describe(token: Token) -> str:
    if token.kind == "end":
        return "end of query"
    return repr(token.text) if token.kind != "string" else f"string {token.text}"


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_keyword(self, *words: str) -> bool:
        return self.token.kind == "keyword" and self.token.text in words

    def expect_keyword(self, word: str, after: str) -> Token:
        if not self.is_keyword(word):
            self.fail(f"expected {word} after {after}")
        return self.take()

    def fail(self, wanted: str) -> None:
        raise QueryError(self.token.pos, f"{wanted} (got {_describe(self.token)})")

    def query(self) -> Query:
        where = None
        if self.token.kind != "end" and not self.is_keyword("ORDER"):
            where = self.expr()
        order: list[OrderItem] = []
        if self.is_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY", "ORDER")
            while True:
                name = self.field_name("after ORDER BY" if not order else "after ','")
                descending = False
                if self.is_keyword("ASC", "DESC"):
                    descending = self.take().text == "DESC"
                order.append(OrderItem(name.value, descending, name.pos))
                if self.token.kind == "punct" and self.token.text == ",":
                    self.take()
                    continue
                break
        if self.token.kind != "end":
            self.fail("expected AND, OR, ORDER BY or the end of the query")
        return Query(where, tuple(order))

    def expr(self) -> Expr:
        items = [self.and_expr()]
        while self.is_keyword("OR"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def and_expr(self) -> Expr:
        items = [self.not_expr()]
        while self.is_keyword("AND"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def not_expr(self) -> Expr:
        if self.is_keyword("NOT"):
            self.take()
            return Not(self.not_expr())
        if self.token.kind == "punct" and self.token.text == "(":
            self.take()
            inner = self.expr()
            if not (self.token.kind == "punct" and self.token.text == ")"):
                self.fail("expected ')'")
            self.take()
            return inner
        return self.predicate()

    def field_name(self, where: str) -> Token:
        if self.token.kind != "name":
            self.fail(f"expected a field name {where}")
        return self.take()

    def value(self, after: str) -> Value:
        token = self.token
        if token.kind == "string":
            self.take()
            return Value("string", token.value, token.pos)
        if token.kind == "number":
            self.take()
            return Value("number", token.value, token.pos)
        if token.kind == "keyword" and token.text in ("TRUE", "FALSE"):
            self.take()
            return Value("bool", token.text == "TRUE", token.pos)
        self.fail(f"expected a value after {after}")
        raise AssertionError("unreachable")

    def predicate(self) -> Expr:
        name = self.field_name("or '('")
        field_name, pos = name.value, name.pos
        token = self.token
        if token.kind == "op":
            self.take()
            return Compare(field_name, token.text, self.value(repr(token.text)), pos)
        if self.is_keyword("IS"):
            self.take()
            negated = False
            if self.is_keyword("NOT"):
                self.take()
                negated = True
            self.expect_keyword("NULL", "IS NOT" if negated else "IS")
            return IsNull(field_name, negated, pos)
        negated = False
        if self.is_keyword("NOT"):
            self.take()
            negated = True
            if not self.is_keyword("IN", "BETWEEN", "STARTS_WITH"):
                self.fail(f"expected IN, BETWEEN or STARTS_WITH after {field_name} NOT")
        if self.is_keyword("IN"):
            self.take()
            if not (self.token.kind == "punct" and self.token.text == "("):
                self.fail("expected '(' after IN")
            self.take()
            values = [self.value("'(' of IN")]
            while self.token.kind == "punct" and self.token.text == ",":
                self.take()
                values.append(self.value("',' in IN (...)"))
            if not (self.token.kind == "punct" and self.token.text == ")"):
                self.fail("expected ',' or ')' in IN (...)")
            self.take()
            return InList(field_name, tuple(values), negated, pos)
        if self.is_keyword("BETWEEN"):
            self.take()
            low = self.value("BETWEEN")
            self.expect_keyword("AND", "BETWEEN's first value")
            high = self.value("BETWEEN ... AND")
            return Between(field_name, low, high, negated, pos)
        if self.is_keyword("STARTS_WITH"):
            self.take()
            prefix = self.value("STARTS_WITH")
            return StartsWith(field_name, prefix, negated, pos)
        self.fail(f"expected an operator after {field_name} (=, !=, >, >=, <, <=, IN, "
                  "BETWEEN, STARTS_WITH, IS NULL)")
        raise AssertionError("unreachable")


def parse(text: str) -> Query:
    """Parse a list-filter query. Raises QueryError (a BadInput) naming the position."""
    if not isinstance(text, str):
        raise QueryError(1, "a query must be text")
    if len(text) > 10_000:
        raise QueryError(10_001, "a query is at most 10000 characters")
    return _Parser(text).query()
