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

__all__ = ["ExecutionInfo", "Runtime", "ServerInfo", "get_config", "get_runtime", "get_store"]

ContextT = TypeVar("ContextT")


@dataclasses.dataclass(frozen=True)
class ExecutionInfo:
    """Which execution the code runs in: its thread, run, step and task.

    Attributes:
        checkpoint_ns: the namespace of the run's checkpoints (``""`` at the top; a nested
            agent's is under its tool call).
        task_id: the id of the step's task (``"<node>:<uuid>"``'s uuid).
        thread_id: the run's ``thread_id``, or ``None`` off a thread.
        run_id: the config's ``run_id``, or ``None``.
        checkpoint_id: the id of the checkpoint the step started from (``""`` off a thread).
        node_attempt: always 1 (rxagent's agents do not retry a node).
    """

    checkpoint_ns: str
    task_id: str
    thread_id: str | None = None
    run_id: str | None = None
    checkpoint_id: str = ""
    node_attempt: int = 1


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """On a server (``rxagent serve``), what the run was started as.

    Attributes:
        assistant_id: the assistant the client asked for.
        graph_id: the graph (agent) it runs.
        user: the authenticated user (``None``: the server has no authentication).
    """

    assistant_id: str
    graph_id: str
    user: Any = None


@dataclasses.dataclass(frozen=True)
class Runtime(Generic[ContextT]):
    """What code running in an agent's run reaches of it.

    Attributes:
        context: what the run was given as ``context=`` (``create_agent(context_schema=...)``).
        store: the agent's long-term memory store (``create_agent(store=...)``), or ``None``.
        stream_writer: writes to the run's ``custom`` stream.
        previous: the return value of the previous run on the thread (``None``: rxagent's
            agents do not keep one).
        execution_info: the thread, run and task the code runs in.
        server_info: on a server, the assistant and graph the run was started as; ``None``
            elsewhere.
    """

    context: ContextT = None  # type: ignore[assignment]
    store: Any = None
    stream_writer: StreamWriter | None = None
    previous: Any = None
    execution_info: ExecutionInfo | None = None
    server_info: ServerInfo | None = None


def runtime_of(run: RunContext) -> Runtime[Any]:
    """The :class:`Runtime` of ``run``."""
    return Runtime(context=run.context, store=run.store, stream_writer=run.writer(),
                   execution_info=execution_of(run), server_info=server_of(run))


def execution_of(run: RunContext) -> ExecutionInfo:
    """Where ``run`` is now, as an :class:`ExecutionInfo`."""
    configurable = run.config.get("configurable") or {}
    run_id = run.config.get("run_id") or configurable.get("run_id")
    return ExecutionInfo(
        checkpoint_ns=run.checkpoint_ns, task_id=run.task_ns.partition(":")[2],
        thread_id=configurable.get("thread_id"),
        run_id=None if run_id is None else str(run_id),
        checkpoint_id=run.checkpoint_id,
    )


def server_of(run: RunContext) -> ServerInfo | None:
    """The server's say about ``run``: its config's ``assistant_id`` and ``graph_id``."""
    configurable = run.config.get("configurable") or {}
    assistant, graph = configurable.get("assistant_id"), configurable.get("graph_id")
    if assistant is None or graph is None:
        return None
    return ServerInfo(assistant_id=str(assistant), graph_id=str(graph),
                      user=configurable.get("langgraph_auth_user"))


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
