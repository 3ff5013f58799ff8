"""Search attributes and memo: set at start and from workflow code (replay-safe), typed by
their first value, shown, listed and counted; built-in fields; the CLI's words for them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from onward import BadInput, Engine
from onward.cli import main
from onward.listfilter import QueryError
from onward.search_attributes import SearchAttributeTypeError
from tests.helpers import wait_until
from tests.pg import any_db, pg_url  # noqa: F401 - fixtures

FLOWS = str(Path(__file__).resolve().parents[1] / "flows" / "visibility.py")


def ids(found: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in found]


@pytest.fixture
def eng(any_db: str | Path) -> Any:  # noqa: F811
    engine = Engine(any_db, flows=[FLOWS])
    yield engine
    engine.close()


def test_start_stores_attributes_and_memo_that_show_list_and_queries_see(eng: Engine) -> None:
    eng.start("approval", "ana", id="c1", memo={"note": "from the portal", "n": [1, 2]},
              search_attributes={"employee": "dana", "amount": 1200.5, "urgent": True,
                                 "due": "2026-03-01T09:00:00+01:00", "tags": ["travel", "q1"]})
    eng.start("approval", "ben", id="c2", search_attributes={"employee": "bob", "amount": 80})
    shown = eng.show("c1")
    assert shown["search_attributes"] == {
        "employee": "dana", "amount": 1200.5, "urgent": True,
        "due": "2026-03-01T09:00:00+01:00", "tags": ["travel", "q1"]}
    assert shown["memo"] == {"note": "from the portal", "n": [1, 2]}
    assert eng.show("c2")["memo"] == {}
    assert ids(eng.list(query='amount > 1000 AND ExecutionStatus = "Running"')) == ["c1"]
    assert ids(eng.list(query='due < "2026-03-01T08:30:00Z"')) == ["c1"]  # 08:00 UTC
    assert ids(eng.list(query='tags = "q1" OR employee = "bob" ORDER BY amount')) == [
        "c2", "c1"]
    listed = eng.list(query="urgent = true")
    assert listed[0]["search_attributes"]["employee"] == "dana"
    assert eng.count("amount BETWEEN 0 AND 100") == {"count": 1}


def test_a_value_of_another_type_is_refused_at_start_and_nothing_is_written(
        eng: Engine) -> None:
    eng.start("approval", "ana", id="first", search_attributes={"amount": 10})
    with pytest.raises(SearchAttributeTypeError, match=r"'amount' is a number .* got \"ten\""):
        eng.start("approval", "ana", id="second",
                  search_attributes={"amount": "ten", "fresh": "x"})
    assert eng.list(all_runs=True) and ids(eng.list(all_runs=True)) == ["first"]
    with pytest.raises(QueryError, match="unknown field 'fresh'"):  # not typed either
        eng.list(query='fresh = "x"')
    eng.start("approval", "ana", id="third", search_attributes={
        "when": "2026-01-01T00:00:00Z"})  # types `when` as a datetime
    with pytest.raises(BadInput, match="datetime"):
        eng.start("approval", "ana", id="fourth", search_attributes={"when": "soon"})
    assert eng.show("third")["search_attributes"] == {"when": "2026-01-01T00:00:00Z"}


def test_a_keyword_name_keeps_iso_looking_strings_as_keywords(eng: Engine) -> None:
    eng.start("approval", "a", id="k1", search_attributes={"code": "A-17"})
    eng.start("approval", "a", id="k2", search_attributes={"code": "2026-01-01T00:00:00Z"})
    assert ids(eng.list(query='code STARTS_WITH "2026"')) == ["k2"]


def test_built_in_names_are_refused_except_schedule_id_from_python(eng: Engine) -> None:
    with pytest.raises(BadInput, match="'ExecutionStatus' is a built-in field"):
        eng.start("approval", "a", id="b1", search_attributes={"ExecutionStatus": "x"})
    eng.start("approval", "a", id="fired", search_attributes={"ScheduleId": "nightly"})
    eng.start("approval", "a", id="manual")
    assert ids(eng.list(query='ScheduleId = "nightly"')) == ["fired"]
    assert ids(eng.list(query="ScheduleId IS NULL")) == ["manual"]
    with pytest.raises(QueryError, match="ScheduleId is a keyword"):
        eng.list(query="ScheduleId = 3")


def test_upserts_are_recorded_and_replay_matches_them(eng: Engine) -> None:
    with eng.worker():
        eng.start("tagger", 42, id="t1", search_attributes={"owner": "ana"})
        wait_until(lambda: eng.show("t1")["search_attributes"].get("stage") == "one")
        assert ids(eng.list(query='stage = "one" AND draft = true AND owner = "ana"')) == ["t1"]
        eng.signal("t1", "go")
        assert eng.handle("t1").result(timeout=20) == "done"
    shown = eng.show("t1")
    assert shown["search_attributes"] == {"owner": "ana", "stage": "two", "amount": 42,
                                          "seen": "2026-01-02T00:00:00+00:00"}
    upserts = [e for e in shown["history"] if e["type"] == "SearchAttributesUpserted"]
    assert [e["attrs"]["attributes"] for e in upserts] == [
        {"stage": "one", "amount": 42, "draft": True, "seen": "2026-01-02T00:00:00+00:00"},
        {"stage": "two", "draft": None}]
    assert ids(eng.list(query="draft IS NULL AND seen > '2026-01-01T23:00:00Z'")) == ["t1"]
    assert eng.replay(["t1"])[0]["ok"] is True
    # a history whose upsert names differ from the code's calls does not replay
    changed = json.loads(json.dumps(shown))
    first = next(e for e in changed["history"] if e["type"] == "SearchAttributesUpserted")
    first["attrs"]["attributes"] = {"other": 1}
    report = eng.replay_history(changed)
    assert report["ok"] is False and "SearchAttributesUpserted" in json.dumps(report)


def test_an_upsert_of_another_type_holds_the_run_stuck_recording_nothing(eng: Engine) -> None:
    eng.start("approval", "a", id="typed", search_attributes={"amount": 5})
    with eng.worker():
        eng.start("wrong_type", "lots", id="w1")
        wait_until(lambda: eng.show("w1")["stuck"])
        shown = eng.show("w1")
        assert "'amount' is a number" in shown["stuck_reason"]
        assert [e["type"] for e in shown["history"]] == ["WorkflowStarted", "WorkflowTaskFailed"]
        assert shown["search_attributes"] == {}
        assert ids(eng.list(query="Stuck = true")) == ["w1"]
        eng.start("reserved", id="r1")
        assert eng.handle("r1").result(timeout=20).startswith(
            "refused: search attribute 'ScheduleId' is a built-in field")


def test_waiting_on_person_and_task_assignee_follow_open_tasks(eng: Engine) -> None:
    with eng.worker():
        eng.start("approval", "ana", id="p1")
        eng.start("approval", "ben", id="p2")
        wait_until(lambda: len(eng.tasks()) == 2)
        assert ids(eng.list(query='TaskAssignee = "ana"')) == ["p1"]
        assert sorted(ids(eng.list(query="WaitingOnPerson = true"))) == ["p1", "p2"]
        task = next(t for t in eng.tasks() if t["assignee"] == "ana")
        eng.complete_task(task["task_id"], "yes")
        assert eng.handle("p1").result(timeout=20) == "yes"
    assert ids(eng.list(query="TaskAssignee IS NOT NULL")) == ["p2"]
    assert ids(eng.list(query='WaitingOnPerson = false AND ExecutionStatus = "Completed"')) \
        == ["p1"]
    assert eng.count(group_by="ExecutionStatus")["groups"] == [
        {"value": "Completed", "count": 1}, {"value": "Running", "count": 1}]


def test_continued_runs_keep_their_attributes_and_memo(eng: Engine) -> None:
    with eng.worker():
        eng.start("renewing", 2, id="n1", search_attributes={"team": "ops"}, memo=[1])
        assert eng.handle("n1").result(timeout=20) == 0
    assert eng.count('team = "ops"') == {"count": 3}
    assert eng.count('team = "ops" AND ExecutionStatus = "ContinuedAsNew"') == {"count": 2}
    assert eng.show("n1")["memo"] == [1]


# -- the command line ------------------------------------------------------------------------

def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_start_list_count_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "v.db")
    common = ("--db", db, "--flows", FLOWS)
    assert run(capsys, "start", "approval", "--input", '["ana"]', "--id", "a", *common,
               "--search-attr", "amount=120", "--search-attr", 'employee="dana"',
               "--memo", '{"note": "x"}')[0] == 0
    assert run(capsys, "start", "approval", "--input", '["ben"]', "--id", "b", *common,
               "--search-attr", "amount=7")[0] == 0
    code, out, _ = run(capsys, "list", "--db", db, "--query", "amount > 100", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["a"]
    assert json.loads(out)[0]["search_attributes"] == {"amount": 120, "employee": "dana"}
    code, out, _ = run(capsys, "count", "--db", db, "--json")
    assert code == 0 and json.loads(out) == {"count": 2}
    code, out, _ = run(capsys, "count", "--db", db, "--query", "amount >= 0", "--group-by",
                       "employee", "--json")
    assert json.loads(out) == {"count": 2, "groups": [{"value": "dana", "count": 1},
                                                      {"value": None, "count": 1}]}
    code, out, _ = run(capsys, "show", "a", "--db", db, "--json")
    assert json.loads(out)["memo"] == {"note": "x"}


def test_cli_bad_input_exits_2_with_one_line_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "v.db"
    common = ("--db", str(db), "--flows", FLOWS)
    assert run(capsys, "start", "approval", "--input", '["a"]', "--id", "a", *common,
               "--search-attr", "amount=1")[0] == 0
    snapshot = tmp_path / "before.db"
    shutil.copy(db, snapshot)
    for argv, message in [
        (("start", "approval", "--id", "b", *common, "--search-attr", 'amount="x"'),
         "onward: search attribute 'amount' is a number (typed by its first value); got \"x\""),
        (("start", "approval", "--id", "b", *common, "--search-attr", 'ScheduleId="s"'),
         "onward: --search-attr ScheduleId: a built-in field cannot be set"),
        (("start", "approval", "--id", "b", *common, "--search-attr", "amount"),
         "--search-attr 'amount': write NAME=JSON"),
        (("start", "approval", "--id", "b", *common, "--memo", "{nope"),
         "onward: --memo is not JSON"),
        (("list", "--db", str(db), "--query", "amount = 'x'"),
         "onward: query: at 10: amount is a number; cannot compare it with a string"),
        (("list", "--db", str(db), "--query", "amount > 100 AND x ="),
         "query: at 21: expected a value after '=' (got end of query)"),
        (("count", "--db", str(db), "--group-by", "nope"),
         "onward: --group-by nope: unknown field"),
        (("count", "--db", str(db), "--group-by", "tags_or_not", "--query", "amount <"),
         "query: at 9: expected a value after '<' (got end of query)"),
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert snapshot.read_bytes() == db.read_bytes() or _same_rows(snapshot, db)


def _same_rows(a: Path, b: Path) -> bool:
    import apsw
    dumps = []
    for path in (a, b):
        conn = apsw.Connection(str(path))
        dumps.append({t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                      for t in ("runs", "events", "search_attrs", "search_attr_types",
                                "run_meta")})
        conn.close()
    return dumps[0] == dumps[1]


def test_an_or_of_equal_status_terms_is_answered(eng: Engine) -> None:
    """SQLite 3.54's planner failed on this shape against the partial index runs_open
    ("internal query planner error"); status under an OR is compared as an expression."""
    eng.start("approval", "a", id="s1")
    query = 'WorkflowId = "s1" AND (ExecutionStatus = "Running" OR ExecutionStatus = "Running")'
    assert ids(eng.list(query=query)) == ["s1"]
    assert eng.count(f"({query}) OR ExecutionStatus = 'Running'") == {"count": 1}


def test_start_async_takes_attributes_and_memo(eng: Engine) -> None:
    import asyncio

    async def go() -> None:
        await eng.start_async("approval", "a", id="as1", search_attributes={"n": 1},
                              memo="m")
    asyncio.run(go())
    shown = eng.show("as1")
    assert shown["search_attributes"] == {"n": 1} and shown["memo"] == "m"


def test_migrate_carries_attributes_memo_and_types_to_postgres(
        tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    from onward.migrate import migrate
    with Engine(tmp_path / "m.db", flows=[FLOWS]) as source:
        source.start("approval", "a", id="m1", search_attributes={"amount": 3, "tags": ["x"]},
                     memo={"k": 1})
    migrate(str(tmp_path / "m.db"), pg_url)
    with Engine(pg_url, flows=[FLOWS]) as target:
        assert ids(target.list(query='amount = 3 AND tags = "x"')) == ["m1"]
        assert target.show("m1")["memo"] == {"k": 1}
        with pytest.raises(SearchAttributeTypeError):
            target.start("approval", "a", id="m2", search_attributes={"amount": "three"})
