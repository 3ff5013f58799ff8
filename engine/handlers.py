"""Class workflows and their handlers: ``@workflow.run``, ``@workflow.signal``,
``@workflow.query``, ``@workflow.update`` (with ``.validator``), in Temporal's shape.

A class decorated with ``@workflow.defn`` becomes one :class:`ClassWorkflow`: the run
method is its body, and the decorated methods are handlers bound to the object each run
creates. The engine drives it through an ordinary coroutine function (:meth:`ClassWorkflow.main`)
so class and function workflows run, replay and cache the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from .errors import OnwardError

F = TypeVar("F", bound=Callable[..., Any])

RUN = "__onward_run__"
SIGNAL = "__onward_signal__"
QUERY = "__onward_query__"


@dataclass
class Handlers:
    """One run's handlers by name: what signals, queries and updates reach."""

    signals: dict[str, Callable[..., Any]] = field(default_factory=dict)
    queries: dict[str, Callable[..., Any]] = field(default_factory=dict)
    updates: dict[str, tuple[Callable[..., Any], Callable[..., Any] | None]] = \
        field(default_factory=dict)


def run(fn: F) -> F:
    """Mark the ``async def`` method that is a class workflow's body."""
    if not inspect.iscoroutinefunction(fn):
        raise OnwardError(f"@workflow.run {fn.__qualname__} must be an async def")
    setattr(fn, RUN, True)
    return fn


def _named(attribute: str, what: str, fn: F | None, name: str | None
           ) -> F | Callable[[F], F]:
    def mark(func: F) -> F:
        if not callable(func):
            raise OnwardError(f"@workflow.{what} decorates a method, not {func!r:.60}")
        setattr(func, attribute, name or func.__name__)
        return func
    return mark(fn) if fn is not None else mark


@overload
def signal(fn: F) -> F: ...
@overload
def signal(*, name: str | None = None) -> Callable[[F], F]: ...
def signal(fn: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a method as the handler of signal ``name`` (default: the method's name). Its
    one argument is the signal's payload; it may be ``async`` and await workflow calls."""
    return _named(SIGNAL, "signal", fn, name)


@overload
def query(fn: F) -> F: ...
@overload
def query(*, name: str | None = None) -> Callable[[F], F]: ...
def query(fn: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a method as the handler of query ``name``: a plain ``def`` that only reads."""
    def mark(func: F) -> F:
        if inspect.iscoroutinefunction(func):
            raise OnwardError(f"@workflow.query {func.__qualname__} must be a plain def: "
                              "a query reads state and cannot wait")
        setattr(func, QUERY, name or func.__name__)
        return func
    return mark(fn) if fn is not None else mark


class UpdateMethod(Generic[F]):
    """An ``@workflow.update`` method: callable as the method itself, with ``.validator``
    to attach a check that may reject a request before anything is recorded."""

    def __init__(self, fn: F, name: str) -> None:
        self.fn = fn
        self.name = name
        self.validator_fn: Callable[..., Any] | None = None
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__

    def validator(self, check: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``check(self, *args)``: raise to reject the update (nothing is
        recorded and the caller gets ``UpdateRejected``); it must not change state."""
        if inspect.iscoroutinefunction(check):
            raise OnwardError(f"update validator {check.__qualname__} must be a plain def")
        self.validator_fn = check
        return check

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else self.fn.__get__(obj, owner)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


@overload
def update(fn: F) -> UpdateMethod[F]: ...
@overload
def update(*, name: str | None = None) -> Callable[[F], UpdateMethod[F]]: ...
def update(fn: F | None = None, *, name: str | None = None
           ) -> UpdateMethod[F] | Callable[[F], UpdateMethod[F]]:
    """Mark a method as the handler of update ``name``: it may change state and await
    workflow calls; its return value goes back to the caller once recorded."""
    def mark(func: F) -> UpdateMethod[F]:
        return UpdateMethod(func, name or func.__name__)
    return mark(fn) if fn is not None else mark


def function_update(fn: Callable[..., Any], name: str,
                    validator: Callable[..., Any] | None) -> UpdateMethod[Any]:
    """An update handler of a function workflow (``workflow.set_update_handler``)."""
    method: UpdateMethod[Any] = UpdateMethod(fn, name)
    method.validator_fn = validator
    return method


class ClassWorkflow:
    """A workflow class: where its run method and handlers are, found once at decoration."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.run_name = ""
        self.signals: dict[str, str] = {}
        self.queries: dict[str, str] = {}
        self.updates: dict[str, UpdateMethod[Any]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                self._collect(attr, value)
        if not self.run_name:
            raise OnwardError(f"workflow class {cls.__qualname__} has no @workflow.run "
                              "method")

    def _collect(self, attr: str, value: Any) -> None:
        if isinstance(value, UpdateMethod):
            self.updates[value.name] = value
        elif getattr(value, RUN, False):
            self.run_name = attr
        elif getattr(value, SIGNAL, None):
            self.signals[getattr(value, SIGNAL)] = attr
        elif getattr(value, QUERY, None):
            self.queries[getattr(value, QUERY)] = attr

    def bind(self, obj: Any, handlers: Handlers) -> None:
        """Add ``obj``'s handlers (bound methods) to a run's ``handlers``."""
        for name, attr in self.signals.items():
            handlers.signals[name] = getattr(obj, attr)
        for name, attr in self.queries.items():
            handlers.queries[name] = getattr(obj, attr)
        for name, method in self.updates.items():
            bound = method.fn.__get__(obj, self.cls)
            check = method.validator_fn.__get__(obj, self.cls) if method.validator_fn \
                else None
            handlers.updates[name] = (bound, check)

    def make_main(self, bind: Callable[[Any], None]) -> Callable[..., Any]:
        """The coroutine function the engine runs: make the object (in workflow context,
        so ``__init__`` may use workflow calls), bind its handlers, run the body."""
        run_name, cls = self.run_name, self.cls

        async def main(*args: Any) -> Any:
            obj = cls()
            bind(obj)
            return await getattr(obj, run_name)(*args)

        main.__qualname__ = cls.__qualname__
        main.__module__ = cls.__module__
        main.__wrapped__ = getattr(cls, run_name)  # type: ignore[attr-defined]
        return main
