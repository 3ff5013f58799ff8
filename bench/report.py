"""The printed report: one line per figure as it is measured, and a summary table.

Each figure may carry ratios to the figures it is judged against: the SQLite 1-row commit
rate ("× limit", in steps/s), the drain ("× drain"), DBOS ("× DBOS") and dura ("× dura").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

RATIOS = ("vs_limit", "vs_drain", "vs_dbos", "vs_dura")
"""The ratio fields of a Row, in the order they are printed."""
RATIO_NAMES = {"vs_limit": "limit", "vs_drain": "drain", "vs_dbos": "DBOS", "vs_dura": "dura"}


@dataclass
class Row:
    """One printed figure."""

    section: str
    label: str
    value: float | None
    unit: str
    vs_limit: float | None = None
    vs_dbos: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""
    vs_drain: float | None = None
    vs_dura: float | None = None


def fmt(value: float | None) -> str:
    """A figure with as many digits as it needs (thousands separated)."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


TARGET_RATIOS = (0.5, 0.9, 1.0, 1.25, 5.0)
"""Ratios that targets name: a figure just under one is never printed as reaching it."""


def fmt_ratio(value: float) -> str:
    """Two decimals; three, rounded down, where two would round a miss up to its target
    (0.8996 → 0.899, not 0.90)."""
    two = f"{value:.2f}"
    if round(value, 2) in TARGET_RATIOS and value < float(two):
        return f"{math.floor(value * 1000) / 1000:.3f}"
    return two


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing (or ``b`` is zero)."""
    if a is None or not b:
        return None
    return a / b


def verdict(ok: bool | None) -> str:
    return {True: "ok", False: "MISS", None: "?"}[ok]


class Report:
    """The rows printed so far, the figures behind them (for the JSON) and failed sections."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.figures: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def add(self, row: Row) -> None:
        """Print ``row`` now and keep it for the summary."""
        self.rows.append(row)
        parts = [f"  {row.label:<44} {fmt(row.value):>10} {row.unit:<12}"]
        for name in RATIOS:
            value = getattr(row, name)
            if value is not None:
                parts.append(f"{fmt_ratio(value):>6}× {RATIO_NAMES[name]}")
        if row.target:
            parts.append(f"[target {row.target}: {verdict(row.ok)}]")
        if row.note:
            parts.append(f"({row.note})")
        print("  ".join(parts), flush=True)

    def note(self, text: str) -> None:
        """An indented line of explanation under the section's heading."""
        print(f"    {text}", flush=True)

    def table(self) -> None:
        """The summary: every row, its ratios and its target verdict."""
        head = ("section", "figure", "value", "unit", "×limit", "×drain", "×DBOS", "×dura",
                "target", "")
        lines = [head] + [
            (r.section, r.label, fmt(r.value), r.unit,
             *("" if getattr(r, name) is None else fmt_ratio(getattr(r, name))
               for name in RATIOS),
             r.target, "" if not r.target else verdict(r.ok))
            for r in self.rows]
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        right = {2, 4, 5, 6, 7}
        print()
        print("Summary")
        for k, line in enumerate(lines):
            cells = [str(c).rjust(w) if i in right else str(c).ljust(w)
                     for i, (c, w) in enumerate(zip(line, widths, strict=True))]
            print("  " + "  ".join(cells).rstrip())
            if k == 0:
                print("  " + "  ".join("-" * w for w in widths))
        checks = self.figures.get("limit_rechecks") or {}
        if checks:
            print("  limit re-measured before throughput sections (txn/s): " + ", ".join(
                f"{k} {v:,.0f}" for k, v in checks.items()))
        for section, error in self.errors.items():
            print(f"  {section}: FAILED: {error}")

    def markdown(self) -> str:
        """The rows as a Markdown table (figure, value, ratios and target), for the README."""
        out = ["| section | figure | value | ratios | target |", "|---|---|---|---|---|"]
        for r in self.rows:
            ratios = ", ".join(f"{fmt_ratio(getattr(r, name))} × {RATIO_NAMES[name]}"
                               for name in RATIOS if getattr(r, name) is not None)
            target = f"{r.target}: {verdict(r.ok)}" if r.target else ""
            out.append(f"| {r.section} | {r.label} | {fmt(r.value)} {r.unit} | {ratios} | "
                       f"{target} |")
        return "\n".join(out) + "\n"
