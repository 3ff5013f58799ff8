"""The base of screens whose data comes from the store: load off the UI thread, coalesce."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.worker import Worker, WorkerState

from onward import Engine

from ..messages import StoreChanged
from ..widgets.status import theme_colours
from .operating import Operating

TICK = 1.0  # seconds between re-renders of countdowns and "ago" times (no store calls)


class LiveScreen(Operating):
    """Loads with ``fetch`` in a thread worker and shows with ``show`` on the UI thread.

    A change in the store while a load runs sets a flag instead of starting a second
    thread, so a burst of commits costs at most one extra load; a screen that is not
    visible is not reloaded until it comes back.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loading = False
        self._again = False
        self.loads = 0  # finished loads: tests wait on this

    @property
    def engine(self) -> Engine:
        return self.onward.engine

    def now(self) -> float:
        return self.onward.now()

    def colours(self) -> dict[str, str]:
        return theme_colours(self.app)

    # -- hooks for subclasses ----------------------------------------------------------------
    def load_params(self) -> dict[str, Any]:
        """What the next load needs, read on the UI thread."""
        return {}

    def fetch(self, params: dict[str, Any]) -> Any:
        """Read from the engine (runs in a thread)."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Put loaded data on screen (UI thread)."""
        raise NotImplementedError

    def tick(self) -> None:
        """Re-render times without loading (UI thread, every TICK seconds)."""

    # -- machinery ---------------------------------------------------------------------------
    def on_mount(self) -> None:
        # Textual calls this after the subclass's own on_mount (handlers run along the MRO),
        # so subclasses set up their widgets first and must not call super().on_mount().
        self.set_interval(TICK, self.tick)
        self.reload()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.reload())

    def reload(self) -> None:
        if self._loading:
            self._again = True
            return
        self._loading = True
        self._load(self.load_params())

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def _load(self, params: dict[str, Any]) -> Any:
        return self.fetch(params)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.node is not self or worker.group != "load":
            return
        if event.state == WorkerState.SUCCESS:
            self._loading = False
            self.show(worker.result)
            self.loads += 1
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._loading = False  # the app turns the error into a toast
        else:
            return
        if self._again:
            self._again = False
            self.reload()

    def on_store_changed(self, message: StoreChanged) -> None:
        if self.is_current:
            self.reload()

    def on_screen_resume(self) -> None:
        # Hidden screens (another mode, under a pushed screen) get no StoreChanged: catch up.
        self.reload()
