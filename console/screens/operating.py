"""The operator's flow shared by screens: confirm in a dialog, act in a thread, report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from textual.content import Content
from textual.screen import Screen
from textual.worker import get_current_worker

from onward import BadInput

from ..messages import OperationDone
from ..operations import OPERATIONS, answer_text, handler_answer, perform_many
from .modals import AnswerModal, ConfirmModal, HandlerModal, RepairModal, SignalModal

if TYPE_CHECKING:
    from ..app import OnwardApp

ANSWER_INLINE = 60
"""A query or update answer longer than this (as one line of JSON) also opens in a dialog."""
TYPE_COUNT_ABOVE = 5
"""A bulk action on more runs than this asks the operator to type how many."""
BULK_NOTES = {"retry": "A run whose retry would discard completed activities is left as it "
                       "is (and listed in the results): retry it on its own to see them."}


def short(ident: str, width: int = 24) -> str:
    """An id cut to fit on a button."""
    return ident if len(ident) <= width else ident[:width - 1] + "…"


class Operating(Screen[None]):
    """Mixed into screens that act on runs. Work runs on the app, so it outlives the screen;
    the app turns OperationDone into a toast (one run) or a results dialog (bulk)."""

    @property
    def onward(self) -> OnwardApp:
        return self.app  # type: ignore[return-value]

    def ask_operation(self, name: str, ident: str, params: dict[str, Any] | None = None,
                      *, detail: str = "") -> None:
        """Confirm one operation on one run, then run it."""
        if name in ("retry", "reset"):
            self.ask_repair(name, ident, (params or {}).get("seq"))
            return
        op = OPERATIONS[name]
        body = Content.assemble((op.explain, ""), *(("\n\n", (detail, "bold")) if detail
                                                     else ()))
        title = f"{op.title} {ident}?"

        def answered(answer: dict[str, Any] | None) -> None:
            if answer is None:
                return
            chosen = dict(params or {})
            if op.asks_reason:
                chosen["reason"] = (answer.get("reason") or "").strip()
            self.run_operation(name, [ident], chosen)

        self.app.push_screen(
            ConfirmModal(title, body, confirm=f"{op.title} {short(ident)}", danger=op.danger,
                         reason="" if op.asks_reason else None, reason_required=op.asks_reason,
                         reason_label="Reason (recorded in the history)"),
            answered)

    def ask_repair(self, name: str, ident: str, seq: int | None = None) -> None:
        """Retry or reset: fetch the plan (what the cut keeps and discards) in a thread,
        then confirm it. A retry that cuts nothing (a stuck run, a backoff) gets the plain
        confirmation."""
        app = self.onward
        engine = app.engine

        def plan_then_ask() -> None:
            try:
                plan = engine.repair_plan(ident, seq)
            except BadInput:
                if name != "retry":
                    raise  # e.g. a cut that is not allowed: the app shows why
                app.call_from_thread(self._ask_plain_retry, ident)
                return
            app.call_from_thread(self._ask_plan, name, ident, plan)

        app.run_worker(plan_then_ask, name=f"plan {name} {ident}", group="plan",
                       thread=True, exclusive=True, exit_on_error=False)

    def _ask_plain_retry(self, ident: str) -> None:
        op = OPERATIONS["retry"]
        self.app.push_screen(
            ConfirmModal(f"Retry {ident}?", op.explain, confirm=f"Retry {short(ident)}",
                         danger=op.danger),
            lambda answer: None if answer is None else
            self.run_operation("retry", [ident], {}))

    def _ask_plan(self, name: str, ident: str, plan: dict[str, Any]) -> None:
        def answered(answer: dict[str, Any] | None) -> None:
            if answer is not None:
                self.run_operation(name, [ident], {"seq": plan["cut"], **answer})
        engine = self.onward.engine
        self.app.push_screen(RepairModal(plan, OPERATIONS[name].explain,
                                         replan=lambda seq: engine.repair_plan(ident, seq)),
                             answered)

    def _handler_names(self, ident: str, kind: str) -> Any:
        """A loader of the run's ``kind`` handler names (a replay: called in a thread)."""
        engine = self.onward.engine
        return lambda: engine.handlers(ident)[kind]

    def ask_signal(self, ident: str) -> None:
        def answered(answer: dict[str, Any] | None) -> None:
            if answer is not None:
                self.run_operation("signal", [ident], answer)
        self.app.push_screen(SignalModal(ident, self._handler_names(ident, "signals")),
                             answered)

    def ask_handler(self, kind: str, ident: str) -> None:
        """Ask a query or an update (``kind``) of the run, choosing among its handlers."""
        def answered(answer: dict[str, Any] | None) -> None:
            if answer is not None:
                self._ask_handler(kind, ident, answer)
        names = self._handler_names(ident, "queries" if kind == "query" else "updates")
        self.app.push_screen(HandlerModal(ident, kind, names), answered)

    def _ask_handler(self, kind: str, ident: str, params: dict[str, Any]) -> None:
        """Ask in a thread; the answer is a toast, and a dialog too when it is long."""
        app = self.onward
        engine = app.engine

        def job() -> None:
            value = handler_answer(engine, kind, ident, params)
            text = answer_text(kind, ident, params, value)
            app.post_message(OperationDone(kind, [(ident, True, text)]))
            if len(json.dumps(value, ensure_ascii=False, default=str)) > ANSWER_INLINE:
                title = f"{kind.title()} {params['name']} of {ident}"
                app.call_from_thread(app.push_screen, AnswerModal(title, value))

        app.run_worker(job, name=f"{kind} {ident}", group="operations", thread=True,
                       exit_on_error=False)

    def ask_bulk(self, name: str, idents: list[str], described: str, *, scope: str
                 ) -> None:
        """Confirm one operation on many runs, then run it on each. The title and button
        name the count and the ``scope`` ("selected" or "shown"); ``described`` says which
        runs those are.

        The safe button has focus, a terminate needs a reason, and more than
        ``TYPE_COUNT_ABOVE`` runs need their number typed."""
        op = OPERATIONS[name]
        if not idents:
            self.app.notify(f"No runs to {op.title.lower()} ({described}).",
                            severity="warning", markup=False)
            return
        count = len(idents)
        runs = f"{count} {scope} run" + ("" if count == 1 else "s")
        preview = ", ".join(idents[:8]) + (f" and {count - 8} more" if count > 8 else "")
        body = Content.assemble(
            (runs, "bold"), f" — {described}:\n", (preview, "$text-muted"), "\n\n",
            op.explain, *(("\n\n", BULK_NOTES[name]) if name in BULK_NOTES else ()))

        def answered(answer: dict[str, Any] | None) -> None:
            if answer is None:
                return
            chosen = {"reason": (answer.get("reason") or "").strip()} if op.asks_reason \
                else {}
            self.run_operation(name, idents, chosen, bulk=True)

        self.app.push_screen(
            ConfirmModal(f"{op.title} {runs}?", body, confirm=f"{op.title} {runs}",
                         danger=True, reason="" if op.asks_reason else None,
                         reason_required=op.asks_reason,
                         reason_label="Reason (recorded in each history)",
                         type_to_confirm=str(count) if count > TYPE_COUNT_ABOVE else None),
            answered)

    def run_operation(self, name: str, idents: list[str], params: dict[str, Any],
                      *, bulk: bool = False) -> None:
        """Run an operation in a thread worker owned by the app; report with a message."""
        app = self.onward
        engine = app.engine

        def job() -> None:
            worker = get_current_worker()
            results = perform_many(engine, name, idents, params,
                                   cancelled=lambda: worker.is_cancelled)
            app.post_message(OperationDone(name, results, bulk))

        app.run_worker(job, name=f"{name} {len(idents)} run(s)", group="operations",
                       thread=True, exit_on_error=False)
