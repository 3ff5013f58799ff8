"""Hello: the smallest Onward app, a workflow and its activity in one file.

An *activity* does the work that touches the world (here it only formats a string); a
*workflow* decides what happens in which order. The worker records the activity's result
in the run's history, so after a crash the workflow is rebuilt from history and the
activity is not run again.

Try it::

    onward worker --flows sample_flows/hello.py &
    onward start greet --id hello-1 --input '"Ada"'
    onward result hello-1 --wait 10        # "Hello, Ada!"
"""

from __future__ import annotations

from onward import activity, workflow


@activity.defn(name="hello.compose_greeting")
def compose_greeting(name: str) -> str:
    """Say hello to ``name``."""
    return f"Hello, {name}!"


@workflow.defn(name="greet")
async def greet(name: str = "world") -> str:
    """Greet ``name`` through an activity."""
    greeting: str = await workflow.execute_activity(compose_greeting, name)
    return greeting
