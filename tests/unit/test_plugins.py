"""Provider plugins: discovery, guarded loading, hot reload, and the sample providers."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from onward import activity, hookspecs
from onward.activity import ActivityInfo
from onward.errors import ApplicationError
from onward.hookspecs import hookimpl
from onward.providers import ProviderLogEntry, ProviderManager

REPO = Path(__file__).resolve().parents[2]
WAIT = 10.0  # bounded wait for background events


def provider_source(name: str, result: str = "'v1'", extra: str = "") -> str:
    """Source of a provider file offering one activity ``name`` returning ``result``."""
    return (
        "from onward import activity\n"
        "from onward.hookspecs import hookimpl\n\n"
        f"@activity.defn(name={name!r})\n"
        f"def act():\n    return {result}\n"
        f"{extra}\n"
        "@hookimpl\n"
        "def onward_activities():\n    return [act]\n"
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def manager(*dirs: Path, **kwargs: Any) -> ProviderManager:
    kwargs.setdefault("entry_points", False)
    mgr = ProviderManager(list(dirs), **kwargs)
    mgr.load()
    return mgr


def entries(mgr: ProviderManager, action: str) -> list[ProviderLogEntry]:
    return [e for e in mgr.log() if e.action == action]


def error_of(mgr: ProviderManager, name: str) -> str:
    (info,) = [p for p in mgr.providers() if p.name == name]
    assert info.error is not None, f"provider {name} has no error"
    return info.error


# --------------------------------------------------------------------- discovery


def test_discovers_every_provider_file_in_a_directory(tmp_path: Path) -> None:
    a = write(tmp_path / "alpha.py", provider_source("alpha.run"))
    write(tmp_path / "beta.py", provider_source("beta.run", "'b'"))
    write(tmp_path / "_helper.py", "raise RuntimeError('helpers are not providers')\n")
    mgr = manager(tmp_path)

    assert sorted(mgr.activities()) == ["alpha.run", "beta.run"]
    alpha = mgr.activities()["alpha.run"]
    assert alpha.fn() == "v1"
    assert (alpha.provider, alpha.provider_version) == ("alpha", content_hash(a))
    original = activity.definition_of(alpha.fn)
    assert original is not None and original.provider == ""  # the decorated fn is untouched
    (info,) = [p for p in mgr.providers() if p.name == "alpha"]
    assert (info.source, info.version, info.activities, info.error) == (
        str(a.resolve()), content_hash(a), ["alpha.run"], None)
    assert [e.provider for e in entries(mgr, "loaded")] == ["alpha", "beta"]
    assert not entries(mgr, "failed")


def test_declared_name_version_limits_and_workflows(tmp_path: Path) -> None:
    path = write(tmp_path / "svc.py", provider_source("svc.pay", extra=textwrap.dedent("""
        from onward import workflow

        @activity.defn(name="svc.slow", max_concurrent=2)
        def slow():
            return None

        @workflow.defn(name="svc.flow")
        async def flow():
            return 1

        @hookimpl
        def onward_workflows():
            return [flow]

        @hookimpl
        def onward_provider_info():
            return {"name": "payments", "version": "1.2",
                    "limits": {"svc.pay": {"max_concurrent": 3, "max_per_second": 5}}}
        """)).replace("return [act]", "return [act, slow]"))
    mgr = manager(tmp_path)

    version = f"1.2+{content_hash(path)}"
    (info,) = mgr.providers()
    assert (info.name, info.version, info.workflows) == ("payments", version, ["svc.flow"])
    assert mgr.activities()["svc.pay"].provider_version == version
    assert mgr.workflows()["svc.flow"].provider == "payments"
    assert mgr.limits() == {"svc.pay": (3, 5.0), "svc.slow": (2, None)}


def test_limits_for_an_activity_not_offered_fail_the_provider(tmp_path: Path) -> None:
    write(tmp_path / "svc.py", provider_source("svc.pay", extra=textwrap.dedent("""
        @hookimpl
        def onward_provider_info():
            return {"limits": {"svc.typo": {"max_concurrent": 1}}}
        """)))
    mgr = manager(tmp_path)
    assert "svc.typo" in error_of(mgr, "svc") and "does not offer" in error_of(mgr, "svc")
    assert mgr.activities() == {}


def test_register_plugin_in_process(tmp_path: Path) -> None:
    @activity.defn(name="inline.hello")
    def hello() -> str:
        return "hi"

    class Inline:
        @hookimpl
        def onward_activities(self) -> list[Any]:
            return [hello]

    mgr = manager(tmp_path)
    entry = mgr.register_plugin(Inline(), "inline")
    assert entry.action == "loaded"
    assert mgr.activities()["inline.hello"].provider == "inline"
    assert mgr.providers()[0].source == "in-process inline"


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real installed-looking distribution with an ``onward`` entry point."""
    site = tmp_path / "site"
    info = site / "fake_onward_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    write(info / "METADATA", "Metadata-Version: 2.1\nName: fake-onward-plugin\nVersion: 0.1\n")
    write(info / "entry_points.txt", "[onward]\nfake = fake_onward_plugin_mod\n")
    write(site / "fake_onward_plugin_mod.py", provider_source("fake.ep", "'from ep'"))
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("fake_onward_plugin_mod", None)


def test_entry_point_discovery(tmp_path: Path, fake_distribution: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    mgr = manager(empty, entry_points=True)

    definition = mgr.activities()["fake.ep"]
    assert definition.fn() == "from ep"
    (info,) = [p for p in mgr.providers() if p.name == "fake"]
    assert info.source == "entry point fake-onward-plugin:fake"
    assert info.version == f"0.1+{content_hash(fake_distribution / 'fake_onward_plugin_mod.py')}"
    assert "fake.ep" not in manager(empty, entry_points=False).activities()


# --------------------------------------------------------------------- guarded loading


def test_duplicate_activity_is_refused_naming_both_files(tmp_path: Path) -> None:
    first = write(tmp_path / "a_first.py", provider_source("dup.act", "'first'"))
    second = write(tmp_path / "b_second.py", provider_source("dup.act", "'second'"))
    mgr = manager(tmp_path)

    assert mgr.activities()["dup.act"].fn() == "first"
    error = error_of(mgr, "b_second")
    assert str(first.resolve()) in error and str(second.resolve()) in error
    assert "dup.act" in error


def test_syntax_error_is_reported_with_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.py", "x = 1\n\ndef broken(:\n    pass\n")
    write(tmp_path / "good.py", provider_source("good.act"))
    mgr = manager(tmp_path)

    assert f"{bad.resolve()}:3: SyntaxError" in error_of(mgr, "bad")
    assert mgr.activities()["good.act"].fn() == "v1"
    assert [e.provider for e in entries(mgr, "failed")] == ["bad"]


def test_exception_at_import_is_reported_at_the_plugin_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.py", textwrap.dedent("""\
        import json

        def setup():
            return json.loads("{not json")

        CONFIG = setup()
        """))
    write(tmp_path / "good.py", provider_source("good.act"))
    mgr = manager(tmp_path)

    error = error_of(mgr, "bad")
    assert f"{bad.resolve()}:4: JSONDecodeError" in error  # the last frame inside the plugin
    assert "good.act" in mgr.activities()


def test_exit_at_import_is_contained(tmp_path: Path) -> None:
    write(tmp_path / "quitter.py", "import sys\nsys.exit(3)\n")
    mgr = manager(tmp_path)
    assert "SystemExit" in error_of(mgr, "quitter")


def test_hanging_import_is_time_boxed(tmp_path: Path) -> None:
    write(tmp_path / "hang.py", "import time\ntime.sleep(5)\n")
    write(tmp_path / "good.py", provider_source("good.act"))
    mgr = manager(tmp_path, import_timeout=0.5)

    assert "import took longer than 0.5s" in error_of(mgr, "hang")
    assert "good.act" in mgr.activities()


@pytest.mark.parametrize(("body", "expected"), [
    ("@hookimpl\ndef onward_activities():\n    return act\n",
     "returned function; expected a list"),
    ("def plain():\n    pass\n@hookimpl\ndef onward_activities():\n    return [plain]\n",
     "is not an @activity.defn function"),
    ("from onward import workflow\n@workflow.defn\nasync def wf():\n    pass\n"
     "@hookimpl\ndef onward_activities():\n    return [wf]\n",
     "return it from onward_workflows()"),
    ("@hookimpl\ndef onward_activites():\n    return [act]\n", "unknown hook"),
    ("@hookimpl\ndef onward_activities(extra):\n    return [act]\n", "extra"),
    ("@hookimpl\ndef onward_activities():\n    raise KeyError('boom')\n", "KeyError"),
    ("@hookimpl\ndef onward_provider_info():\n    return ['name']\n", "expected a dict"),
    ("@hookimpl\ndef onward_activities():\n    return [act, act]\n", "offered twice"),
])
def test_invalid_registrations_fail_that_provider(tmp_path: Path, body: str,
                                                  expected: str) -> None:
    header = ("from onward import activity\nfrom engine.hookspecs import hookimpl\n"
              "@activity.defn(name='bad.act')\ndef act():\n    pass\n")
    write(tmp_path / "bad.py", header + body)
    write(tmp_path / "good.py", provider_source("good.act"))
    mgr = manager(tmp_path)

    assert expected in error_of(mgr, "bad")
    assert sorted(mgr.activities()) == ["good.act"]


def test_missing_directory_and_foreign_paths_are_reported(tmp_path: Path) -> None:
    mgr = manager(tmp_path / "nowhere")
    assert "does not exist" in entries(mgr, "failed")[0].message
    entry = mgr.reload_path(tmp_path / "elsewhere.py")
    assert entry.action == "failed" and "not a provider file" in entry.message


# --------------------------------------------------------------------- hot reload


def test_reload_swaps_in_the_new_version(tmp_path: Path) -> None:
    path = write(tmp_path / "svc.py", provider_source("svc.act", "'v1'"))
    mgr = manager(tmp_path)
    old = mgr.activities()["svc.act"]

    write(path, provider_source("svc.act", "'v2'"))
    entry = mgr.reload_path(path)

    new = mgr.activities()["svc.act"]
    assert (entry.action, entry.version) == ("reloaded", content_hash(path))
    assert new.provider_version == content_hash(path) != old.provider_version
    assert (new.fn(), old.fn()) == ("v2", "v1")  # a running attempt keeps its old function


def test_unchanged_file_is_not_reimported(tmp_path: Path) -> None:
    path = write(tmp_path / "svc.py", provider_source("svc.act"))
    mgr = manager(tmp_path)
    before = mgr.log()
    assert "unchanged" in mgr.reload_path(path).message
    assert mgr.log() == before


def test_broken_edit_keeps_the_old_version_serving(tmp_path: Path) -> None:
    path = write(tmp_path / "svc.py", provider_source("svc.act", "'v1'"))
    mgr = manager(tmp_path)
    good_version = content_hash(path)

    broken = provider_source("svc.act", "'v2' +")
    line = broken.splitlines().index("    return 'v2' +") + 1
    write(path, broken)
    entry = mgr.reload_path(path)
    assert entry.action == "failed" and "keeps serving" in entry.message
    assert mgr.activities()["svc.act"].fn() == "v1"
    (info,) = mgr.providers()
    assert info.version == good_version
    assert f"{path.resolve()}:{line}: SyntaxError" in (info.error or "")

    write(path, provider_source("svc.act", "'v3'"))
    assert mgr.reload_path(path).action == "reloaded"
    assert mgr.activities()["svc.act"].fn() == "v3"
    assert mgr.providers()[0].error is None


def test_reload_that_would_take_another_providers_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.py", provider_source("a.act"))
    b = write(tmp_path / "b.py", provider_source("b.act"))
    mgr = manager(tmp_path)
    write(b, provider_source("a.act", "'stolen'"))
    assert mgr.reload_path(b).action == "failed"
    assert mgr.activities()["a.act"].fn() == "v1" and "b.act" in mgr.activities()


def test_deleted_file_unregisters_its_provider(tmp_path: Path) -> None:
    path = write(tmp_path / "svc.py", provider_source("svc.act"))
    write(tmp_path / "other.py", provider_source("other.act"))
    mgr = manager(tmp_path)

    path.unlink()
    entry = mgr.reload_path(path)
    assert (entry.action, entry.provider) == ("removed", "svc")
    assert sorted(mgr.activities()) == ["other.act"]
    assert [p.name for p in mgr.providers()] == ["other"]

    (tmp_path / "other.py").unlink()
    mgr.load()  # a full rescan notices deletions too
    assert mgr.activities() == {} and entries(mgr, "removed")[-1].provider == "other"


def wait_for(mgr: ProviderManager, match: Callable[[ProviderLogEntry], bool]) -> threading.Event:
    seen = threading.Event()
    mgr.add_listener(lambda entry: seen.set() if match(entry) else None)
    return seen


def test_watcher_reloads_changed_and_new_files(tmp_path: Path) -> None:
    path = write(tmp_path / "svc.py", provider_source("svc.act", "'v1'"))
    mgr = manager(tmp_path)
    new_source = provider_source("svc.act", "'v2'")
    new_version = hashlib.sha256(new_source.encode()).hexdigest()[:10]
    reloaded = wait_for(mgr, lambda e: e.action == "reloaded" and e.version == new_version)
    added = wait_for(mgr, lambda e: e.action == "loaded" and e.provider == "extra")
    mgr.start_watching()
    try:
        write(path, new_source)
        assert reloaded.wait(WAIT), f"no reload within {WAIT}s; log: {mgr.log()}"
        assert mgr.activities()["svc.act"].fn() == "v2"
        write(tmp_path / "extra.py", provider_source("extra.act"))
        assert added.wait(WAIT), f"new file not loaded within {WAIT}s; log: {mgr.log()}"
    finally:
        mgr.stop_watching()


def test_two_managers_side_by_side_do_not_interfere(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    write(one / "svc.py", provider_source("svc.act", "'one'"))
    path_two = write(two / "svc.py", provider_source("svc.act", "'two'"))
    first, second = manager(one), manager(two)

    write(path_two, provider_source("svc.act", "'two again'"))
    second.reload_path(path_two)

    assert first.activities()["svc.act"].fn() == "one"
    assert second.activities()["svc.act"].fn() == "two again"
    prefixes = tuple(f"onward_provider_{id(m):x}_" for m in (first, second))
    assert not [m for m in sys.modules if m.startswith(prefixes)]  # nothing shared or left


# --------------------------------------------------------------------- observers and hooks


def test_event_observers_are_called_and_a_raising_one_is_contained(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    class Recorder:
        @hookimpl
        def onward_event(self, event: dict[str, Any]) -> None:
            seen.append(event)

    class Broken:
        @hookimpl
        def onward_event(self, event: dict[str, Any]) -> None:
            raise ValueError("observer bug")

    mgr = manager(tmp_path)
    mgr.register_plugin(Broken(), "broken")
    mgr.register_plugin(Recorder(), "recorder")
    event = {"run_id": "r1", "workflow_id": "w1", "workflow": "wf", "seq": 1,
             "type": "WorkflowStarted", "time": 0.0, "attrs": {}}
    mgr.notify_event(event)
    mgr.notify_event(event)

    assert seen == [event, event]
    failures = entries(mgr, "failed")
    assert len(failures) == 1 and "observer bug" in failures[0].message  # logged once


def test_a_raising_log_listener_is_contained(tmp_path: Path) -> None:
    mgr = ProviderManager([tmp_path], entry_points=False)
    got: list[str] = []

    def broken(entry: ProviderLogEntry) -> None:
        raise RuntimeError("listener bug")

    mgr.add_listener(broken)
    mgr.add_listener(lambda entry: got.append(entry.provider))
    write(tmp_path / "svc.py", provider_source("svc.act"))
    mgr.load()
    assert got == ["svc"]


# Every hook specification, and the test that exercises it.
HOOK_TESTS: dict[str, Callable[..., None]] = {
    "onward_activities": test_discovers_every_provider_file_in_a_directory,
    "onward_workflows": test_declared_name_version_limits_and_workflows,
    "onward_provider_info": test_declared_name_version_limits_and_workflows,
    "onward_event": test_event_observers_are_called_and_a_raising_one_is_contained,
}


def test_every_hook_is_documented_and_tested() -> None:
    specs = {name: fn for name, fn in vars(hookspecs).items()
             if callable(fn) and hasattr(fn, "onward_spec")}
    assert set(specs) == set(HOOK_TESTS)
    for name, fn in specs.items():
        doc = inspect.getdoc(fn) or ""
        assert len(doc) > 100 and "Called" in doc, f"{name} needs a docstring like pytest's"
        assert HOOK_TESTS[name].__module__ == __name__


# --------------------------------------------------------------------- sample providers


def load_sample(name: str) -> ModuleType:
    """Import ``plugins/<name>.py`` as a throwaway module (it is not a package)."""
    spec = importlib.util.spec_from_file_location(f"sample_{name}", REPO / "plugins" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def attempt(key: str, number: int = 1) -> Iterator[None]:
    """Run the body as if inside an activity attempt with idempotency ``key``."""
    activity.set_current(ActivityInfo(activity="test", attempt=number, workflow_id="wf",
                                      run_id="run", activity_id=1, idempotency_key=key))
    try:
        yield
    finally:
        activity.set_current(None)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ONWARD_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def test_sample_providers_load_cleanly(data: Path) -> None:
    mgr = manager(REPO / "plugins")
    assert [p.error for p in mgr.providers()] == [None] * len(mgr.providers())
    assert {"bank.deposit", "printer.print_check", "notify.send", "kitchen.bake"} <= set(
        mgr.activities())
    assert mgr.limits()["bank.deposit"] == (4, None)


def test_bank_pays_each_key_once(data: Path) -> None:
    bank = load_sample("bank")
    with attempt("k1"):
        first = bank.deposit("acct-1", 500)
    with attempt("k1", number=2):
        again = bank.deposit("acct-1", 500)
    with attempt("k2"):
        bank.deposit("acct-1", 250)
        assert bank.balance("acct-1") == 750

    assert again == first and first["cents"] == 500 and first["receipt"].startswith("rcpt-")
    assert (bank.paid_count("k1"), bank.call_count("k1")) == (1, 2)
    assert len(bank.ledger_rows()) == 2


def test_bank_pays_once_under_concurrent_attempts(data: Path) -> None:
    bank = load_sample("bank")
    receipts: list[str] = []

    def pay() -> None:
        with attempt("same-key"):
            receipts.append(bank.deposit("acct", 100)["receipt"])

    threads = [threading.Thread(target=pay) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert len(receipts) == 8 and len(set(receipts)) == 1
    assert bank.paid_count("same-key") == 1


def test_bank_refuses_a_different_payment_under_a_used_key(data: Path) -> None:
    bank = load_sample("bank")
    with attempt("k"):
        bank.deposit("acct", 100)
        with pytest.raises(ApplicationError) as err:
            bank.deposit("acct", 999)
    assert err.value.type == "IdempotencyConflict" and err.value.non_retryable


def test_bank_outage_is_retryable_and_closure_is_not(data: Path) -> None:
    bank = load_sample("bank")
    bank.set_outage(True)
    with attempt("k"), pytest.raises(ApplicationError) as outage:
        bank.deposit("acct", 100)
    assert (outage.value.type, outage.value.non_retryable) == ("BankOutage", False)
    assert bank.paid_count("k") == 0

    bank.set_outage(False)
    with attempt("k", number=2):
        bank.deposit("acct", 100)
    assert bank.paid_count("k") == 1

    (data / "bank.closed").touch()
    with attempt("k2"), pytest.raises(ApplicationError) as closed:
        bank.deposit("acct", 100)
    assert (closed.value.type, closed.value.non_retryable) == ("BankClosed", True)


def test_printer_prints_once_per_key_and_jams(data: Path) -> None:
    printer = load_sample("printer")
    with attempt("c1"):
        first = printer.print_check("Ada", 1234, "lunch\twith\nnewlines")
        assert printer.print_check("Ada", 1234, "lunch") == first
    assert first == {"check_no": 1, "payee": "Ada", "cents": 1234, "memo": "lunch with newlines"}

    printer.jam()
    with attempt("c2"), pytest.raises(ApplicationError) as jammed:
        printer.print_check("Bob", 1, "")
    assert (jammed.value.type, jammed.value.non_retryable) == ("PrinterJammed", True)
    assert printer.status() == {"jammed": True, "printed": 1}

    printer.clear_jam()
    with attempt("c2"):
        assert printer.print_check("Bob", 1, "")["check_no"] == 2
    assert [c["key"] for c in printer.checks()] == ["c1", "c2"]


def test_notify_sends_once_per_key(data: Path) -> None:
    notify = load_sample("notify")
    with attempt("m1"):
        sent = notify.send("ada@example.com", "Hi", "Hello")
        assert notify.send("ada@example.com", "Hi", "Hello") == sent
    with attempt("m2"):
        away = notify.out_of_office("manager", "claim-42")
    assert "claim-42" in away["subject"] and away["to"] == "manager"
    assert [m["key"] for m in notify.outbox()] == ["m1", "m2"]


def test_kitchen_bakes_once_per_key_and_refunds(data: Path) -> None:
    kitchen = load_sample("kitchen")
    with attempt("charge-1"):
        charged = kitchen.charge("order-1", 1800)
        assert kitchen.charge("order-1", 1800) == charged
    for number in (1, 2, 3):  # retries and recoveries of one bake attempt
        with attempt("bake-1", number):
            kitchen.bake("order-1", "margherita")
    assert kitchen.pizzas_baked("order-1") == 1
    with attempt("bake-2"):
        kitchen.bake("order-1", "funghi")
    assert kitchen.pizzas_baked("order-1") == 2
    assert kitchen.net_charged("order-1") == 1800

    (data / "kitchen.out_of_dough").touch()
    with attempt("bake-3"), pytest.raises(ApplicationError) as dough:
        kitchen.bake("order-1", "diavola")
    assert (dough.value.type, dough.value.non_retryable) == ("OutOfDough", True)
    for _ in range(2):
        with attempt("refund-1"):
            kitchen.refund("order-1", 1800)
    assert kitchen.net_charged("order-1") == 0

    (data / "kitchen.no_driver").touch()
    with attempt("deliver-1"), pytest.raises(ApplicationError) as driver:
        kitchen.deliver("order-1", "1 Main St")
    assert driver.value.non_retryable is False
    (data / "kitchen.no_driver").unlink()
    with attempt("deliver-1", 2):
        kitchen.deliver("order-1", "1 Main St")
    assert len(kitchen.deliveries()) == 1
