"""``onward schedule``: the commands, their JSON, exit statuses and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onward.cli import build_parser, main

FLOWS = str(Path(__file__).resolve().parent.parent / "flows" / "scheduled.py")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


def test_schedule_is_in_help_with_every_action() -> None:
    assert "schedule" in build_parser().format_help()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["schedule", "--help"])


def test_create_list_describe_pause_trigger_backfill_delete(
        capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, err = run(capsys, "schedule", "create", "nightly", "--workflow", "tick",
                         "--input", '["eu"]', "--cron", "30 2 * * *", "--tz",
                         "Europe/Berlin", "--overlap", "allow_all", "--catchup", "5m",
                         "--jitter", "10s", "--note", "reports", "--db", db, "--flows", FLOWS)
    assert (code, err) == (0, "") and "created schedule nightly" in out
    code, out, _ = run(capsys, "schedule", "describe", "nightly", "--json", "--db", db)
    described = json.loads(out)
    assert code == 0 and described["spec"] == {"cron": "30 2 * * *"}
    assert described["tz"] == "Europe/Berlin" and described["catchup"] == 300
    assert len(described["next_fires"]) == 5 and described["note"] == "reports"
    assert set(described) >= {"id", "spec", "tz", "overlap", "paused", "note", "next_fires",
                              "recent", "counts"}
    code, out, _ = run(capsys, "schedule", "list", "--json", "--db", db)
    assert [s["id"] for s in json.loads(out)] == ["nightly"]
    code, out, _ = run(capsys, "schedule", "list", "--db", db)
    assert "nightly" in out and "30 2 * * *" in out
    assert run(capsys, "schedule", "pause", "nightly", "--note", "db work", "--db", db)[0] == 0
    code, out, _ = run(capsys, "schedule", "describe", "nightly", "--db", db)
    assert "paused: db work" in out
    assert run(capsys, "schedule", "unpause", "nightly", "--db", db)[0] == 0
    code, out, _ = run(capsys, "schedule", "trigger", "nightly", "--db", db)
    assert code == 0 and "started" in out
    code, out, _ = run(capsys, "schedule", "backfill", "nightly", "--start",
                       "2026-11-01T00:00:00Z", "--end", "2026-11-04T00:00:00Z", "--db", db)
    assert code == 0 and "3 started" in out
    code, out, _ = run(capsys, "schedule", "describe", "nightly", "--json", "--db", db)
    recent = json.loads(out)["recent"]
    assert len(recent) == 4 and recent[-1]["id"] == "nightly-2026-11-01T01:30:00Z"
    assert run(capsys, "schedule", "delete", "nightly", "--db", db)[0] == 0
    code, out, _ = run(capsys, "schedule", "list", "--json", "--db", db)
    assert json.loads(out) == []


@pytest.mark.parametrize(("args", "says"), [
    (["--cron", "0 25 * * *"], "hour field '25' (field 2, character 3)"),
    (["--cron", "0 1 * * *", "--tz", "Europe/Atlantis"], "Europe/Atlantis"),
    (["--every", "5 minutes"], "--every '5 minutes': not a duration at character 2"),
    (["--every", "5m", "--catchup", "x"], "--catchup"),
    (["--every", "5m", "--jitter", "1y"], "--jitter"),
])
def test_bad_specs_exit_2_with_one_line_and_write_nothing(
        capsys: pytest.CaptureFixture[str], db: str, args: list[str], says: str) -> None:
    code, out, err = run(capsys, "schedule", "create", "s", "--workflow", "tick", *args,
                         "--db", db, "--flows", FLOWS)
    assert code == 2 and says in err and err.count("\n") == 1 and out == ""
    assert not Path(db).exists()  # refused before the database was made


def test_duplicates_unknown_ids_and_bad_ranges_exit_2(
        capsys: pytest.CaptureFixture[str], db: str) -> None:
    assert run(capsys, "schedule", "create", "s", "--workflow", "tick", "--every", "1m",
               "--db", db, "--flows", FLOWS)[0] == 0
    code, _, err = run(capsys, "schedule", "create", "s", "--workflow", "tick", "--every",
                       "5m", "--db", db, "--flows", FLOWS)
    assert code == 2 and "schedule s exists" in err
    code, _, err = run(capsys, "schedule", "create", "u", "--workflow", "nope", "--every",
                       "5m", "--db", db, "--flows", FLOWS)
    assert code == 2 and "unknown workflow 'nope'" in err
    for action in (["describe", "zz"], ["pause", "zz"], ["unpause", "zz"], ["trigger", "zz"],
                   ["delete", "zz"]):
        code, _, err = run(capsys, "schedule", *action, "--db", db)
        assert code == 2 and "no schedule 'zz'" in err and err.count("\n") == 1
    code, _, err = run(capsys, "schedule", "backfill", "s", "--start", "yesterday", "--end",
                       "2026-11-04T00:00:00Z", "--db", db)
    assert code == 2 and "--start 'yesterday'" in err
    code, out, _ = run(capsys, "schedule", "describe", "s", "--json", "--db", db)
    assert json.loads(out)["spec"] == {"every": "1m"}  # the duplicate changed nothing
    assert json.loads(out)["counts"]["fired"] == 0


def test_read_actions_on_a_missing_database_say_so(capsys: pytest.CaptureFixture[str],
                                                   db: str) -> None:
    code, _, err = run(capsys, "schedule", "list", "--db", db)
    assert code == 2 and "no database at" in err and not Path(db).exists()


def test_bad_input_json_exits_2_before_a_database_is_made(
        capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, _, err = run(capsys, "schedule", "create", "s", "--workflow", "tick", "--every",
                       "1m", "--input", "[1,", "--db", db, "--flows", FLOWS)
    assert code == 2 and "--input" in err and err.count("\n") == 1
    assert not Path(db).exists()
