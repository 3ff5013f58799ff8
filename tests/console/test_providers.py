"""The providers screen, and the toast when a provider is hot-swapped or fails to load."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from onward.console.app import OnwardApp
from onward.console.screens.providers import ProvidersScreen
from onward.console.widgets.code_banner import CodeBanner

from .conftest import FLOWS, PROVIDERS, top, wait_for

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def test_hot_swap_and_broken_reload_are_announced(make_engine: Any, tmp_path: Path
                                                       ) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    provider = plugins / "greeter.py"
    shutil.copy(PROVIDERS / "greeter.py", provider)
    engine = make_engine(flows=[FLOWS], plugins=[plugins])
    app = OnwardApp(engine)  # worker on, so the code watcher runs
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.code_watcher is not None, "the code watcher")
        await pilot.press("3")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, ProvidersScreen)
                                and top(app).loads >= 1 and app.screen, "the providers")
        assert screen.providers[0]["version"].startswith("1.0+")

        provider.write_text(provider.read_text().replace('VERSION = "1.0"',
                                                         'VERSION = "2.0"'))
        await wait_for(pilot, lambda: any("greeter reloaded" in text
                                          for _, text in app.notices),
                       "a toast saying the provider was reloaded", within=15)
        await wait_for(pilot, lambda: screen.providers
                       and screen.providers[0]["version"].startswith("2.0+"),
                       "the providers screen to show version 2.0")

        provider.write_text("def broken(:\n")
        await wait_for(pilot, lambda: any(sev == "error" and "greeter" in text
                                          for sev, text in app.notices),
                       "an error toast for the broken provider", within=15)
        await wait_for(pilot, lambda: screen.query_one("#provider-log", DataTable).row_count
                       >= 3, "the log to list load, reload and failure")
        assert screen.providers[0]["version"].startswith("2.0+")  # the old one still serves
        banner = screen.query_one(CodeBanner)
        await wait_for(pilot, lambda: banner.has_class("-shown")
                       and "provider greeter" in str(banner.render()),
                       "the banner naming the provider whose reload failed")
        await pilot.press("1")  # another screen: still there
        await wait_for(pilot, lambda: "provider greeter" in str(
            app.screen.query_one(CodeBanner).render()), "the banner on the runs screen")
        provider.write_text(PROVIDERS.joinpath("greeter.py").read_text())  # fixed
        await wait_for(pilot, lambda: not app.screen.query_one(CodeBanner).has_class(
            "-shown"), "the banner to go once the provider loads again", within=15)
