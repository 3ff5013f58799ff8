"""Random list-filter queries against a Python model of the same runs, on SQLite and
PostgreSQL; random malformed queries exit 2 without opening the database.

The runs are bulk-loaded as the benchmark loads them (``bench.visibility_bench``): rows of
``runs``, ``search_attrs``, ``run_meta`` and open ``manual_tasks``. The model evaluates a
query with SQL's three-valued logic (a field a run lacks compares unknown; WHERE keeps
only true), independently of the compiler. ``ONWARD_VIS_EXAMPLES`` raises the number of
examples (default 40 per backend).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.visibility_bench import SMALL_DOMAINS, Record, load, make_records
from onward import Engine
from onward.cli import main
from onward.listfilter import QueryError, parse
from onward.store import query_plan
from onward.store.query_sql import STATUS_NAMES
from tests.pg import any_db, pg_url  # noqa: F401 - fixtures

EXAMPLES = int(os.environ.get("ONWARD_VIS_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
RECORDS = list(make_records(60, seed=7, domains=SMALL_DOMAINS))
TIMES = sorted(r.started for r in RECORDS)
STATUS_OF = {v: k for k, v in STATUS_NAMES.items()}


# -- the model ------------------------------------------------------------------------------

def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def value_of(rec: Record, name: str) -> Any:
    """A run's value of a field as the model sees it (None: absent; a list: many)."""
    builtin = {
        "WorkflowId": rec.workflow_id, "RunId": rec.run_id, "WorkflowType": rec.workflow,
        "ExecutionStatus": STATUS_OF[rec.status], "StartTime": rec.started,
        "CloseTime": rec.closed, "Stuck": bool(rec.stuck), "Paused": bool(rec.paused),
        "Retrying": bool(rec.retrying), "WaitingOnPerson": bool(rec.assignees),
    }
    if name in builtin:
        return builtin[name]
    if name == "TaskAssignee":
        return [a for a in rec.assignees if a is not None] or None
    value = rec.attrs.get(name)
    if name == "due" and value is not None:
        return _epoch(value)
    return value or None if isinstance(value, list) else value


def literal(name: str, value: Any) -> Any:
    return _epoch(value) if name in ("due", "StartTime", "CloseTime") else value


OPS = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
       ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


def atom(rec: Record, name: str, test: Any) -> bool | None:
    value = value_of(rec, name)
    if value is None:
        return None
    if isinstance(value, list):  # any value: =, IN; none of them: !=, NOT IN
        return test(value)
    return bool(test(value))


def evaluate(rec: Record, node: dict[str, Any]) -> bool | None:
    kind = node["kind"]
    if kind in ("and", "or"):
        results = [evaluate(rec, n) for n in node["items"]]
        if kind == "and":
            return False if False in results else (None if None in results else True)
        return True if True in results else (None if None in results else False)
    if kind == "not":
        inner = evaluate(rec, node["item"])
        return None if inner is None else not inner
    name = node["field"]
    if kind == "null":
        present = value_of(rec, name) is not None
        return present if node["negated"] else not present
    if kind == "cmp":
        op, lit = node["op"], literal(name, node["value"])
        return atom(rec, name, lambda v: (lit in v if op == "=" else lit not in v)
                    if isinstance(v, list) else OPS[op](v, lit))
    if kind == "in":
        lits = [literal(name, v) for v in node["values"]]
        hit = atom(rec, name, lambda v: any(x in lits for x in v) if isinstance(v, list)
                   else v in lits)
        return hit if hit is None or not node["negated"] else not hit
    if kind == "between":
        lo, hi = literal(name, node["low"]), literal(name, node["high"])
        hit = atom(rec, name, lambda v: lo <= v <= hi)
        return hit if hit is None or not node["negated"] else not hit
    if kind == "starts":
        hit = atom(rec, name, lambda v: v.startswith(node["value"]))
        return hit if hit is None or not node["negated"] else not hit
    raise AssertionError(kind)


# -- random queries, as text and as model nodes -----------------------------------------------

def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    return repr(value)


KEYWORDS = {"employee": st.sampled_from(SMALL_DOMAINS.employees + ("zed", "")),
            "WorkflowType": st.sampled_from(("order", "hello", "billing", "nope")),
            "WorkflowId": st.sampled_from([r.workflow_id for r in RECORDS[:8]] + ["wf-"]),
            "ExecutionStatus": st.sampled_from(list(STATUS_NAMES))}
ORDERED = {"amount": st.integers(-1, SMALL_DOMAINS.amounts + 1),
           "due": st.integers(0, 48).map(lambda h: _iso(1_767_225_600 + h * 3600)),
           "StartTime": st.sampled_from(TIMES).map(lambda t: _iso(t))}
LISTS = {"tags": st.sampled_from(SMALL_DOMAINS.tags + ("none",)),
         "TaskAssignee": st.sampled_from(SMALL_DOMAINS.assignees + ("zoe",))}
BOOLS = ("vip", "Stuck", "Paused", "Retrying", "WaitingOnPerson")
ALL_FIELDS = [*KEYWORDS, *ORDERED, *LISTS, *BOOLS, "CloseTime"]


def _iso(ts: float) -> str:
    from datetime import UTC
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def leaf(draw: Any) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["keyword", "ordered", "list", "bool", "null"]))
    if kind == "null":
        name = draw(st.sampled_from(ALL_FIELDS))
        negated = draw(st.booleans())
        return (f"{name} IS {'NOT ' if negated else ''}NULL",
                {"kind": "null", "field": name, "negated": negated})
    if kind == "bool":
        name, value = draw(st.sampled_from(BOOLS)), draw(st.booleans())
        op = draw(st.sampled_from(["=", "!="]))
        return f"{name} {op} {show(value)}", {"kind": "cmp", "field": name, "op": op,
                                                "value": value}
    if kind == "list":
        name = draw(st.sampled_from(sorted(LISTS)))
        values = draw(st.lists(LISTS[name], min_size=1, max_size=3))
        if draw(st.booleans()):
            op = draw(st.sampled_from(["=", "!="]))
            return f"{name} {op} {show(values[0])}", {"kind": "cmp", "field": name, "op": op,
                                                       "value": values[0]}
        negated = draw(st.booleans())
        return (f"{name} {'NOT ' if negated else ''}IN ({', '.join(map(show, values))})",
                {"kind": "in", "field": name, "values": values, "negated": negated})
    pool = KEYWORDS if kind == "keyword" else ORDERED
    name = draw(st.sampled_from(sorted(pool)))
    form = draw(st.sampled_from(["cmp", "in", "between", "starts"] if name in KEYWORDS
                                and name != "ExecutionStatus" else ["cmp", "in"]
                                if name == "ExecutionStatus" else ["cmp", "in", "between"]))
    negated = draw(st.booleans())
    no = "NOT " if negated else ""
    if form == "cmp":
        ops = ["=", "!="] if name == "ExecutionStatus" else list(OPS)
        op, value = draw(st.sampled_from(ops)), draw(pool[name])
        return f"{name} {op} {show(value)}", {"kind": "cmp", "field": name, "op": op,
                                                "value": value}
    if form == "in":
        values = draw(st.lists(pool[name], min_size=1, max_size=3))
        return (f"{name} {no}IN ({', '.join(map(show, values))})",
                {"kind": "in", "field": name, "values": values, "negated": negated})
    if form == "between":
        low, high = draw(pool[name]), draw(pool[name])
        return (f"{name} {no}BETWEEN {show(low)} AND {show(high)}",
                {"kind": "between", "field": name, "low": low, "high": high,
                 "negated": negated})
    prefix = draw(pool[name])[:draw(st.integers(0, 3))]
    return (f"{name} {no}STARTS_WITH {show(prefix)}",
            {"kind": "starts", "field": name, "value": prefix, "negated": negated})


@st.composite
def queries(draw: Any, depth: int = 0) -> tuple[str, dict[str, Any]]:
    shape = draw(st.sampled_from(["leaf", "leaf", "not", "and", "or"] if depth < 3
                                 else ["leaf"]))
    if shape == "leaf":
        return leaf(draw)
    if shape == "not":
        text, node = draw(queries(depth + 1))
        return f"NOT ({text})", {"kind": "not", "item": node}
    parts = draw(st.lists(queries(depth + 1), min_size=2, max_size=3))
    word = " AND " if shape == "and" else " OR "
    return (word.join(f"({t})" for t, _ in parts),
            {"kind": shape, "items": [n for _, n in parts]})


# -- the properties --------------------------------------------------------------------------

@pytest.fixture
def loaded(any_db: str | Path) -> Any:  # noqa: F811
    eng = Engine(any_db)
    load(eng.store, RECORDS)
    yield eng
    eng.close()


def test_valid_queries_agree_with_the_model(loaded: Engine) -> None:
    @SETTINGS
    @given(queries())
    def check(case: tuple[str, dict[str, Any]]) -> None:
        text, node = case
        expected = {r.run_id for r in RECORDS if evaluate(r, node) is True}
        found = loaded.list(query=text)
        assert {r["run_id"] for r in found} == expected, text
        assert loaded.count(text) == {"count": len(expected)}, text
    check()


def test_pages_are_slices_of_the_whole_list(loaded: Engine,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A page is planned (a term matching few rows drives, else the newest runs are read
    one by one; ``CAP`` small here so both plans run): either way, a slice of the full
    list."""
    monkeypatch.setattr(query_plan, "CAP", 8)

    orders = st.sampled_from(["", " ORDER BY StartTime", " ORDER BY StartTime DESC",
                              " ORDER BY WorkflowId DESC", " ORDER BY amount",
                              " ORDER BY amount DESC", " ORDER BY employee",
                              " ORDER BY due DESC", " ORDER BY vip, amount DESC"])

    @SETTINGS
    @given(st.one_of(st.just(("", {})), queries()), orders, st.integers(1, 4),
           st.integers(0, 50))
    def check(case: tuple[str, dict[str, Any]], order: str, limit: int, offset: int) -> None:
        text = case[0] + order
        whole = [r["run_id"] for r in loaded.list(query=text)]
        page = [r["run_id"] for r in loaded.list(query=text, limit=limit, offset=offset)]
        assert page == whole[offset:offset + limit], text
    check()


FLAG_TERMS = st.sampled_from([("Retrying = true", "Retrying"), ("Stuck = true", "Stuck"),
                               ("Paused = true", "Paused")]).map(
    lambda t: (t[0], {"kind": "cmp", "field": t[1], "op": "=", "value": True}))


def test_counts_agree_with_the_model_whichever_term_drives(
        loaded: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A count of several AND terms is driven by one that matches fewer than ``CAP``
    rows, else by the smallest under ``COUNT_CAP`` (the others tested run by run), else is
    one statement (both caps small here so every plan runs): either way the model's
    count, in total and per group."""
    monkeypatch.setattr(query_plan, "CAP", 3)
    monkeypatch.setattr(query_plan, "COUNT_CAP", 20)

    @SETTINGS
    @given(st.lists(st.one_of(queries(2), FLAG_TERMS), min_size=2, max_size=4))
    def check(parts: list[tuple[str, dict[str, Any]]]) -> None:
        text = " AND ".join(f"({t})" for t, _ in parts)
        node = {"kind": "and", "items": [n for _, n in parts]}
        matched = [r for r in RECORDS if evaluate(r, node) is True]
        assert loaded.count(text) == {"count": len(matched)}, text
        grouped = loaded.count(text, group_by="ExecutionStatus")
        expected: dict[str, int] = {}
        for r in matched:
            expected[STATUS_OF[r.status]] = expected.get(STATUS_OF[r.status], 0) + 1
        assert {g["value"]: g["count"] for g in grouped["groups"]} == expected, text
        by_employee = loaded.count(text, group_by="employee")
        assert by_employee["count"] == len(matched), text
    check()


def test_a_count_is_driven_by_a_flag_that_few_runs_have(tmp_path: Path) -> None:
    """``Retrying = true AND WorkflowType = ... AND amount > 10`` (the bench's once slow
    count): the few retrying runs drive (partial index runs_retrying), the type and the
    attribute are tested run by run, not read as the set of every run with an amount."""
    from onward.store.query_sql import Compiler
    from onward.store.search_attrs import types as attr_types
    with Engine(tmp_path / "v.db") as eng:
        load(eng.store, RECORDS)
        query = parse('Retrying = true AND WorkflowType = "order" AND amount > 10')
        assert query.where is not None
        with eng.store.read() as tx:
            types = attr_types(tx)
            compiler = Compiler(types)
            plain = compiler.where(query.where)
            where, params = query_plan._counted_where(tx, query.where, types, "", plain,
                                                      compiler.params)
            plan = " ".join(str(row[-1]) for row in tx.execute(
                f"EXPLAIN QUERY PLAN SELECT count(*) FROM runs WHERE {where}", params))
        assert "runs_retrying" in plan and "search_attrs_num" not in plan, plan
        expected = sum(1 for r in RECORDS if r.retrying and r.workflow == "order"
                       and r.attrs.get("amount", -1) > 10)
        assert eng.count('Retrying = true AND WorkflowType = "order" AND amount > 10') == \
            {"count": expected}


def test_order_by_sorts_present_values_then_absent_ones_on_both_backends(
        loaded: Engine) -> None:
    for name in ("amount", "employee", "WorkflowId", "CloseTime"):
        for descending in (False, True):
            found = loaded.list(query=f"ORDER BY {name}{' DESC' if descending else ''}")
            values = [value_of(next(r for r in RECORDS if r.run_id == f["run_id"]), name)
                      for f in found]
            present = [v for v in values if v is not None]
            assert present == sorted(present, reverse=descending), name
            assert values[len(present):] == [None] * (len(values) - len(present)), name


def test_group_by_counts_each_value(loaded: Engine) -> None:
    result = loaded.count('WorkflowType != "hello"', group_by="employee")
    expected: dict[Any, int] = {}
    for r in RECORDS:
        if r.workflow != "hello":
            key = r.attrs.get("employee")
            expected[key] = expected.get(key, 0) + 1
    assert {g["value"]: g["count"] for g in result["groups"]} == expected
    assert result["count"] == sum(expected.values())
    counts = [g["count"] for g in result["groups"]]
    assert counts == sorted(counts, reverse=True)


MALFORMED = st.one_of(
    queries().map(lambda case: case[0]).flatmap(
        lambda text: st.integers(1, max(1, len(text) - 1)).map(lambda cut: text[:cut])),
    st.text(alphabet="ab=<>!() '\"\\,ANDORTIS0123", max_size=25),
)


@SETTINGS
@given(MALFORMED)
def test_malformed_queries_exit_2_before_the_database_is_opened(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    try:
        parse(text)
    except QueryError as err:
        missing = tmp_path / "never-created.db"
        for argv in (["list", "--query", text], ["count", "--query", text]):
            assert main([*argv, "--db", str(missing)]) == 2
            err_text = capsys.readouterr().err
            assert str(err) in err_text and err_text.count("\n") == 1
            assert not missing.exists()  # no database opened, none created
        return
    # it parsed after all (a cut may leave a whole query): nothing to check here
