"""A workflow instance fed histories directly: cancel requests are a state, and signals
not yet handled are carried across continue-as-new (issue 14, items 7 and 8)."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from onward import workflow
from onward.events import Event
from onward.instance import Command, WorkflowInstance
from onward.workflow_runtime import WorkflowInfo


@workflow.defn(name="saga_unit")
async def saga_unit() -> str:
    try:
        await workflow.sleep(3600)
    except asyncio.CancelledError:
        await workflow.execute_activity("refund")
        raise
    return "finished"


@workflow.defn(name="one_then_continue")
async def one_then_continue() -> None:
    await workflow.wait_signal("item")
    workflow.continue_as_new()


def new_instance(fn: Any) -> WorkflowInstance:
    return WorkflowInstance(fn, WorkflowInfo("w", "r", fn.__name__, 0.0))


class History:
    """Builds a history as the worker would: new events, then the commands they cause."""

    def __init__(self, fn: Any) -> None:
        self.instance = new_instance(fn)
        self.events: list[Event] = []

    def deliver(self, *items: tuple[str, dict[str, Any]]) -> list[Command]:
        start = len(self.events) + 1
        batch = [Event(start + i, kind, float(start + i), attrs)
                 for i, (kind, attrs) in enumerate(items)]
        self.events += batch
        commands = self.instance.activate(batch).commands
        self.events += [Event(c.seq, c.type, float(c.seq), c.attrs) for c in commands]
        return commands


def test_a_second_cancel_request_does_not_interrupt_the_compensation() -> None:
    h = History(saga_unit)
    assert [c.type for c in h.deliver(("WorkflowStarted", {}))] == ["TimerStarted"]
    refund = h.deliver(("CancelRequested", {}))
    assert [c.type for c in refund] == ["TimerCanceled", "ActivityScheduled"]
    assert h.deliver(("CancelRequested", {})) == []  # nothing: the refund goes on
    assert not h.instance.closed
    closing = h.deliver(("ActivityCompleted", {"ref": refund[-1].seq, "result": None}))
    assert [c.type for c in closing] == ["WorkflowCanceled"]


@settings(max_examples=40, deadline=None)
@given(extra=st.lists(st.sampled_from(["before", "during"]), max_size=4),
       in_one_batch=st.booleans())
def test_any_number_of_cancel_requests_replays_like_one(extra: list[str],
                                                        in_one_batch: bool) -> None:
    """Old databases may hold several requests: only the first raises CancelledError,
    live and on a replay from scratch."""
    h = History(saga_unit)
    h.deliver(("WorkflowStarted", {}))
    cancels = [("CancelRequested", {})] * (1 + extra.count("before"))
    if in_one_batch:
        refund = h.deliver(*cancels)
    else:
        refund = [c for item in cancels for c in h.deliver(item)]
    assert [c.type for c in refund] == ["TimerCanceled", "ActivityScheduled"]
    for _ in range(extra.count("during")):
        assert h.deliver(("CancelRequested", {})) == []
    h.deliver(("ActivityCompleted", {"ref": refund[-1].seq, "result": None}))
    assert h.events[-1].type == "WorkflowCanceled"
    replay = new_instance(saga_unit)
    assert replay.activate(list(h.events)).commands == []  # the same commands: no divergence
    assert replay.closed


def test_signals_after_the_one_handled_ride_along_with_continue_as_new() -> None:
    h = History(one_then_continue)
    h.deliver(("WorkflowStarted", {}))
    commands = h.deliver(*[("SignalReceived", {"name": n, "payload": p})
                           for n, p in [("item", 1), ("other", "x"), ("item", 2)]])
    assert [c.type for c in commands] == ["WorkflowContinuedAsNew"]
    assert commands[0].attrs["signals"] == [{"name": "other", "payload": "x"},
                                            {"name": "item", "payload": 2}]


def test_signals_buffered_before_the_run_waits_are_carried_in_arrival_order() -> None:
    h = History(one_then_continue)
    commands = h.deliver(("WorkflowStarted", {}),
                         *[("SignalReceived", {"name": "item" if i % 2 else "b", "payload": i})
                           for i in range(6)])
    assert commands[0].attrs["signals"] == [
        {"name": "b", "payload": 0}, {"name": "b", "payload": 2}, {"name": "item", "payload": 3},
        {"name": "b", "payload": 4}, {"name": "item", "payload": 5}]


@workflow.defn(name="take_some")
async def take_some(got: list[int], per_run: int, total: int) -> list[int]:
    for _ in range(per_run):
        if len(got) == total:
            return got
        got = [*got, await workflow.wait_signal("item")]
    if len(got) == total:
        return got
    workflow.continue_as_new(got, per_run, total)
    return got  # not reached


@settings(max_examples=80, deadline=None)
@given(per_run=st.integers(1, 3), batches=st.lists(st.integers(0, 4), min_size=1, max_size=8),
       noise=st.lists(st.booleans(), max_size=12))
def test_every_signal_is_handled_once_in_order_across_continue_as_new(
        per_run: int, batches: list[int], noise: list[bool]) -> None:
    """Signals arrive in batches (one activation each) while runs take ``per_run`` each
    and continue as new; ``other`` signals are never waited for and ride along forever.
    The runs are chained as the advancer chains them (carried signals first)."""
    total = sum(batches)
    sent = iter(range(total))
    others = iter(range(1000, 2000))
    extra = iter(noise)
    h = History(take_some)
    h.deliver(("WorkflowStarted", {"input": [[], per_run, total]}))
    sent_others: list[int] = []
    pending = list(batches)
    runs = 1
    while True:
        closing = [e for e in h.events if e.type in ("WorkflowContinuedAsNew",
                                                     "WorkflowCompleted")]
        if closing and closing[-1].type == "WorkflowCompleted":
            break
        if closing:  # start the next run as the advancer does
            attrs = closing[-1].attrs
            h = History(take_some)
            h.deliver(("WorkflowStarted", {"input": attrs["input"]}),
                      *[("SignalReceived", s) for s in attrs.get("signals", [])])
            runs += 1
            assert runs <= total + 2
            continue
        assert pending, "the run waits for signals that were never sent"
        batch: list[tuple[str, dict[str, Any]]] = []
        for _ in range(pending.pop(0)):
            if next(extra, False):
                sent_others.append(next(others))
                batch.append(("SignalReceived", {"name": "other", "payload": sent_others[-1]}))
            batch.append(("SignalReceived", {"name": "item", "payload": next(sent)}))
        h.deliver(*batch)
    result = h.events[-1].attrs["result"]
    assert result == list(range(total))
    assert [s["payload"] for s in h.instance.unhandled_signals()] == sent_others
