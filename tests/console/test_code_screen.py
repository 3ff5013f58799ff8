"""The Code screen (key 3): flows files and providers with versions and paths; a refused
reload stays listed with its reason and the runs it would break until the file loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Static

from onward import Engine
from onward.console.app import OnwardApp
from onward.console.screens.providers import ProvidersScreen, ProvidersTable

from .conftest import top, wait_for

pytestmark = pytest.mark.anyio
FLOWS = Path(__file__).resolve().parents[1] / "flows"
V1, V2 = FLOWS / "v1" / "orders.py", FLOWS / "v2" / "orders.py"


def _detail_text(screen: ProvidersScreen) -> str:
    console = Console(width=200, color_system=None)
    with console.capture() as capture:
        console.print(screen.query_one("#provider-detail", Static).render())
    return capture.get()


def test_engine_flows_lists_the_loaded_file(make_engine: Any, workdir: Path) -> None:
    flows = workdir / "orders.py"
    flows.write_text(V1.read_text())
    engine: Engine = make_engine(flows=[str(flows)])
    [entry] = engine.flows()
    assert entry["source"] == str(flows) and entry["version"] == \
        engine.registry.flows[0].version
    assert "order" in entry["workflows"] and entry["activities"]


async def test_a_refused_reload_is_listed_with_its_reason(make_engine: Any,
                                                          workdir: Path) -> None:
    flows = workdir / "orders.py"
    flows.write_text(V1.read_text())
    engine: Engine = make_engine(flows=[str(flows)])
    loaded = engine.registry.flows[0].version
    engine.start("order", "o", id="o-1")
    app = OnwardApp(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready.is_set() and app.code_watcher is not None,
                       "the worker and the code watcher")
        await wait_for(pilot, lambda: "ActivityCompleted" in [
            e["type"] for e in engine.show("o-1")["history"]], "the charge to complete")
        await pilot.press("3")
        screen: ProvidersScreen = await wait_for(
            pilot, lambda: isinstance(app.screen, ProvidersScreen) and top(app).loads >= 1
            and app.screen, "the code screen")
        assert screen.flows[0]["version"] == loaded and not screen.flows[0]["drift"]
        assert "✓ serving" in str(screen.query_one(ProvidersTable).get_row_at(0)[2])

        flows.write_text(V2.read_text())  # breaks o-1: the reload is refused
        await wait_for(pilot, lambda: screen.flows and screen.flows[0]["drift"]
                       and str(flows) in app.refused_reloads, "the refusal listed")
        screen.query_one(ProvidersTable).move_cursor(row=0)
        await wait_for(pilot, lambda: "refused" in _detail_text(screen)
                       and "o-1" in _detail_text(screen),  # the run the new code would break
                       "the detail with the refusal's reason")
        text = _detail_text(screen)
        on_disk = screen.flows[0]["drift"]["on_disk"]
        assert f"on disk: {on_disk}, refused; loaded: {loaded}" in text
        assert "on disk" in str(screen.query_one(ProvidersTable).get_row_at(0)[2])

        flows.write_text(V1.read_text())  # reverted: it loads, the refusal goes
        await wait_for(pilot, lambda: screen.flows and not screen.flows[0]["drift"]
                       and not app.refused_reloads, "the refusal to clear")
