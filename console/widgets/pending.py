"""Pending work of a run: activities (attempts, backoff, last failure), timers, manual tasks."""

from __future__ import annotations

from typing import Any

from textual.containers import VerticalScroll
from textual.content import Content

from .format import clock_time, countdown, error_text
from .run_summary import QuietStatic


class PendingView(VerticalScroll):
    """What a run is waiting for, in plain sentences."""

    def compose(self):  # type: ignore[no-untyped-def]
        yield QuietStatic("", classes="pending-body")

    def show_pending(self, pending: dict[str, Any] | None, now: float) -> None:
        """Show ``pending`` (the run's pending work) with countdowns to ``now`` (redrawn
        only when the text changed: see QuietStatic)."""
        pending = pending or {}
        lines: list[Content] = []
        activities = pending.get("activities") or []
        timers = pending.get("timers") or []
        tasks = pending.get("tasks") or []
        lines.append(Content.styled(f"Activities ({len(activities)})", "bold"))
        for a in activities:
            if a.get("running"):
                state = Content.styled(f"running on {a.get('worker')}", "$text-success")
            else:
                state = Content(f"next attempt {countdown(a.get('due'), now)} "
                                f"({clock_time(a.get('due'), now)})")
            line = Content.assemble(
                f"  #{a.get('ref')} ", (str(a.get("name")), "bold"),
                f"  attempt {a.get('attempt')}  ", state)
            lines.append(line)
            if a.get("last_failure"):
                lines.append(Content.assemble("      last failure: ",
                                              (error_text(a["last_failure"]), "$text-error")))
        lines.append(Content(""))
        lines.append(Content.styled(f"Timers ({len(timers)})", "bold"))
        for t in timers:
            lines.append(Content(f"  #{t.get('ref')} {t.get('kind', 'timer')} fires "
                                 f"{clock_time(t.get('fire_at'), now)} "
                                 f"({countdown(t.get('fire_at'), now)})"))
        lines.append(Content(""))
        lines.append(Content.styled(f"Manual tasks ({len(tasks)})", "bold"))
        for t in tasks:
            who = f" for {t['assignee']}" if t.get("assignee") else ""
            deadline = countdown(t.get("deadline"), now)
            lines.append(Content.assemble(
                "  ", (f"{t.get('kind')}{who}", "bold"),
                f"  {t.get('instructions') or ''}  ",
                (deadline, "$text-error" if t.get("overdue") else "$text-muted"),
                (f"  {t.get('task_id')}", "$text-muted")))
        if not (activities or timers or tasks):
            lines.append(Content(""))
            lines.append(Content.styled("Nothing pending.", "italic $text-muted"))
        self.query_one(".pending-body", QuietStatic).show(Content("\n").join(lines))
