"""Live reload of flows: swapped only after the runs in flight replay cleanly."""

from __future__ import annotations

import threading
from pathlib import Path

from onward import Engine
from onward.reload import reload_flows_file, watch_code
from tests.helpers import wait_until

V1 = Path(__file__).resolve().parent.parent / "flows" / "v1" / "orders.py"
V2 = Path(__file__).resolve().parent.parent / "flows" / "v2" / "orders.py"
V3 = Path(__file__).resolve().parent.parent / "flows" / "v3" / "orders.py"


def test_breaking_reload_is_refused_naming_runs_and_safe_one_is_taken(
        tmp_path: Path, any_db: Path | str) -> None:
    flows = tmp_path / "orders.py"
    flows.write_text(V1.read_text())
    eng = Engine(any_db, flows=[str(flows)])
    with eng.worker():
        eng.start("order", "o", id="o")
        wait_until(lambda: "ActivityCompleted" in [e["type"] for e in eng.show("o")["history"]],
                   message="charged")
        flows.write_text(V2.read_text())
        ok, message = reload_flows_file(eng, str(flows))
        assert not ok and "kept the previous code" in message and "o (" in message
        flows.write_text("def broken(:\n")
        ok, message = reload_flows_file(eng, str(flows))
        assert not ok and "SyntaxError" in message
        flows.write_text(V3.read_text())
        ok, message = reload_flows_file(eng, str(flows))
        assert ok, message
        eng.signal("o", "go")
        assert eng.handle("o").result(timeout=10) == ["charged o", "express", "shipped o"]
    eng.close()


def test_watcher_reloads_and_retries_stuck_runs(tmp_path: Path, any_db: Path | str) -> None:
    flows = tmp_path / "orders.py"
    buggy = V1.read_text().replace(
        'done.append(await workflow.execute_activity("ship", name))',
        'raise KeyError("bug after the signal")')
    assert buggy != V1.read_text()
    flows.write_text(buggy)
    eng = Engine(any_db, flows=[str(flows)])
    messages: list[tuple[str, bool]] = []
    swapped = threading.Event()

    def notify(message: str, ok: bool) -> None:
        messages.append((message, ok))
        if ok:
            swapped.set()

    with eng.worker() as worker:
        watcher = watch_code(eng, worker, notify)
        try:
            eng.start("order", "w", id="w")
            eng.signal("w", "go")
            wait_until(lambda: eng.show("w")["stuck"], message="held stuck by the bug")
            flows.write_text(V1.read_text())
            assert swapped.wait(20), f"no reload reported: {messages}"
            assert eng.handle("w").result(timeout=10) == ["charged w", "shipped w"]
        finally:
            watcher.stop()
    assert any("reloaded orders.py" in m for m, _ in messages)
    assert not eng.show("w")["stuck"]
    eng.close()
