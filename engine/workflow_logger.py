"""``workflow.logger``: a logger for workflow code that knows its run and keeps quiet
while the run's code is being replayed (so a crash and replay log each line once)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

from .loop import DeterministicLoop


def _runtime() -> Any:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.owner if isinstance(loop, DeterministicLoop) else None


class WorkflowLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Records under ``onward.workflow`` with workflow_id, run_id and workflow as fields;
    nothing while replaying history the run has already been through."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        runtime = _runtime()
        if runtime is not None and bool(runtime.is_replaying):
            return False
        return bool(self.logger.isEnabledFor(level))

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]
                ) -> tuple[Any, MutableMapping[str, Any]]:
        runtime = _runtime()
        if runtime is not None:
            info = runtime.info
            extra = {"workflow_id": info.workflow_id, "run_id": info.run_id,
                     "workflow": info.workflow_type}
            kwargs["extra"] = {**extra, **(kwargs.get("extra") or {})}
        return msg, kwargs


logger = WorkflowLogger(logging.getLogger("onward.workflow"), {})
"""``workflow.logger.info("...")`` inside workflow code."""
