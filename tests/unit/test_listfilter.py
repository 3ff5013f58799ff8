"""The list-filter parser: what it builds, and errors that name the position."""

from __future__ import annotations

import pytest

from onward.errors import BadInput
from onward.listfilter import (
    Between,
    BoolOp,
    Compare,
    InList,
    IsNull,
    Not,
    OrderItem,
    QueryError,
    StartsWith,
    Value,
    parse,
    tokenize,
)


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    q = parse("a = 1 OR NOT b = 2 AND c = 3")
    assert q.where == BoolOp("OR", (
        Compare("a", "=", Value("number", 1, 5), 1),
        BoolOp("AND", (Not(Compare("b", "=", Value("number", 2, 18), 14)),
                       Compare("c", "=", Value("number", 3, 28), 24)))))


def test_parentheses_group() -> None:
    q = parse("(a = 1 OR b = 2) AND c = 3")
    assert isinstance(q.where, BoolOp) and q.where.op == "AND"
    assert isinstance(q.where.items[0], BoolOp) and q.where.items[0].op == "OR"


def test_every_predicate_form() -> None:
    q = parse("a IN ('x', \"y\") AND b NOT IN (1, 2.5) AND c BETWEEN 1 AND 5 AND "
              "d NOT BETWEEN 'p' AND 'q' AND e STARTS_WITH 'pre' AND f NOT STARTS_WITH 'x' "
              "AND g IS NULL AND h IS NOT NULL AND i != true AND j <> false AND k >= -3e2")
    assert isinstance(q.where, BoolOp)
    kinds = [type(item) for item in q.where.items]
    assert kinds == [InList, InList, Between, Between, StartsWith, StartsWith, IsNull, IsNull,
                     Compare, Compare, Compare]
    a, b = q.where.items[0], q.where.items[1]
    assert isinstance(a, InList) and [v.value for v in a.values] == ["x", "y"] and not a.negated
    assert isinstance(b, InList) and [v.value for v in b.values] == [1, 2.5] and b.negated
    j, k = q.where.items[9], q.where.items[10]
    assert isinstance(j, Compare) and j.op == "!=" and j.value == Value("bool", False, j.value.pos)
    assert isinstance(k, Compare) and k.value.value == -300.0


def test_keywords_are_case_insensitive_and_names_keep_their_case() -> None:
    q = parse("Amount between 1 and 2 order by StartTime desc, WorkflowId")
    assert q.where == Between("Amount", Value("number", 1, 16), Value("number", 2, 22), False, 1)
    assert q.order == (OrderItem("StartTime", True, 33), OrderItem("WorkflowId", False, 49))


def test_strings_take_backslash_escapes_in_either_quote() -> None:
    q = parse(r"""a = 'it\'s' OR b = "say \"hi\" \\ ok" """)
    assert isinstance(q.where, BoolOp)
    values = [item.value.value for item in q.where.items if isinstance(item, Compare)]
    assert values == ["it's", 'say "hi" \\ ok']


def test_an_empty_query_and_an_order_alone_match_everything() -> None:
    assert parse("").where is None and parse("   ").where is None
    q = parse("ORDER BY amount")
    assert q.where is None and q.order == (OrderItem("amount", False, 10),)


def test_backquoted_names_may_hold_spaces() -> None:
    assert parse("`my attr` = 1").where == Compare("my attr", "=", Value("number", 1, 13), 1)


@pytest.mark.parametrize(("query", "message"), [
    ("amount > 100 AND x =", "query: at 21: expected a value after '=' (got end of query)"),
    ("amount >", "query: at 9: expected a value after '>' (got end of query)"),
    ("a = 1 AND", "query: at 10: expected a field name or '(' (got end of query)"),
    ("(a = 1", "query: at 7: expected ')' (got end of query)"),
    ("a = 1)", "query: at 6: expected AND, OR, ORDER BY or the end of the query (got ')')"),
    ("a ~ 1", "query: at 3: unexpected character '~'"),
    ("a = 'open", "query: at 5: string opened with ' is not closed"),
    ("a = 'x\\", "query: at 7: a backslash at the end of the query"),
    ("a IN 1", "query: at 6: expected '(' after IN (got '1')"),
    ("a IN (1 2)", "query: at 9: expected ',' or ')' in IN (...) (got '2')"),
    ("a BETWEEN 1 OR 2", "query: at 13: expected AND after BETWEEN's first value (got 'OR')"),
    ("a IS 1", "query: at 6: expected NULL after IS (got '1')"),
    ("a NOT = 1", "query: at 7: expected IN, BETWEEN or STARTS_WITH after a NOT (got '=')"),
    ("a", "query: at 2: expected an operator after a (=, !=, >, >=, <, <=, IN, BETWEEN, "
          "STARTS_WITH, IS NULL) (got end of query)"),
    ("ORDER amount", "query: at 7: expected BY after ORDER (got 'amount')"),
    ("a = 1 ORDER BY", "query: at 15: expected a field name after ORDER BY (got end of query)"),
    ("a = 12abc", "query: at 5: not a number: '12a'"),
    ("= 1", "query: at 1: expected a field name or '(' (got '=')"),
    ("a = AND", "query: at 5: expected a value after '=' (got 'AND')"),
])
def test_errors_name_the_position(query: str, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert str(caught.value) == message
    assert isinstance(caught.value, BadInput)  # the CLI's exit 2
    assert "\n" not in str(caught.value)


def test_tokens_carry_one_based_positions() -> None:
    tokens = tokenize("ab >= 'c'")
    assert [(t.kind, t.pos) for t in tokens] == [("name", 1), ("op", 4), ("string", 7),
                                                ("end", 10)]
