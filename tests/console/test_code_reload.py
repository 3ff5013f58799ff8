"""Item 21: a refused reload stays visible until resolved, and "Replay check" answers for
the file on disk (naming it and its version), not for the code still loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from onward import Engine
from onward.console.app import OnwardApp
from onward.console.screens.run_detail import RunDetailScreen
from onward.console.widgets.code_banner import CodeBanner

from .conftest import top, wait_for
from .test_run_detail import _open

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
FLOWS = Path(__file__).resolve().parents[1] / "flows"
V1, V2 = FLOWS / "v1" / "orders.py", FLOWS / "v2" / "orders.py"


def _banner(app: OnwardApp) -> CodeBanner:
    return app.screen.query_one(CodeBanner)


def _shown(app: OnwardApp) -> str:
    banner = _banner(app)
    return str(banner.render()) if banner.has_class("-shown") and banner.display else ""


def _notices_since(app: OnwardApp, start: int) -> list[str]:
    return [text for _, text in app.notices[start:]]


async def test_a_refused_reload_stays_on_screen_and_replay_checks_the_file_on_disk(
        make_engine: Any, workdir: Path) -> None:
    flows = workdir / "orders.py"
    flows.write_text(V1.read_text())
    engine: Engine = make_engine(flows=[str(flows)])
    loaded = engine.registry.flows[0].version
    engine.start("order", "o", id="o-1")
    app = OnwardApp(engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ready.is_set() and app.code_watcher is not None,
                       "the worker and the code watcher")
        await wait_for(pilot, lambda: "ActivityCompleted" in [
            e["type"] for e in engine.show("o-1")["history"]], "the charge to complete")
        assert _shown(app) == ""

        flows.write_text(V2.read_text())  # renames the activity o-1 already ran: breaks it
        await wait_for(pilot, lambda: "orders.py" in _shown(app), "the refusal banner")
        assert "kept the previous code" in _shown(app) and "o-1" in _shown(app)
        for key in ("2", "3", "1"):  # every screen shows it, long after the toast
            await pilot.press(key)
            await wait_for(pilot, lambda: "orders.py" in _shown(app), f"the banner on {key}")

        await _open(pilot, app, "o-1")
        start = len(app.notices)
        await pilot.press("v")
        verdict = await wait_for(pilot, lambda: next(
            (t for t in _notices_since(app, start) if "replay of o-1" in t), None),
            "the replay verdict")
        on_disk = engine.replay_on_disk("o-1")["code"]["on_disk"]
        assert on_disk != loaded
        assert "would break" in verdict and f"orders.py on disk (version {on_disk})" in \
            verdict and f"still runs version {loaded}" in verdict, verdict
        assert "orders.py" in _shown(app)  # on the detail screen too

        flows.write_text(V1.read_text())  # reverted: it loads, the banner goes
        await wait_for(pilot, lambda: _shown(app) == "", "the banner to go once resolved")
        start = len(app.notices)
        await pilot.press("v")
        verdict = await wait_for(pilot, lambda: next(
            (t for t in _notices_since(app, start) if "replay of o-1" in t), None),
            "the second verdict")
        assert verdict == f"replay of o-1 matches orders.py on disk (version {loaded})"
        assert isinstance(top(app), RunDetailScreen)


def test_replay_on_disk_names_a_file_that_no_longer_loads(make_engine: Any,
                                                          workdir: Path) -> None:
    flows = workdir / "orders.py"
    flows.write_text(V1.read_text())
    engine: Engine = make_engine(flows=[str(flows)])
    engine.start("order", "o", id="o-1")
    flows.write_text("def broken(:\n")
    report = engine.replay_on_disk("o-1")
    assert report["ok"] is False and "does not load" in report["error"]
    assert "SyntaxError" in report["error"]
    assert report["code"]["source"] == str(flows) and report["code"]["on_disk"] is None
