"""The run as middleware and graph code reach it (``langgraph.runtime``' home)::

    from rxagent.runtime import Runtime, get_runtime

A middleware hook is called with ``(state, runtime)``; ``runtime.context`` is what the run was
given as ``context=``, ``runtime.store`` the agent's store, ``runtime.stream_writer`` the run's
``custom`` stream.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, TypeVar

from ._context import RunContext, current_run
from ._exceptions import UsageError
from ._writer import StreamWriter

__all__ = ["Runtime", "get_config", "get_runtime", "get_store"]

ContextT = TypeVar("ContextT")


@dataclasses.dataclass(frozen=True)
class Runtime(Generic[ContextT]):
    """What code running in an agent's run reaches of it.

    Attributes:
        context: what the run was given as ``context=`` (``create_agent(context_schema=...)``).
        store: the agent's long-term memory store (``create_agent(store=...)``), or ``None``.
        stream_writer: writes to the run's ``custom`` stream.
        previous: the return value of the previous run on the thread (``None``: rxagent's
            agents do not keep one).
    """

    context: ContextT = None  # type: ignore[assignment]
    store: Any = None
    stream_writer: StreamWriter | None = None
    previous: Any = None


def runtime_of(run: RunContext) -> Runtime[Any]:
    """The :class:`Runtime` of ``run``."""
    return Runtime(context=run.context, store=run.store, stream_writer=run.writer())


def _current(what: str) -> RunContext:
    run = current_run.get()
    if run is None:
        raise UsageError(f"{what}() is called inside an agent's run (a tool, a middleware "
                         "hook); there is no run here")
    return run


def get_runtime() -> Runtime[Any]:
    """The runtime of the run this code executes in.

    Raises:
        UsageError: called outside an agent's run.
    """
    return runtime_of(_current("get_runtime"))


def get_store() -> Any:
    """The store of the agent whose run this code executes in (``create_agent(store=...)``),
    or ``None`` (``langgraph.config``'s).

    Raises:
        UsageError: called outside an agent's run.
    """
    return _current("get_store").store


def get_config() -> dict[str, Any]:
    """The config of the run this code executes in (``langgraph.config``'s).

    Raises:
        UsageError: called outside an agent's run.
    """
    return dict(_current("get_config").config)
