"""The cheaper workflow step: an ActivityScheduled event's JSON put together from its queue
row's encodings, and the deadline watch's per-thread record reused from one activation to
the next. Values and counts, not timings."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onward import payloads, workflow
from onward.advance import encode_activity
from onward.deadline import DeadlineWatch
from onward.events import Event
from onward.instance import WorkflowInstance
from onward.store import runs
from onward.store.sqlite import SqliteStore
from onward.workflow_runtime import WorkflowInfo


@workflow.defn(name="step_path_unit")
async def step_path_unit(start: Any) -> Any:
    return await workflow.execute_activity("step", start)


def scheduled_attrs(args: list[Any]) -> dict[str, Any]:
    """The attributes of the ActivityScheduled command a workflow issues."""
    instance = WorkflowInstance(step_path_unit, WorkflowInfo("w", "r", "step_path_unit", 1.0))
    activation = instance.activate([Event(1, "WorkflowStarted", 1.0, {"input": args})])
    command = activation.commands[-1]
    assert command.type == "ActivityScheduled"
    return command.attrs


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5)
                     | st.floats(allow_nan=False, allow_infinity=False),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                     max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_a_default_activity_event_is_stored_as_encoding_it_whole(value: Any) -> None:
    """With the default options (every activity scheduled without any), the event's JSON
    put together from the row's encodings is the very text of encoding it whole."""
    attrs = scheduled_attrs([value])
    encoded = encode_activity(attrs)
    assert encoded.attrs_text == payloads.encode(attrs)
    assert encoded.args == payloads.encode(attrs["args"])


_seconds = st.none() | st.integers(1, 10**6) | st.floats(0.5, 1e6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "name": st.text(max_size=5), "args": st.lists(_json, max_size=2),
    "retry": st.fixed_dictionaries({"maximum_attempts": st.integers(0, 5) | st.floats(0, 5)}),
    "start_to_close": _seconds, "schedule_to_close": _seconds, "heartbeat": _seconds}),
    min_size=1, max_size=4))
def test_activity_events_read_back_as_their_attributes(sequence: list[dict[str, Any]]
                                                       ) -> None:
    """Whatever options came before, an event's JSON, put together or encoded whole,
    reads back as its attributes; put together only where it is the exact text."""
    for attrs in sequence + sequence[:1]:
        encoded = encode_activity(attrs)
        if encoded.attrs_text is not None:
            assert encoded.attrs_text == payloads.encode(attrs)


def test_other_attributes_are_encoded_whole() -> None:
    """Attributes not in the shape the instance builds get no text put together."""
    attrs = scheduled_attrs([1])
    attrs["extra"] = 1
    assert encode_activity(attrs).attrs_text is None


def test_the_watch_keeps_one_record_per_thread() -> None:
    """Arming again reuses the thread's record: one per thread, however many activations;
    nothing is reported while the code keeps within its deadline."""
    watch = DeadlineWatch(60.0)
    try:
        for _ in range(100):
            watch.arm()
            assert watch.disarm() is None
        worker = threading.Thread(target=lambda: (watch.arm(), watch.disarm()))
        worker.start()
        worker.join()
        assert len(watch._on) == 2  # this thread's and the other's
        assert watch.stopped == 0
    finally:
        watch.close()



def test_a_write_commits_or_rolls_back_and_always_lets_go(tmp_path: Path) -> None:
    """The write transaction's block: a clean exit commits, an exception rolls back and
    goes on; either way the writer lock is let go (the next write does not wait)."""
    store = SqliteStore(tmp_path / "w.db")
    try:
        with store.write() as tx:
            runs.register_workflow_types(tx, ["kept"], 1.0)
        with pytest.raises(KeyError), store.write() as tx:
            runs.register_workflow_types(tx, ["dropped"], 1.0)
            raise KeyError("boom")
        with store.write() as tx:
            assert runs.workflow_type_names(tx) == ["kept"]
        assert store._writer_lock.acquire(blocking=False)
        store._writer_lock.release()
    finally:
        store.close()
