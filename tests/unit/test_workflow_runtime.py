"""The declared contract between workflow code and the running instance (issue 15, item 4):
workflow calls reach the instance only through the ``WorkflowRuntime`` protocol, and every
event workflow code receives is applied by one ``_apply_<EventType>`` method."""

from __future__ import annotations

import ast
import asyncio
import random
import typing
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onward import ApplicationError, workflow
from onward.events import COMMAND_TYPES, INBOUND_TYPES, Event
from onward.handlers import Handlers
from onward.instance import WorkflowInstance
from onward.loop import DeterministicLoop
from onward.workflow_runtime import WorkflowInfo, WorkflowRuntime

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
        self.handlers = Handlers()
        self.history_length = 0
        self.is_replaying = False

    def _future(self, call: str, arg: Any) -> asyncio.Future[Any]:
        self.calls.append((call, arg))
        future = self.loop.create_future()
        future.set_result(f"{call} done")
        return future

    handlers = Handlers()
    history_length = 0
    is_replaying = False

    def schedule_activity(self, name: str, args: list[Any], options: dict[str, Any],
                          cancellation_type: str = "try_cancel"
                          ) -> tuple[int, asyncio.Future[Any]]:
        return 1, self._future("activity", (name, args))

    def cancel_activity(self, seq: int, reason: str = "") -> None:
        self.calls.append(("cancel", seq))

    def set_signal_handler(self, name: str, fn: Callable[..., Any]) -> None:
        self.calls.append(("signal handler", name))

    def condition_future(self, predicate: Callable[[], Any]) -> asyncio.Future[Any]:
        return self._future("condition", None)

    def start_timer(self, seconds: float, purpose: str = "sleep"
                    ) -> tuple[int, asyncio.Future[Any]]:
        return 1, self._future("timer", seconds)

    def create_manual_task(self, attrs: dict[str, Any]) -> asyncio.Future[Any]:
        return self._future("task", attrs["kind"])

    def start_child(self, workflow: str, args: list[Any], child_id: str | None,
                    options: dict[str, Any] | None = None) -> tuple[str, asyncio.Future[Any]]:
        return child_id or "w/1", self._future("child", workflow)

    def signal_external(self, workflow_id: str, name: str, payload: Any
                        ) -> asyncio.Future[Any]:
        return self._future("external signal", (workflow_id, name))

    def cancel_external(self, workflow_id: str) -> asyncio.Future[Any]:
        return self._future("external cancel", workflow_id)

    def signal_future(self, name: str) -> asyncio.Future[Any]:
        return self._future("signal", name)

    def activity_code(self, name: str) -> Callable[..., Any] | None:
        return None  # results stay as recorded

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        self.calls.append(("patched", patch_id))
        return True

    def upsert_search_attributes(self, attributes: dict[str, Any]) -> None:
        self.calls.append(("upsert_search_attributes", attributes))

    def marker(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(("marker", name))
        return compute()


def test_workflow_calls_drive_any_implementation_of_the_runtime() -> None:
    runtime = RecordingRuntime()
    assert isinstance(runtime, WorkflowRuntime)
    results: list[Any] = []

    async def code() -> None:
        results.append(await workflow.execute_activity("charge", 5))
        await workflow.sleep(30)
        results.append(await workflow.manual_task("approve"))
        results.append(await workflow.execute_child("child_flow"))
        handle = workflow.start_child("child_flow", id="kid")
        results.append(handle.id)
        results.append(await handle.signal("poke", 1))
        results.append(await workflow.get_external_workflow_handle("other").cancel())
        results.append(await workflow.wait_signal("go"))
        results.append(workflow.patched("p1"))
        results.append(workflow.business_days(1, tz="UTC"))
        results.append(workflow.info().workflow_type)

    task = runtime.loop.create_task(code())
    runtime.loop.run_until_quiet()
    assert task.done() and task.exception() is None
    assert [c for c, _ in runtime.calls] == [
        "activity", "timer", "task", "child", "child", "external signal", "external cancel",
        "signal", "patched", "marker"]
    assert results == ["activity done", "task done", "child done", "kid",
                       "external signal done", "external cancel done", "signal done", True,
                       timedelta(days=1), "t"]  # 100 s after the epoch: a Thursday


def test_every_event_the_code_receives_has_one_apply_method() -> None:
    """Inbound events are applied in one place: ``WorkflowInstance._apply_<EventType>``."""
    applied = {name.removeprefix("_apply_") for name in vars(WorkflowInstance)
               if name.startswith("_apply_")}
    assert applied == set(INBOUND_TYPES)
    assert not applied & COMMAND_TYPES


@workflow.defn(name="every_inbound")
async def every_inbound() -> list[Any]:
    out: list[Any] = []
    calls = (lambda: workflow.execute_activity("a"), lambda: workflow.sleep(5),
             lambda: workflow.manual_task("k"), lambda: workflow.execute_child("c"))
    for call in calls:
        try:
            out.append(await call())
        except (ApplicationError, TimeoutError) as err:
            out.append(type(err).__name__)
    out.append(await workflow.wait_signal("s"))
    return out


ANSWERS = {  # the command each call issues -> the events that may answer it
    "ActivityScheduled": [("ActivityCompleted", {"result": 1}),
                          ("ActivityFailed", {"name": "a", "error": {"message": "no"}})],
    "TimerStarted": [("TimerFired", {})],
    "ManualTaskCreated": [("ManualTaskCompleted", {"result": 3}),
                          ("ManualTaskFailed", {"reason": "no"}),
                          ("ManualTaskTimedOut", {"kind": "k"})],
    "ChildWorkflowStarted": [("ChildWorkflowCompleted", {"result": 4}),
                             ("ChildWorkflowFailed", {"error": {"message": "no"}})],
}
EXPECTED = {"ActivityCompleted": 1, "ActivityFailed": "ActivityError", "TimerFired": None,
            "ManualTaskCompleted": 3, "ManualTaskFailed": "ApplicationError",
            "ManualTaskTimedOut": "TimeoutError", "ChildWorkflowCompleted": 4,
            "ChildWorkflowFailed": "ChildWorkflowError"}
BOOKKEEPING = [("ActivityAttemptFailed", {"ref": 2, "error": {}}),
               ("WorkflowTaskFailed", {"kind": "error"})]


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_every_inbound_event_resolves_its_call_and_replays_to_the_same_history(
        data: st.DataObject) -> None:
    """The family of inbound events: whichever answer each call gets, with bookkeeping
    events anywhere, the code sees the answer, and a fresh replay of the whole history
    issues no command (cached and rebuilt instances agree)."""
    live = WorkflowInstance(every_inbound, WorkflowInfo("w", "r", "every_inbound", 0.0))
    history: list[Event] = []
    answers: list[Any] = []

    def deliver(kind: str, attrs: dict[str, Any]) -> list[Any]:
        batch = []
        if data.draw(st.booleans()):
            extra_kind, extra = data.draw(st.sampled_from(BOOKKEEPING))
            batch.append(Event(len(history) + 1, extra_kind, 1.0, extra))
        batch.append(Event(len(history) + len(batch) + 1, kind, 1.0, attrs))
        history.extend(batch)
        commands = live.activate(batch).commands
        history.extend(Event(c.seq, c.type, 1.0, c.attrs) for c in commands)
        return commands

    commands = deliver("WorkflowStarted", {})
    while commands and commands[-1].type in ANSWERS:
        kind, attrs = data.draw(st.sampled_from(ANSWERS[commands[-1].type]))
        answers.append(EXPECTED[kind])
        commands = deliver(kind, {**attrs, "ref": commands[-1].seq})
    assert [c.type for c in commands] == []  # waiting for the signal
    commands = deliver("SignalReceived", {"name": "s", "payload": "go"})
    assert [c.type for c in commands] == ["WorkflowCompleted"]
    assert commands[0].attrs["result"] == [*answers, "go"]

    replayed = WorkflowInstance(every_inbound, WorkflowInfo("w", "r", "every_inbound", 0.0))
    assert replayed.activate(history).commands == []
