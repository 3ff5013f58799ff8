"""Bad input, odd code and hostile files: a clear one-line error, no traceback, no change.

Property-based (hypothesis, kept small so the file runs in seconds) over every CLI command
(``onward.cli.main`` in-process) and the Engine API: malformed JSON, wrong types, payloads
over ``MAX_PAYLOAD_BYTES``, unknown names and ids. Then workflow and activity code that
raises awkward exceptions or returns values that are not JSON, provider plugins that raise,
hang or register nonsense at import, and the security properties (JSON only, private
database files, plugins only from the places the operator named).

The number of cases tried is printed at the end of the module.
"""

from __future__ import annotations

import ast
import collections
import json
import math
import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onward import BadInput, Engine
from onward.cli import main
from onward.payloads import MAX_PAYLOAD_BYTES
from tests.flows.soak import BAD_VALUE_KINDS
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
FLOWS = str(REPO / "tests" / "flows" / "soak.py")
CASES: collections.Counter[str] = collections.Counter()

FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def count_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    total = sum(CASES.values())
    detail = ", ".join(f"{k} {n}" for k, n in sorted(CASES.items()))
    line = f"abuse cases tried: {total} ({detail})"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("\n" + line)


# --------------------------------------------------------------------------- a small world


@dataclass
class World:
    """A database with a completed run, a run waiting for a signal and an open task."""

    db: Path
    task_id: str
    snapshot: Any
    known: frozenset[str]


def dump(db: Path) -> Any:
    """Every row of every table, the schema version and the file list: 'what changed'."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        data = {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}
        data["user_version"] = conn.execute("PRAGMA user_version").fetchall()
    finally:
        conn.close()
    data["files"] = sorted(p.name for p in db.parent.iterdir() if not p.name.startswith(
        db.name))
    return data


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    db = tmp_path_factory.mktemp("world") / "onward.db"
    eng = Engine(db, flows=[FLOWS])
    try:
        with eng.worker():
            assert eng.start("quick", 1, id="done").result(timeout=20) == 2
            eng.start("soak_signal", 1, id="waiting")
            eng.start("soak_task", 1, id="asking")
            task = wait_until(lambda: eng.tasks(), message="the review task")[0]
            wait_until(lambda: pending(eng) == 0, message="every workflow task done")
        known = frozenset(r["id"] for r in eng.list(all_runs=True)) | frozenset(
            r["run_id"] for r in eng.list(all_runs=True)) | {task["task_id"]}
    finally:
        eng.close()
    return World(db, task["task_id"], dump(db), known)


@pytest.fixture
def scratch(world: World, tmp_path: Path) -> World:
    """A private copy of the world, for tests whose bug would change it."""
    import shutil
    db = tmp_path / "onward.db"
    shutil.copy(world.db, db)
    return World(db, world.task_id, dump(db), world.known)


def pending(eng: Engine) -> int:
    with eng.store.read() as tx:
        return int(tx.scalar("SELECT count(*) FROM runs WHERE wf_pending = 1"))


def one_line(text: str) -> bool:
    """One line as a terminal shows it (other control characters do not break lines)."""
    body = text.strip("\n")
    return bool(body.strip()) and "\n" not in body and "\r" not in body


def refused(world: World, capsys: pytest.CaptureFixture[str], argv: list[str],
            *, code: int = 2, says: str = "") -> str:
    """Run ``onward ARGV --db WORLD``: exit ``code``, one line on stderr, nothing changed."""
    CASES["cli " + (argv[0] if argv else "-")] += 1
    got = main([*argv, "--db", str(world.db)])
    out, err = capsys.readouterr()
    shown = f"onward {' '.join(a[:40] for a in argv)[:200]}"
    assert got == code, f"{shown}: exit {got}, stderr {err[:300]!r}"
    assert one_line(err) and err.startswith("onward: "), f"{shown}: stderr {err[:500]!r}"
    assert "Traceback" not in out + err
    assert says.lower() in err.lower(), f"{shown}: {err!r} does not say {says!r}"
    assert dump(world.db) == world.snapshot, f"{shown} changed the database"
    return err


# --------------------------------------------------------------------------- malformed JSON


def _strict_json(text: str) -> bool:
    def no_constants(name: str) -> None:
        raise ValueError(name)
    try:
        json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError):
        return False
    return True


def _lenient_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


MALFORMED = st.one_of(
    st.sampled_from(["{", "[1,", "{'a': 1}", "tru", '"open', "01", "[1 2]", '{"a" 1}',
                     "NaN", "-Infinity", "[1e999]", "{}}", "", " ", "\x00", "None",
                     "[" * 50, '{"a": [1, {"b": }]}', "1" * 5000]),
    st.text(max_size=30).filter(lambda t: not _strict_json(t)),
)
JSON_OPTIONS: list[Callable[[World], list[str]]] = [
    lambda w: ["start", "quick", "--flows", FLOWS, "--input"],
    lambda w: ["start", "quick", "--input"],
    lambda w: ["signal", "waiting", "go", "--payload"],
    lambda w: ["task", "complete", w.task_id, "--result"],
    lambda w: ["query", "waiting", "anything", "--flows", FLOWS, "--args"],
]


@FAST
@given(text=MALFORMED, which=st.integers(0, len(JSON_OPTIONS) - 1))
def test_malformed_json_is_refused_and_changes_nothing(world: World, text: str, which: int,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    argv = JSON_OPTIONS[which](world)
    if argv[0] == "query" and _lenient_json(text):
        return  # NaN, Infinity: Python reads them; query arguments are never stored
    if text.startswith("-"):
        argv[-1] += "=" + text  # --input=-x, so argparse does not read it as an option
        refused(world, capsys, argv)
    else:
        refused(world, capsys, [*argv, text])


@pytest.mark.parametrize("which", range(len(JSON_OPTIONS)))
def test_deeply_nested_json_is_refused(scratch: World, which: int,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    refused(scratch, capsys, [*JSON_OPTIONS[which](scratch), "[" * 100_000])


# --------------------------------------------------------------------------- wrong types


def _parses(text: str, kind: type) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


TYPED_OPTIONS = [(["list", "--limit"], int), (["result", "waiting", "--wait"], float),
                 (["reset", "waiting", "--flows", FLOWS, "--event"], int),
                 (["worker", "--concurrency"], int), (["worker", "--lease-ttl"], float),
                 (["console", "--concurrency"], int)]


@FAST
@given(which=st.integers(0, len(TYPED_OPTIONS) - 1), value=st.text(min_size=1, max_size=12))
def test_wrong_types_for_numeric_options(world: World, which: int, value: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv, kind = TYPED_OPTIONS[which]
    if _parses(value, kind) or _parses(value, float):
        return  # a number: not bad input
    refused(world, capsys, [*argv[:-1], f"{argv[-1]}={value}"], says="invalid")


def test_not_a_number_wait_is_refused(scratch: World,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    import threading
    box: dict[str, int] = {}
    thread = threading.Thread(target=lambda: box.update(
        code=main(["result", "waiting", "--wait", "nan", "--db", str(scratch.db)])),
        daemon=True)
    thread.start()
    thread.join(1.5)
    capsys.readouterr()
    assert box.get("code") == 2, "still waiting after 1.5 s"


# --------------------------------------------------------------------------- unknown things

IDENTS = st.text(min_size=1, max_size=40).filter(lambda s: not s.startswith("-"))
BY_ID: list[tuple[Callable[[str], list[str]], str]] = [
    (lambda i: ["show", i], "no run"), (lambda i: ["result", i], "no run"),
    (lambda i: ["signal", i, "go"], "no run"), (lambda i: ["cancel", i], "no run"),
    (lambda i: ["terminate", i], "no run"), (lambda i: ["pause", i], "no run"),
    (lambda i: ["resume", i], "no run"), (lambda i: ["retry", i, "--flows", FLOWS], "no run"),
    (lambda i: ["reset", i, "--event", "1", "--flows", FLOWS], "no run"),
    (lambda i: ["query", i, "status", "--flows", FLOWS], "no run"),
    (lambda i: ["replay", i, "--flows", FLOWS], "no run"),
    (lambda i: ["task", "complete", i, "--result", "1"], "no manual task"),
    (lambda i: ["task", "fail", i], "no manual task"),
    (lambda i: ["start", i, "--flows", FLOWS], "unknown workflow"),
    (lambda i: ["start", i], "unknown workflow"),
]


@FAST
@given(ident=IDENTS, which=st.integers(0, len(BY_ID) - 1))
def test_unknown_ids_and_names_are_refused(world: World, ident: str, which: int,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    if ident in world.known:
        return
    build, says = BY_ID[which]
    refused(world, capsys, build(ident), says=says)


def test_unknown_query_name_is_bad_input(scratch: World,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    refused(scratch, capsys, ["query", "waiting", "no-such-query", "--flows", FLOWS])


def test_unknown_task_status_is_refused(scratch: World,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    refused(scratch, capsys, ["tasks", "--status", "bogus"])


def test_usage_errors_stay_on_one_line(scratch: World,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    refused(scratch, capsys, ["list", "first\nsecond"])


@pytest.mark.parametrize("argv", [["show", "run-\udcff"], ["signal", "waiting", "g\udcffo"],
                                  ["start", "quick", "--id", "\udcff", "--flows", FLOWS]])
def test_arguments_that_are_not_utf8_are_refused(scratch: World, argv: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    refused(scratch, capsys, argv)


@pytest.mark.parametrize("option", ["--flows", "--plugins"])
def test_bad_code_paths_create_no_database(tmp_path: Path, option: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fresh = tmp_path / "fresh.db"
    CASES["cli start"] += 1
    assert main(["start", "quick", option, str(tmp_path / "missing"), "--db", str(fresh)]) == 2
    assert "missing" in capsys.readouterr().err
    assert not fresh.exists()


# --------------------------------------------------------------------------- huge payloads

OVER = MAX_PAYLOAD_BYTES + 1
HUGE_JSON = {
    "string": json.dumps("x" * OVER),
    "list": json.dumps([1234567] * (OVER // 8 + 1)),
    "multibyte": json.dumps("é" * (OVER // 2 + 1), ensure_ascii=False),
}


@pytest.mark.parametrize("shape", ["string", "list"])
@pytest.mark.parametrize("which", [0, 2, 3])
def test_payloads_over_the_limit_are_refused(world: World, shape: str, which: int,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(world, capsys, [*JSON_OPTIONS[which](world), HUGE_JSON[shape]])
    assert str(MAX_PAYLOAD_BYTES) in err


@pytest.mark.parametrize("which", [0, 2, 3])
def test_multibyte_payloads_over_the_limit_are_refused(scratch: World, which: int,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    refused(scratch, capsys, [*JSON_OPTIONS[which](scratch), HUGE_JSON["multibyte"]])


@pytest.mark.parametrize("argv", [["terminate", "waiting", "--reason", "r" * OVER],
                                  ["task", "fail", "TASK", "--reason", "r" * OVER],
                                  ["signal", "waiting", "n" * OVER]])
def test_free_text_over_the_limit_is_refused(scratch: World, argv: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    refused(scratch, capsys, [scratch.task_id if a == "TASK" else a for a in argv])


# --------------------------------------------------------------------------- the Engine API


class Opaque:
    pass


def _circular() -> list[Any]:
    items: list[Any] = []
    items.append(items)
    return items


NOT_JSON = st.one_of(  # (a set has a JSON form: a list)
    st.binary(min_size=1, max_size=8), st.builds(lambda: {"deep": [{"er": Opaque()}]}),
    st.just("\ud800"),
    st.sampled_from([math.nan, math.inf, -math.inf]), st.builds(Opaque),
    st.builds(_circular), st.dictionaries(st.tuples(st.integers()), st.integers(),
                                          min_size=1, max_size=2),
    st.lists(st.sampled_from([math.nan, Opaque()]), min_size=1, max_size=3),
    st.just("x" * OVER).map(lambda s: [s]),
)


@pytest.fixture
def api(world: World) -> Iterator[Engine]:
    eng = Engine(world.db, flows=[FLOWS])
    yield eng
    eng.close()


def api_refused(world: World, action: Callable[[], Any], what: str) -> None:
    CASES["api " + what] += 1
    with pytest.raises(BadInput) as caught:
        action()
    assert one_line(str(caught.value)) and len(str(caught.value)) < 500
    assert dump(world.db) == world.snapshot, f"{what} changed the database"


@FAST
@given(value=NOT_JSON, which=st.sampled_from(["start", "signal", "task", "start-kw"]))
def test_api_refuses_values_that_are_not_json(world: World, api: Engine, value: Any,
                                              which: str) -> None:
    actions: dict[str, Callable[[], Any]] = {
        "start": lambda: api.start("quick", value, id="never"),
        "start-kw": lambda: api.start("soak_fan", 2, value),
        "signal": lambda: api.signal("waiting", "go", value),
        "task": lambda: api.complete_task(world.task_id, value),
    }
    api_refused(world, actions[which], which)


@FAST
@given(ident=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20),
                       st.just(""), st.just("x" * 201)))
def test_api_refuses_unknown_or_malformed_ids(world: World, api: Engine, ident: Any) -> None:
    if ident in world.known:
        return
    for name, action in [("show", lambda: api.show(ident)), ("cancel", lambda: api.cancel(ident)),
                         ("signal", lambda: api.signal(ident, "go", 1)),
                         ("complete_task", lambda: api.complete_task(ident, 1)),
                         ("handle", lambda: api.handle(ident))]:
        api_refused(world, action, name)
    if (ident is not None and not isinstance(ident, str)) or (
            isinstance(ident, str) and (not ident.strip() or len(ident) > 200)):
        api_refused(world, lambda: api.start("quick", 1, id=ident), "start id")


def test_api_refuses_unknown_workflows_and_bad_signal_names(world: World, api: Engine) -> None:
    for name in ("nope", "", "QUICK", "quick ", None, 42):
        api_refused(world, lambda n=name: api.start(n), "start name")
    for signal_name in ("", None, 0):
        api_refused(world, lambda s=signal_name: api.signal("waiting", s, 1), "signal name")
    api_refused(world, lambda: api.complete_task(world.task_id, "x" * OVER), "task result")


def test_huge_string_payloads_are_refused(scratch: World) -> None:
    eng = Engine(scratch.db, flows=[FLOWS])
    try:
        api_refused(scratch, lambda: eng.signal("waiting", "go", "x" * OVER), "signal")
    finally:
        eng.close()


# --------------------------------------------------------------------------- random command lines

TOKENS = st.sampled_from([
    "start", "list", "show", "result", "signal", "query", "cancel", "terminate", "tasks",
    "task", "complete", "fail", "retry", "pause", "resume", "reset", "replay", "done",
    "waiting", "asking", "quick", "soak_task", "--id", "--input", "--payload", "--result",
    "--reason", "--wait", "0", "0.01", "--json", "--all", "--status", "--limit", "1", "-1",
    "--event", "--flows", FLOWS, "--rerun", "--args", "[1]", "{", '"x"', "--no-signals",
    "--by", "stuck", "running",
])
SAFE_TEXT = st.text(max_size=8).filter(
    lambda t: not t.startswith("-") and not (_parses(t, float) and not math.isfinite(float(t)))
    and "\n" not in t and "\r" not in t)  # line breaks: test_usage_errors_stay_on_one_line


@FAST
@given(argv=st.lists(st.one_of(TOKENS, SAFE_TEXT), min_size=0, max_size=7))
def test_random_command_lines_never_show_a_traceback(tmp_path_factory: pytest.TempPathFactory,
                                                     world: World, argv: list[str],
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    db = tmp_path_factory.getbasetemp() / "fuzz.db"
    if not db.exists():
        import shutil
        shutil.copy(world.db, db)
    CASES["cli random argv"] += 1
    code = main([*argv, "--db", str(db)])
    out, err = capsys.readouterr()
    assert code in (0, 1, 2, 3), (argv, code)
    assert "Traceback" not in out + err, argv
    if code != 0:
        assert one_line(err) or (code in (1, 3) and out), (argv, err)


# --------------------------------------------------------------------------- odd code


@pytest.fixture
def running(db_path: Path) -> Iterator[Engine]:
    """An engine on a fresh database with a worker running the soak flows."""
    eng = Engine(db_path, flows=[FLOWS])
    with eng.worker(concurrency=8):
        yield eng
    eng.close()


def healthy(eng: Engine, tag: str) -> None:
    """The worker still serves other runs."""
    assert eng.start("quick", 41, id=f"healthy-{tag}").result(timeout=10) == 42


ACTIVITY_RAISES = {"base": "NotAnException", "system_exit": "SystemExit",
                   "keyboard": "KeyboardInterrupt", "generator_exit": "GeneratorExit",
                   "huge": "ValueError", "non_json_details": "ApplicationError",
                   "empty": "ValueError", "newlines": "ValueError"}


def test_activities_raising_odd_exceptions_fail_their_attempt_cleanly(running: Engine) -> None:
    handles = {k: running.start("odd_activity", k, id=f"act-{k}") for k in ACTIVITY_RAISES}
    for kind, handle in handles.items():
        CASES["activity raises"] += 1
        assert handle.result(timeout=15) == ACTIVITY_RAISES[kind], kind
        failed = [e for e in running.show(handle.id)["history"]
                  if e["type"] == "ActivityAttemptFailed"]
        assert len(failed) == 1 and failed[0]["attrs"]["error"]["message"]
    healthy(running, "activities")


def test_activity_exception_with_unprintable_message_fails_promptly(db_path: Path) -> None:
    from onward.worker import Worker
    CASES["activity raises"] += 1
    eng = Engine(db_path, flows=[FLOWS])
    worker = Worker(eng.runtime, concurrency=2).start()
    try:
        handle = eng.start("odd_activity", "unprintable", id="act-unprintable")
        assert handle.result(timeout=3) == "Unprintable"
    finally:
        worker.stop(grace=0.2)  # the lost attempt never leaves the executor
        eng.close()


def test_activity_results_that_are_not_json_fail_clearly(running: Engine) -> None:
    kinds = [k for k in BAD_VALUE_KINDS if k != "huge"]
    handles = {k: running.start("bad_activity_value", k, id=f"val-{k}") for k in kinds}
    for kind, handle in handles.items():
        CASES["activity returns"] += 1
        assert handle.result(timeout=15) == "PayloadError", kind
        failed = [e for e in running.show(handle.id)["history"]
                  if e["type"] == "ActivityAttemptFailed"]
        assert len(failed) == 1, f"{kind}: a result that is not JSON is not retried"
        assert "JSON" in failed[0]["attrs"]["error"]["message"]


def test_activity_result_over_the_limit_fails_clearly(running: Engine) -> None:
    CASES["activity returns"] += 1
    assert running.start("bad_activity_value", "huge", id="val-huge").result(
        timeout=15) == "PayloadError"


WORKFLOW_RAISES = ["base", "generator_exit", "huge", "empty", "newlines"]


def test_workflows_raising_odd_exceptions_are_held_with_a_reason(running: Engine) -> None:
    for kind in WORKFLOW_RAISES:
        CASES["workflow raises"] += 1
        running.start("odd_raise", kind, id=f"wf-{kind}")
    for kind in WORKFLOW_RAISES:
        shown = wait_until(lambda k=kind: (s := running.show(f"wf-{k}"))["stuck"] and s,
                           timeout=10, message=f"wf-{kind} held")
        assert shown["status"] == "running" and "workflow code raised" in shown["stuck_reason"]
    CASES["workflow raises"] += 1
    with pytest.raises(Exception, match="details are not JSON"):
        running.start("odd_raise", "non_json_details", id="wf-details").result(timeout=10)
    healthy(running, "workflows")


def test_workflow_results_that_are_not_json_hold_the_run(running: Engine) -> None:
    kinds = [k for k in BAD_VALUE_KINDS if k != "huge"]
    for kind in kinds:
        CASES["workflow returns"] += 1
        running.start("odd_result", kind, id=f"res-{kind}")
    for kind in kinds:
        shown = wait_until(lambda k=kind: (s := running.show(f"res-{k}"))["stuck"] and s,
                           timeout=10, message=f"res-{kind} held")
        assert "not JSON" in shown["stuck_reason"]
    healthy(running, "results")


@pytest.mark.parametrize("kind", ["system_exit"])  # KeyboardInterrupt too, but it would
# also reach pytest through threading.excepthook
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_workflow_raising_system_exit_does_not_stop_the_worker(running: Engine,
                                                               kind: str) -> None:
    CASES["workflow raises"] += 1
    running.start("odd_raise", kind, id=f"wf-{kind}")
    healthy(running, kind)
    assert running.show(f"wf-{kind}")["stuck"]


@pytest.mark.parametrize(("workflow", "kind"), [("odd_raise", "unprintable"),
                                                ("odd_result", "huge")])
def test_one_poisoned_run_does_not_stall_the_others(running: Engine, workflow: str,
                                                    kind: str) -> None:
    CASES["workflow raises"] += 1
    running.start(workflow, kind, id=f"poison-{kind}")
    healthy(running, f"poison-{kind}")


# --------------------------------------------------------------------------- broken providers

GOOD_PROVIDER = """
from onward import activity, hookimpl

@activity.defn(name="good.echo")
def echo(text):
    return f"echo {text}"

@hookimpl
def onward_activities():
    return [echo]
"""
BROKEN_PROVIDERS = {
    "raises": ("raise RuntimeError('the config server is down')\n",
               "RuntimeError: the config server is down"),
    "exits": ("import sys\nsys.exit('bye')\n", "SystemExit"),
    "hangs": ("import time\ntime.sleep(20)\n", "import took longer"),
    "syntax": ("def broken(:\n", "SyntaxError"),
    "not_a_list": ("from onward import hookimpl\n@hookimpl\ndef onward_activities():\n"
                   "    return 42\n", "expected a list"),
    "undecorated": ("from onward import hookimpl\ndef plain():\n    pass\n@hookimpl\n"
                    "def onward_activities():\n    return [plain]\n",
                    "not an @activity.defn function"),
    "hook_raises": ("from onward import hookimpl\n@hookimpl\ndef onward_activities():\n"
                    "    raise ValueError('no activities today')\n", "no activities today"),
    "misspelled": ("from onward import hookimpl\n@hookimpl\ndef onward_activitees():\n"
                   "    return []\n", "misspelled"),
}
STEALS_NAME = ("from onward import activity, hookimpl\n@activity.defn(name='good.echo')\n"
               "def echo(text):\n    return 'stolen'\n@hookimpl\n"
               "def onward_activities():\n    return [echo]\n")
"""A second source offering a name: not contained but refused (DESIGN, Plugins)."""
ECHO_FLOW = """
from onward import workflow

@workflow.defn(name="echo_flow")
async def echo_flow(text):
    return await workflow.execute_activity("good.echo", text)
"""


def test_broken_providers_are_contained_and_the_rest_are_served(
        tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onward.providers as plugins_module

    class QuickManager(plugins_module.ProviderManager):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["import_timeout"] = 0.5
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(plugins_module, "ProviderManager", QuickManager)
    folder = tmp_path / "providers"
    folder.mkdir()
    (folder / "a_good.py").write_text(GOOD_PROVIDER)
    for name, (body, _) in BROKEN_PROVIDERS.items():
        (folder / f"{name}.py").write_text(body)
    flows = tmp_path / "echo_flows.py"
    flows.write_text(ECHO_FLOW)
    eng = Engine(db_path, flows=[str(flows)], plugins=[folder])
    try:
        errors = {p["name"]: p["error"] for p in eng.providers()}
        assert errors["a_good"] is None
        for name, (_, says) in BROKEN_PROVIDERS.items():
            CASES["broken provider"] += 1
            assert errors[name] is not None and says in errors[name], (name, errors[name])
            assert one_line(errors[name]), errors[name]
        with eng.worker():
            assert eng.start("echo_flow", "hi").result(timeout=10) == "echo hi"
        completed = [e for e in eng.show(eng.list()[0]["id"])["history"]
                     if e["type"] == "ActivityCompleted"]
        assert completed[0]["attrs"]["provider"] == "a_good"
    finally:
        eng.close()
    CASES["broken provider"] += 1
    (folder / "steals_name.py").write_text(STEALS_NAME)
    with pytest.raises(BadInput, match="'good.echo' is already provided by") as refused:
        Engine(db_path, flows=[str(flows)], plugins=[folder]).close()
    assert "steals_name.py" in str(refused.value) and "a_good.py" in str(refused.value)


def test_a_provider_raising_keyboard_interrupt_at_import_is_contained(tmp_path: Path) -> None:
    from onward.providers import ProviderManager
    (tmp_path / "a_good.py").write_text(GOOD_PROVIDER)
    (tmp_path / "interrupts.py").write_text("raise KeyboardInterrupt\n")
    CASES["broken provider"] += 1
    manager = ProviderManager([tmp_path], entry_points=False, import_timeout=2)
    try:
        manager.load()
    except KeyboardInterrupt:
        pytest.fail("the provider's KeyboardInterrupt escaped ProviderManager.load")
    assert "good.echo" in manager.activities()


# --------------------------------------------------------------------------- security

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill",
                     "cloudpickle", "jsonpickle"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
# Reviewed exceptions: (file, call, why).
ALLOWED = {
    ("engine/importer.py", "compile"): "compiles a flows or provider file the operator named, "
    "from the exact bytes it hashed for the version",
    ("engine/importer.py", "exec"): "runs that compiled module (what importlib's "
    "exec_module does); it never sees a payload",
}


def _code_uses(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name.split(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Call):  # the builtins, bare or as builtins.X
            func = node.func
            if isinstance(func, ast.Name):
                name = func.id
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                    func.value.id == "builtins":
                name = func.attr
            else:
                continue  # re.compile(...), obj.exec(...): not the builtins
            if name in FORBIDDEN_CALLS:
                found.append((name, node.lineno))
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_MODULES:
            found.append((node.id, node.lineno))
    return [(name, line) for name, line in found
            if name in FORBIDDEN_MODULES or name in FORBIDDEN_CALLS]


def test_engine_and_console_hold_no_pickle_marshal_eval_or_exec() -> None:
    files = sorted(p for folder in ("engine", "console") for p in (REPO / folder).rglob("*.py"))
    assert len(files) > 10
    offences, allowed_seen = [], set()
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        for name, line in _code_uses(path):
            CASES["security scan"] += 1
            if (rel, name) in ALLOWED:
                allowed_seen.add((rel, name))
            else:
                offences.append(f"{rel}:{line}: {name}")
    assert offences == [], "payloads must stay JSON: " + ", ".join(offences)
    text = (REPO / "engine" / "payloads.py").read_text()
    assert "json.dumps" in text and "json.loads" in text


def test_the_scan_catches_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent("""
        import pickle, json
        from marshal import loads
        x = eval("1")
        exec("y = 2")
        z = __import__("shelve")
        pickle.loads(b"")
        # pickle in a comment is fine
        s = "eval(and exec( in a string are fine)"
    """))
    names = sorted({name for name, _ in _code_uses(sample)})
    assert names == ["__import__", "eval", "exec", "marshal", "pickle"]


def test_database_files_are_private_whatever_the_umask(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    old = os.umask(0)
    try:
        via_api = tmp_path / "api.db"
        eng = Engine(via_api, flows=[FLOWS])
        eng.start("quick", 1, id="x")
        for path in (via_api, Path(f"{via_api}-wal"), Path(f"{via_api}-shm")):
            if path.exists():
                CASES["security file mode"] += 1
                assert path.stat().st_mode & 0o777 == 0o600, path
        eng.close()
        via_cli = tmp_path / "cli.db"
        assert main(["start", "quick", "--flows", FLOWS, "--db", str(via_cli)]) == 0
        CASES["security file mode"] += 1
        assert via_cli.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    capsys.readouterr()


PLANTED = """
from pathlib import Path
from onward import activity, hookimpl
Path({marker!r}).write_text("imported")

@activity.defn(name="planted.steal")
def steal():
    return "secrets"

@hookimpl
def onward_activities():
    return [steal]
"""


def test_plugins_load_only_from_the_places_the_operator_named(
        tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    named = tmp_path / "named"
    named.mkdir()
    (named / "good.py").write_text(GOOD_PROVIDER)
    marker = tmp_path / "planted-was-imported"
    unnamed = tmp_path / "unnamed"
    unnamed.mkdir()
    (unnamed / "planted.py").write_text(PLANTED.format(marker=str(marker)))
    cwd = tmp_path / "cwd"
    (cwd / "plugins").mkdir(parents=True)
    (cwd / "plugins" / "planted.py").write_text(PLANTED.format(marker=str(marker)))
    (named / "subdir").mkdir()
    (named / "subdir" / "planted.py").write_text(PLANTED.format(marker=str(marker)))
    monkeypatch.chdir(cwd)

    eng = Engine(db_path, flows=[FLOWS], plugins=[named])
    try:
        CASES["security plugin places"] += 1
        assert "good.echo" in eng.registry.activity_names()
        assert "planted.steal" not in eng.registry.activity_names()
        entry = eng.registry.providers.reload_path(unnamed / "planted.py")
        assert entry.action == "failed" and "not a provider file in a plugin directory" in \
            entry.message
    finally:
        eng.close()
    CASES["security plugin places"] += 1
    bare = Engine(tmp_path / "bare.db", flows=[FLOWS])
    try:
        assert bare.registry.providers is None and "planted.steal" not in \
            bare.registry.activity_names()
    finally:
        bare.close()
    CASES["security plugin places"] += 1
    assert main(["start", "quick", "--db", str(tmp_path / "c.db"), "--input", "[1]",
                 "--flows", FLOWS]) == 0
    capsys.readouterr()
    assert not marker.exists(), "a provider outside the named places was imported"
