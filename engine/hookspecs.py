"""Hook specifications for Onward's activity-provider plugins (pluggy project ``"onward"``).

A provider is a module (a ``*.py`` file in a plugin directory, or an object named by an
entry point in the group ``onward``) that implements some of the hooks below, each
marked with :data:`hookimpl`::

    from onward import activity, hookimpl

    @activity.defn(name="bank.deposit", max_concurrent=4)
    def deposit(account: str, cents: int) -> dict: ...

    @hookimpl
    def onward_activities():
        return [deposit]

The engine calls every hook of every provider separately and guards each call: a hook
that raises, hangs past the import timeout or returns something unexpected marks that
one provider as failed (the previous version, if any, keeps serving) and never stops
the engine or other providers.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "onward"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = [
    "PROJECT", "hookimpl", "hookspec", "onward_activities", "onward_event",
    "onward_provider_info", "onward_workflows",
]


@hookspec
def onward_activities() -> list[Any] | None:
    """Return the activities this provider offers.

    :return: a list (or tuple) of functions decorated with ``@activity.defn``, sync or
        async. ``None`` or an empty list means the provider offers none.

    Called once each time the provider is loaded or reloaded, right after its module
    is imported, and before the new version replaces the old one. Anything that is
    not an ``@activity.defn`` function fails the load of this provider with a message
    naming the offending item. An activity name already offered by another provider
    is refused (the provider that registered it first keeps it).

    The engine records which provider and version ran every attempt, so a reload never
    changes the code of an attempt already running.
    """


@hookspec
def onward_workflows() -> list[Any] | None:
    """Return the workflows this provider offers.

    :return: a list (or tuple) of ``async def`` functions decorated with
        ``@workflow.defn``; ``None`` or an empty list means none.

    Called at the same moments as :func:`onward_activities` and checked the same way:
    invalid items and names taken by another provider fail this provider's load.
    Workflows are usually kept in ``--flows`` modules; use this hook for workflows that
    ship together with the activities they call.
    """


@hookspec
def onward_event(event: dict[str, Any]) -> None:
    """Observe an event the engine has just recorded.

    :param event: a dict with the keys ``run_id``, ``workflow_id``, ``workflow``,
        ``seq``, ``type`` (for example ``"ActivityCompleted"``), ``time`` (when it was
        recorded) and ``attrs`` (the event's attributes). Treat it as read-only.

    Called after the event's transaction has committed, once per event and per observing
    provider, in commit order, on a thread kept for observers: the engine does not wait
    for it, so a slow observer stalls no worker. Events wait in a bounded queue (10,000);
    while it is full, new events are dropped (counted, and a warning logged). The return
    value is ignored; an exception is logged and contained (other observers still run,
    the workflow is not affected). Observers cannot change what happens.
    """


@hookspec
def onward_provider_info() -> dict[str, Any] | None:
    """Describe this provider (optional).

    :return: a dict with any of these keys:

        - ``"name"`` (str): the provider's name; defaults to the file stem or the entry
          point's name.
        - ``"version"`` (str): a declared version. The engine's version string for the
          provider becomes ``"<version>+<content hash>"`` (just the hash without it).
        - ``"limits"`` (dict): ``{activity_name: {"max_concurrent": N,
          "max_per_second": R}}`` for activities this provider offers; these take
          precedence over the limits given to ``@activity.defn``.

    Called once per load or reload, after :func:`onward_activities`. A malformed dict,
    or limits for an activity this provider does not offer, fails the load.
    """
