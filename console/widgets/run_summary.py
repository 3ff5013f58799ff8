"""The top of the run detail screen: status, ids, step, stuck reason, error, links."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.content import Content
from textual.widgets import Static

from .format import ago, clock_time, error_text, local_times
from .status import status_content


def _pair(label: str, value: str, style: str = "") -> Content:
    return Content.assemble((f"{label} ", "$text-muted"), (value, style))


class QuietStatic(Static):
    """A Static whose ``show`` redraws nothing when the content is what is shown, and lays
    the screen out again only when a line's width changed (a "3s ago" that becomes "4s
    ago" wraps as before, so the widget keeps its height)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: Content | None = None

    def show(self, content: Content) -> None:
        """Show ``content`` (see the class)."""
        shown = self._shown
        if shown is not None and shown.plain == content.plain and shown.spans == content.spans:
            return
        self._shown = content
        self.update(content, layout=shown is None or _widths(shown) != _widths(content))


def _widths(content: Content) -> list[int]:
    """The width of each line (lines of the same widths wrap the same)."""
    return [cell_len(line) for line in content.plain.split("\n")]


class RunSummary(QuietStatic):
    """A few lines that say where a run stands."""


    def show_run(self, run: dict[str, Any], now: float, *, offline: bool = False) -> None:
        gap = Content("   ")
        head = [status_content(run),
                Content.styled(str(run.get("workflow", "")), "bold"),
                _pair("id", str(run.get("id", "")), "bold"),
                _pair("run", str(run.get("run_id", ""))[:12])]
        started = run.get("started")
        head.append(_pair("started", f"{clock_time(started, now)} ({ago(started, now)})"))
        if run.get("closed"):
            head.append(_pair("closed", clock_time(run.get("closed"), now)))
        else:
            head.append(_pair("last change", ago(run.get("updated"), now)))
        lines = [gap.join(head)]
        if offline:
            lines.append(Content.styled("offline: an exported history, read-only", "$text-warning"))
        if run.get("step") and run.get("status") == "running":
            lines.append(_pair("step", local_times(str(run["step"]), now)))
        if run.get("stuck") and run.get("stuck_reason"):
            reason = str(run["stuck_reason"]).splitlines()[0]
            lines.append(_pair("stuck", reason, "$text-warning"))
        if run.get("paused"):
            lines.append(_pair("paused", "no new attempts or workflow tasks until resumed",
                               "$text-accent"))
        if run.get("error"):
            lines.append(_pair("error", error_text(run["error"]), "$text-error"))
        links = []
        if run.get("parent"):
            links.append(_pair("parent", str(run["parent"].get("id"))))
        if run.get("children"):
            links.append(_pair("children", str(len(run["children"]))))
        if len(run.get("runs") or []) > 1:
            links.append(_pair("runs of this id", str(len(run["runs"]))))
        for key, label in (("reset_from", "reset from run"), ("reset_to", "reset to run"),
                           ("continued_from", "continued from run")):
            if run.get(key):
                links.append(_pair(label, str(run[key])[:12]))
        if links:
            lines.append(gap.join(links) + Content.styled("   (Related tab)", "$text-muted"))
        self.show(Content("\n").join(lines))
