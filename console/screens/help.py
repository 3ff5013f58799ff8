"""The help screen: every key binding (read from the screens themselves) and the symbols."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ..widgets.format import STATUS_LOOK

INTRO = (  # one line per paragraph: the screen wraps them to its width
    "Onward runs durable workflows; this console watches and steers them. Everything here "
    "is live: the tables refresh as runs move on. [b]ctrl+p[/b] opens the command palette, "
    "which lists every action of the screen you are on. Dialogs: [b]ctrl+s[/b] submits, "
    "[b]esc[/b] cancels.\n\n"
    "In every table: [b]j[/b]/[b]k[/b] or the arrows move, [b]g[/b]/[b]G[/b] or "
    "home/end go to the first/last row. On the runs list, [b]space[/b] selects runs: "
    "retry, pause/resume, cancel and terminate (and their capital forms) then act on "
    "the selection ([b]esc[/b] clears it); with none selected, R C T act on every run "
    "shown. The filter bar ([b]/[/b]) takes an id or workflow name, or a query in "
    "the list-filter language: [b]amount > 100 AND ExecutionStatus = \"Running\"[/b]. "
    "Times are relative and in local time."
)

SCREENS = (  # (key, name, what it shows): the screens the number keys switch to
    ("1", "Runs", "every run, those needing attention first; filters, views, bulk actions"),
    ("2", "Tasks", "the inbox of manual tasks waiting on a person"),
    ("3", "Code", "loaded flows and providers, versions, refused reloads, the load log"),
    ("4", "Workers", "live workers, their heartbeats and the attempts they hold"),
    ("5", "Schedules", "schedules with countdowns, next fires and recent results; "
                       "pause, unpause, trigger, backfill, delete"),
)

KEY_NAMES = {"slash": "/", "question_mark": "?", "escape": "esc", "enter": "enter"}


def _key(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    return ", ".join(KEY_NAMES.get(k, k) for k in binding.key.split(","))


def bindings_content(title: str, bindings: Iterable[BindingType]) -> Content | None:
    """A titled two-column list of the bindings that have a description."""
    rows = [(_key(b), b.description + (f" ({b.tooltip})" if b.tooltip else ""))
            for b in bindings if isinstance(b, Binding) and b.description]
    if not rows:
        return None
    lines = [Content.styled(title, "bold $text-primary")]
    lines += [Content.assemble((f"  {key:<10}", "bold $text-accent"), description)
              for key, description in rows]
    return Content("\n").join(lines)


def screens_content() -> Content:
    """The screens and the keys that switch to them."""
    lines = [Content.styled("Screens", "bold $text-primary")]
    lines += [Content.assemble((f"  {key:<10}", "bold $text-accent"), (name, "bold"),
                               f" — {what}") for key, name, what in SCREENS]
    return Content("\n").join(lines)


def symbols_content() -> Content:
    lines = [Content.styled("Status symbols", "bold $text-primary")]
    lines += [Content.assemble((f"  {symbol:<10}", f"bold ${var}"), label)
              for symbol, label, var in STATUS_LOOK.values()]
    return Content("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    """Keys per screen, generated from their BINDINGS so it never goes out of date."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape,question_mark", "close", "Close", id="help.close")]

    def __init__(self, sections: Sequence[tuple[str, Iterable[BindingType]]]) -> None:
        super().__init__()
        self._sections = sections

    def compose(self) -> ComposeResult:
        parts = [Content.from_markup(INTRO), screens_content()]
        parts += [part for title, bindings in self._sections
                  if (part := bindings_content(title, bindings)) is not None]
        parts.append(symbols_content())
        with Vertical(classes="dialog -wide -tall", id="help"):
            yield Label("Help — keys and symbols (esc closes)", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(Content("\n\n").join(parts), id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss()
