"""The declared contract between workflow code and the running instance (issue 15, item 4):
workflow calls reach the instance only through the ``WorkflowRuntime`` protocol, and every
event workflow code receives is applied by one ``_apply_<EventType>`` method."""

from __future__ import annotations

import ast
import asyncio
import random
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import workflow
from engine.events import COMMAND_TYPES, INBOUND_TYPES
from engine.instance import WorkflowInstance
from engine.loop import DeterministicLoop
from engine.workflow_runtime import WorkflowInfo, WorkflowRuntime

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (relative imports as ``.name``), at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_authoring_api_does_not_import_the_instance() -> None:
    """workflow.py knows the runtime by its protocol, not by WorkflowInstance."""
    imported = _imported_modules(ENGINE / "workflow.py")
    assert ".instance" not in imported and "engine.instance" not in imported


def test_the_loop_owner_is_typed_as_the_runtime() -> None:
    hints = typing.get_type_hints(DeterministicLoop)
    assert hints["owner"] == WorkflowRuntime | None


def test_the_instance_implements_the_runtime() -> None:
    async def code() -> None:
        return None

    instance = WorkflowInstance(code, WorkflowInfo("w", "r", "code", 0.0))
    assert isinstance(instance, WorkflowRuntime)
    assert instance.loop.owner is instance


class RecordingRuntime:
    """Another implementation of the protocol: records what workflow code asks for."""

    def __init__(self) -> None:
        self.info = WorkflowInfo("w", "r", "t", 100.0)
        self.now = 100.0
        self.random = random.Random(1)
        self.query_handlers: dict[str, Callable[..., Any]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.loop = DeterministicLoop(lambda: self.now)  # type: ignore[abstract]
        self.loop.owner = self

    def _future(self, call: str, arg: Any) -> asyncio.Future[Any]:
        self.calls.append((call, arg))
        future = self.loop.create_future()
        future.set_result(f"{call} done")
        return future

    def schedule_activity(self, name: str, args: list[Any], options: dict[str, Any]
                          ) -> asyncio.Future[Any]:
        return self._future("activity", (name, args))

    def start_timer(self, seconds: float, purpose: str = "sleep"
                    ) -> tuple[int, asyncio.Future[Any]]:
        return 1, self._future("timer", seconds)

    def create_manual_task(self, attrs: dict[str, Any]) -> asyncio.Future[Any]:
        return self._future("task", attrs["kind"])

    def start_child(self, workflow: str, args: list[Any], child_id: str | None
                    ) -> asyncio.Future[Any]:
        return self._future("child", workflow)

    def signal_future(self, name: str) -> asyncio.Future[Any]:
        return self._future("signal", name)

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        self.calls.append(("patched", patch_id))
        return True


def test_workflow_calls_drive_any_implementation_of_the_runtime() -> None:
    runtime = RecordingRuntime()
    assert isinstance(runtime, WorkflowRuntime)
    results: list[Any] = []

    async def code() -> None:
        results.append(await workflow.execute_activity("charge", 5))
        await workflow.sleep(30)
        results.append(await workflow.manual_task("approve"))
        results.append(await workflow.execute_child("child_flow"))
        results.append(await workflow.wait_signal("go"))
        results.append(workflow.patched("p1"))
        results.append(workflow.info().workflow_type)

    task = runtime.loop.create_task(code())
    runtime.loop.run_until_quiet()
    assert task.done() and task.exception() is None
    assert [c for c, _ in runtime.calls] == ["activity", "timer", "task", "child", "signal",
                                             "patched"]
    assert results == ["activity done", "task done", "child done", "signal done", True, "t"]


def test_every_event_the_code_receives_has_one_apply_method() -> None:
    """Inbound events are applied in one place: ``WorkflowInstance._apply_<EventType>``."""
    applied = {name.removeprefix("_apply_") for name in vars(WorkflowInstance)
               if name.startswith("_apply_")}
    assert applied == set(INBOUND_TYPES)
    assert not applied & COMMAND_TYPES
