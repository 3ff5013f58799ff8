"""A tiny provider for the console tests: one activity, a declared version."""

from __future__ import annotations

from onward import activity, hookimpl

VERSION = "1.0"


@activity.defn(name="greeter.hello")
def hello(name: str) -> str:
    """Greet ``name``."""
    return f"hello {name}"


@hookimpl
def onward_provider_info() -> dict[str, str]:
    return {"name": "greeter", "version": VERSION}


@hookimpl
def onward_activities() -> list[object]:
    return [hello]
