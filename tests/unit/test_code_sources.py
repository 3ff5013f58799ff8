"""Which code an engine runs: exactly what the operator named, each name from one source.

Issue 14 item 10: the demo's providers and sample flows load only for ``console --demo``;
two sources offering one activity or workflow name is a load error naming both (also when a
live reload would introduce it). Item 16: a flows module registers the workflows and
activities it imports from the user's other modules (``activities.py`` + ``workflows.py``),
as a file, a package folder or a dotted module, and editing the sibling reloads it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onward import Engine
from onward.cli import _open, build_parser, main
from onward.errors import BadInput
from onward.reload import reload_flows_file, reload_flows_files, watch_code
from tests.helpers import WorkerProcess, cli, env_for

_unique = itertools.count()

USERS_APP = '''
from pathlib import Path

from onward import activity, workflow


@activity.defn(name="bank.deposit")
def deposit(account: str, cents: int) -> str:
    with open(Path(__file__).with_name("my-ledger.txt"), "a") as ledger:
        ledger.write(f"{account} {cents}\\n")
    return f"my bank took {cents} for {account}"


@workflow.defn(name="pay")
async def pay(account: str, cents: int) -> str:
    return await workflow.execute_activity("bank.deposit", account, cents)
'''

ACTIVITIES = '''
from pathlib import Path

from onward import activity


@activity.defn(name="shop.pack")
def pack(item: str) -> str:
    with open(Path(__file__).with_name("packed.txt"), "a") as out:
        out.write(item + "\\n")
    return "packed " + item
'''

WORKFLOWS = '''
from onward import workflow

{import_line}


@workflow.defn(name="{workflow}")
async def ship(item: str) -> str:
    return await workflow.execute_activity(pack, item)
'''


def _definitions(name: str, activity: str, workflow: str) -> str:
    """An activity and a workflow, named ``activity``/``workflow`` or after ``name``."""
    return f'''
@activity.defn(name={activity or name + ".act"!r})
def act() -> str:
    return {name!r}

@workflow.defn(name={workflow or name + ".flow"!r})
async def flow() -> str:
    return {name!r}
'''


def provider(name: str, *, activity: str = "", workflow: str = "") -> str:
    """Source of a provider file offering ``activity`` and/or ``workflow``."""
    return ("from onward import activity, hookimpl, workflow\n"
            + _definitions(name, activity, workflow) + '''
@hookimpl
def onward_activities():
    return [act]

@hookimpl
def onward_workflows():
    return [flow]
''')


def flows_file(name: str, *, activity: str = "", workflow: str = "") -> str:
    """Source of a flows module defining ``activity`` and ``workflow``."""
    return "from onward import activity, workflow\n" + _definitions(name, activity, workflow)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def user_env() -> dict[str, str]:
    """A worker's environment with no provider data folder chosen for it."""
    env = env_for()
    env.pop("ONWARD_DATA", None)
    env.pop("ONWARD_FLOWS", None)
    return env


@pytest.fixture
def user_worker() -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``onward worker --db onward.db ARGS`` from the user's own folder (``cwd``),
    registered; each is stopped (SIGTERM) after the test."""
    started: list[WorkerProcess] = []

    def start(cwd: Path, *args: str) -> WorkerProcess:
        worker = WorkerProcess("onward.db", cwd=cwd, env=user_env(), extra=list(args))
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


def run_to_result(cwd: Path, workflow: str, ident: str, payload: str) -> Any:
    started = cli("start", workflow, "--id", ident, "--input", payload, "--db", "onward.db",
                  cwd=cwd, env=user_env())
    assert started.returncode == 0, started.stderr
    done = cli("result", ident, "--wait", "30", "--db", "onward.db", cwd=cwd, env=user_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


# --------------------------------------------------------------------- item 10: no demo code


def test_worker_runs_the_users_own_deposit_not_the_demo_bank(
        tmp_path: Path, user_worker: Callable[..., WorkerProcess]) -> None:
    write(tmp_path / "app.py", USERS_APP)
    worker = user_worker(tmp_path, "--flows", "app.py", "--no-watch")
    assert "1 workflows, 1 activities" in worker.first_line, worker.first_line

    result = run_to_result(tmp_path, "pay", "p-1", '["acct-7", 500]')

    assert result == '"my bank took 500 for acct-7"'
    assert (tmp_path / "my-ledger.txt").read_text() == "acct-7 500\n"
    assert not (tmp_path / "onward-data").exists(), "the demo bank ran in the user's folder"


def test_worker_given_only_a_plugin_folder_registers_no_sample_workflows(
        tmp_path: Path, user_worker: Callable[..., WorkerProcess]) -> None:
    write(tmp_path / "providers" / "mine.py", provider("mine"))
    worker = user_worker(tmp_path, "--plugins", "providers", "--no-watch")
    assert "1 workflows, 1 activities" in worker.first_line, worker.first_line


def _registry_for(argv: list[str]) -> tuple[list[str], list[str]]:
    args: argparse.Namespace = build_parser().parse_args(argv)
    eng = _open(args)
    try:
        return eng.registry.workflow_names(), eng.registry.activity_names()
    finally:
        eng.close()


CODE_COMMANDS = [["worker"], ["start", "pay"], ["query", "x", "q"], ["replay"],
                 ["retry", "x"], ["reset", "x", "--event", "1"], ["console"],
                 ["console", "--no-worker"]]


@pytest.mark.parametrize("argv", CODE_COMMANDS, ids=" ".join)
def test_no_command_loads_demo_code_unless_it_is_console_demo(
        tmp_path: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONWARD_FLOWS", raising=False)
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "app.py", USERS_APP)
    Engine(tmp_path / "onward.db").close()  # the read-only commands need one
    db = ["--db", str(tmp_path / "onward.db")]

    assert _registry_for([*argv, *db]) == ([], [])
    workflows, activities = _registry_for([*argv, *db, "--flows", "app.py"])
    assert (workflows, activities) == (["pay"], ["bank.deposit"])
    monkeypatch.setenv("ONWARD_FLOWS", "app.py")  # the documented default for --flows
    assert _registry_for([*argv, *db]) == (["pay"], ["bank.deposit"])


def test_console_demo_loads_the_demo_providers_and_sample_flows(tmp_path: Path) -> None:
    workflows, activities = _registry_for(["console", "--demo", "--db",
                                           str(tmp_path / "onward.db")])
    assert {"pizza_order", "reimbursement", "greet"} <= set(workflows)
    assert {"bank.deposit", "kitchen.bake", "printer.print_check"} <= set(activities)


# --------------------------------------------------------------------- item 10: one source each


def _sources(kind: str, tmp_path: Path, clash: str) -> dict[str, Any]:
    """Engine keyword arguments for two sources of ``kind`` offering the name ``clash``."""
    a, b = tmp_path / "a", tmp_path / "b"
    offer = {"activity": "bank.deposit"} if clash == "activity" else {"workflow": "pay"}
    if kind == "two plugin files":
        write(a / "first.py", provider("first", **offer))
        write(a / "second.py", provider("second", **offer))
        return {"plugins": [a], "named": [a / "first.py", a / "second.py"]}
    if kind == "two plugin folders":
        write(a / "first.py", provider("first", **offer))
        write(b / "second.py", provider("second", **offer))
        return {"plugins": [a, b], "named": [a / "first.py", b / "second.py"]}
    if kind == "plugin and flows":
        write(a / "first.py", provider("first", **offer))
        flows = write(b / "app.py", flows_file("app", **offer))
        return {"plugins": [a], "flows": [str(flows)], "named": [a / "first.py", flows]}
    if kind == "two flows modules":
        one = write(a / "one.py", flows_file("one", **offer))
        two = write(b / "two.py", flows_file("two", **offer))
        return {"flows": [str(one), str(two)], "named": [one, two]}
    assert kind == "two files in one flows folder"
    one = write(a / "one.py", flows_file("one", **offer))
    two = write(a / "two.py", flows_file("two", **offer))
    return {"flows": [str(a)], "named": [one, two]}


SOURCE_PAIRS = ["two plugin files", "two plugin folders", "plugin and flows",
                "two flows modules", "two files in one flows folder"]


@pytest.mark.parametrize("clash", ["activity", "workflow"])
@pytest.mark.parametrize("kind", SOURCE_PAIRS)
def test_a_name_offered_by_two_sources_refuses_to_start_naming_both(
        tmp_path: Path, kind: str, clash: str) -> None:
    kwargs = _sources(kind, tmp_path, clash)
    named = kwargs.pop("named")
    name = "bank.deposit" if clash == "activity" else "pay"
    with pytest.raises(BadInput) as caught:
        Engine(tmp_path / "onward.db", **kwargs).close()
    message = str(caught.value)
    assert "\n" not in message and repr(name) in message
    for path in named:
        assert str(path.resolve()) in message or str(path) in message, message
    assert not (tmp_path / "onward.db").exists()


@pytest.mark.parametrize("kind", SOURCE_PAIRS)
def test_cli_refuses_a_name_offered_twice_in_one_line_with_exit_2(
        tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    kwargs = _sources(kind, tmp_path, "workflow")
    named = kwargs.pop("named")
    argv = ["start", "pay", "--db", str(tmp_path / "onward.db")]
    argv += [x for f in kwargs.get("flows", []) for x in ("--flows", str(f))]
    argv += [x for p in kwargs.get("plugins", []) for x in ("--plugins", str(p))]

    for command in ("start", "worker"):
        argv[:2] = [command, "pay"] if command == "start" else [command, "--no-watch"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and all(p.name in err for p in named), err
        assert not (tmp_path / "onward.db").exists()


@pytest.mark.parametrize("file_kind", ["plugin", "flows"])
def test_an_entry_point_and_a_file_offering_one_name_refuse_to_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_kind: str) -> None:
    site = tmp_path / "site"
    info = site / "fake_onward_dup-0.1.dist-info"
    write(info / "METADATA", "Metadata-Version: 2.1\nName: fake-onward-dup\nVersion: 0.1\n")
    write(info / "entry_points.txt", "[onward]\ndup = fake_onward_dup_mod\n")
    write(site / "fake_onward_dup_mod.py", provider("ep", activity="bank.deposit"))
    monkeypatch.syspath_prepend(str(site))
    try:
        if file_kind == "plugin":
            file = write(tmp_path / "plugins" / "mine.py",
                         provider("mine", activity="bank.deposit"))
            code: dict[str, Any] = {"plugins": [file.parent]}
        else:
            file = write(tmp_path / "app.py", flows_file("app", activity="bank.deposit"))
            code = {"flows": [str(file)]}
        with pytest.raises(BadInput) as caught:
            Engine(tmp_path / "onward.db", entry_points=True, **code).close()
        message = str(caught.value)
        assert "entry point fake-onward-dup:dup" in message and str(file) in message
        assert "'bank.deposit'" in message
    finally:
        sys.modules.pop("fake_onward_dup_mod", None)


def _offering(label: str, names: list[str], kind: str) -> str:
    """A provider or flows file whose activities ``names`` each return ``label``."""
    lines = ["from onward import activity, hookimpl"]
    for index, name in enumerate(names):
        lines += [f"@activity.defn(name={name!r})", f"def act{index}():",
                  f"    return {label!r}"]
    if kind == "plugin":
        lines += ["@hookimpl", "def onward_activities():",
                  f"    return [{', '.join(f'act{i}' for i in range(len(names)))}]"]
    return "\n".join(lines) + "\n"


SOURCE = st.tuples(st.sampled_from(["plugin", "flows"]),
                   st.lists(st.sampled_from(["x.a", "x.b", "x.c", "x.d"]), unique=True,
                            max_size=3))


@settings(max_examples=30, deadline=None, database=None)
@given(sources=st.lists(SOURCE, min_size=1, max_size=4))
def test_an_engine_starts_exactly_when_every_name_has_one_source(
        sources: list[tuple[str, list[str]]]) -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        files: list[Path] = []
        for index, (kind, names) in enumerate(sources):
            folder = root / ("plugins" if kind == "plugin" else "flows")
            files.append(write(folder / f"src{index}.py",
                               _offering(f"src{index}", names, kind)))
        flows = [str(f) for f, (kind, _) in zip(files, sources, strict=True) if kind == "flows"]
        plugins = [root / "plugins"] if (root / "plugins").exists() else []
        owners: dict[str, list[Path]] = {}
        for file, (_, names) in zip(files, sources, strict=True):
            for name in names:
                owners.setdefault(name, []).append(file)
        twice = {name for name, where in owners.items() if len(where) > 1}
        try:
            eng = Engine(root / "onward.db", flows=flows, plugins=plugins)
        except BadInput as err:
            message = str(err)
            assert twice, f"refused without a name offered twice: {message}"
            assert "\n" not in message
            name = next(n for n in twice if repr(n) in message)
            assert sum(str(f) in message for f in owners[name]) == 2, message
            return
        try:
            assert not twice, f"{sorted(twice)} offered twice, yet the engine started"
            assert eng.registry.activity_names() == sorted(owners)
            for name, (file,) in owners.items():
                assert eng.registry.activity(name).fn() == file.stem  # type: ignore[union-attr]
        finally:
            eng.close()


def test_reloads_that_would_offer_another_sources_name_are_refused_and_reported(
        tmp_path: Path) -> None:
    plugin = write(tmp_path / "plugins" / "mine.py", provider("mine"))
    app = write(tmp_path / "flows" / "app.py", flows_file("app"))
    other = write(tmp_path / "flows2" / "other.py", flows_file("other"))
    eng = Engine(tmp_path / "onward.db", flows=[str(app), str(other)],
                 plugins=[plugin.parent])
    try:
        assert eng.registry.providers is not None
        # a provider edit offering the flows module's activity: refused, old one serves
        write(plugin, provider("mine", activity="app.act"))
        entry = eng.registry.providers.reload_path(plugin)
        assert entry.action == "failed" and "'app.act'" in entry.message
        assert str(app) in entry.message and str(plugin) in entry.message
        assert eng.registry.activity("app.act").fn() == "app"  # type: ignore[union-attr]
        assert eng.registry.activity("mine.act").fn() == "mine"  # type: ignore[union-attr]
        # a flows edit offering a provider's workflow, or another flows module's: refused
        for taken, owner in (("mine.flow", plugin), ("other.flow", other)):
            write(app, flows_file("app", workflow=taken))
            ok, message = reload_flows_file(eng, str(app))
            assert not ok and f"'{taken}'" in message, message
            assert str(owner) in message and str(app) in message, message
            assert "app.flow" in eng.registry.workflow_names()
        # the same source re-offering its own names is no conflict
        write(app, flows_file("app").replace("return 'app'", "return 'app v2'"))
        ok, message = reload_flows_file(eng, str(app))
        assert ok, message
        assert eng.registry.activity("app.act").fn() == "app v2"  # type: ignore[union-attr]
        write(plugin, provider("mine").replace("return 'mine'", "return 'mine v2'"))
        assert eng.registry.providers.reload_path(plugin).action == "reloaded"
        assert eng.registry.activity("mine.act").fn() == "mine v2"  # type: ignore[union-attr]
    finally:
        eng.close()


# --------------------------------------------------------------------- item 16: sibling modules


def test_flows_file_registers_activities_imported_from_a_sibling_module(
        tmp_path: Path, user_worker: Callable[..., WorkerProcess]) -> None:
    app = tmp_path / "app"
    write(app / "activities.py", ACTIVITIES)
    write(app / "workflows.py", WORKFLOWS.format(import_line="from activities import pack",
                                                 workflow="ship"))
    worker = user_worker(tmp_path, "--flows", str(Path("app") / "workflows.py"), "--no-watch")
    assert "1 workflows, 1 activities" in worker.first_line, worker.first_line

    assert run_to_result(tmp_path, "ship", "s-1", '["teapot"]') == '"packed teapot"'
    assert (app / "packed.txt").read_text() == "teapot\n"


def _package(tmp_path: Path, style: str) -> tuple[str, Path, str]:
    """A package with activities.py and workflows.py; (--flows spec, folder, workflow)."""
    name = f"shop_{os.getpid()}_{next(_unique)}"
    folder = tmp_path / name
    write(folder / "__init__.py", "")
    write(folder / "activities.py", ACTIVITIES)
    line = {"relative": "from .activities import pack",
            "absolute": f"from {name}.activities import pack",
            "module": f"from {name} import activities\npack = 'shop.pack'"}[style]
    workflow = f"ship_{name}"
    write(folder / "workflows.py", WORKFLOWS.format(import_line=line, workflow=workflow))
    return name, folder, workflow


@pytest.mark.parametrize("form", ["package folder", "dotted module", "file in a package",
                                  "file in a package, absolute import",
                                  "dotted module, module import"])
def test_flows_in_a_package_register_activities_imported_from_a_sibling(
        tmp_path: Path, form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    style = form.split(", ")[1].split()[0] if ", " in form else "relative"
    name, folder, workflow = _package(tmp_path, style)
    if form == "package folder":
        spec = str(folder)
    elif form.startswith("dotted module"):
        monkeypatch.syspath_prepend(str(tmp_path))
        spec = f"{name}.workflows"
    else:
        spec = str(folder / "workflows.py")
    eng = Engine(tmp_path / "onward.db", flows=[spec])
    try:
        assert eng.registry.activity_names() == ["shop.pack"]
        with eng.worker():
            eng.start(workflow, "kettle", id="s")
            assert eng.handle("s").result(timeout=20) == "packed kettle"
        (done,) = [e for e in eng.show("s")["history"] if e["type"] == "ActivityCompleted"]
        assert done["attrs"]["provider"] == "activities"  # the module that defines it
    finally:
        eng.close()
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            sys.modules.pop(module)


def test_one_activity_seen_through_two_modules_is_one_definition(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    app = tmp_path / "app"
    activities = write(app / "activities.py", ACTIVITIES)
    workflows = write(app / "workflows.py", WORKFLOWS.format(
        import_line="from activities import pack", workflow="ship"))
    eng = Engine(tmp_path / "onward.db", flows=[str(workflows), str(activities)])
    try:
        assert eng.registry.activity_names() == ["shop.pack"]
        assert eng.registry.workflow_names() == ["ship"]
    finally:
        eng.close()
        sys.modules.pop("activities", None)


def test_editing_the_sibling_activities_module_reloads_the_flows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    app = tmp_path / "app"
    activities = write(app / "activities.py", ACTIVITIES)
    workflows = write(app / "workflows.py", WORKFLOWS.format(
        import_line="from activities import pack", workflow="ship"))
    eng = Engine(tmp_path / "onward.db", flows=[str(workflows)])
    swapped = threading.Event()
    messages: list[tuple[str, bool]] = []

    def notify(message: str, ok: bool) -> None:
        messages.append((message, ok))
        if ok:
            swapped.set()

    try:
        with eng.worker() as worker:
            watcher = watch_code(eng, worker, notify)
            try:
                eng.start("ship", "cup", id="before")
                assert eng.handle("before").result(timeout=20) == "packed cup"
                write(activities, ACTIVITIES.replace('"packed " + item',
                                                     '"packed (v2, with care) " + item'))
                assert swapped.wait(20), f"no reload reported: {messages}"
                eng.start("ship", "cup", id="after")
                assert eng.handle("after").result(timeout=20) == "packed (v2, with care) cup"
            finally:
                watcher.stop()
    finally:
        eng.close()
        sys.modules.pop("activities", None)


@pytest.mark.parametrize("form", ["package folder", "dotted module", "file in a package"])
def test_editing_a_packages_activities_module_reloads_its_flows(
        tmp_path: Path, form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on most machines: a .pyc
    name, folder, workflow = _package(tmp_path, "relative")
    spec = {"package folder": str(folder), "dotted module": f"{name}.workflows",
            "file in a package": str(folder / "workflows.py")}[form]
    if form == "dotted module":
        monkeypatch.syspath_prepend(str(tmp_path))
    eng = Engine(tmp_path / "onward.db", flows=[spec])
    try:
        with eng.worker():
            eng.start(workflow, "jug", id="before")
            assert eng.handle("before").result(timeout=20) == "packed jug"
            # same second, same size: only a fresh compile can tell the edit apart
            write(folder / "activities.py", ACTIVITIES.replace('"packed "', '"PACKED "'))
            ok, message = reload_flows_file(eng, str(folder / "activities.py"))
            assert ok, message
            eng.start(workflow, "jug", id="after")
            assert eng.handle("after").result(timeout=20) == "PACKED jug"
            # a broken sibling keeps the previous code serving
            write(folder / "activities.py", "def broken(:\n")
            ok, message = reload_flows_file(eng, str(folder / "activities.py"))
            assert not ok and "SyntaxError" in message, message
            eng.start(workflow, "jug", id="still")
            assert eng.handle("still").result(timeout=20) == "PACKED jug"
    finally:
        eng.close()
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            sys.modules.pop(module)


def test_moving_an_activity_between_two_flows_modules_reloads_them_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    name, folder, workflow = _package(tmp_path, "relative")
    local = ACTIVITIES.replace("from onward import activity", "from onward import activity, "
                               "workflow") + WORKFLOWS.format(import_line="", workflow=workflow)
    write(folder / "workflows.py", local.replace("from onward import workflow\n", ""))
    write(folder / "activities.py", "")
    eng = Engine(tmp_path / "onward.db", flows=[str(folder)])
    try:
        assert eng.registry.activity_names() == ["shop.pack"]
        # the activity moves to activities.py, which workflows.py now imports it from
        write(folder / "activities.py", ACTIVITIES.replace('"packed "', '"moved "'))
        write(folder / "workflows.py", WORKFLOWS.format(
            import_line="from .activities import pack", workflow=workflow))
        ok, message = reload_flows_files(eng, [str(folder / "activities.py"),
                                               str(folder / "workflows.py")])
        assert ok, message
        with eng.worker():
            eng.start(workflow, "pan", id="moved")
            assert eng.handle("moved").result(timeout=20) == "moved pan"
    finally:
        eng.close()
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            sys.modules.pop(module)
