"""``create_app``: the ASGI app serving agents over LangGraph Server's HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from .._agent import Agent
from .._exceptions import UsageError
from ..checkpoint import BaseCheckpointSaver, InMemorySaver
from ._routes import Server, json_response
from ._runs import MemoryRunRegistry
from ._threads import MemoryThreadStore

__all__ = ["create_app"]


def create_app(
    graphs: Mapping[str, Agent],
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    retention: float = 600.0,
) -> Starlette:
    """The ASGI app that serves ``graphs`` over LangGraph Server's HTTP API.

    ``langgraph-sdk`` clients, ``RemoteGraph`` and other clients of that API talk to it
    unchanged: assistants (one per graph), threads, and runs streamed, awaited or in the
    background. Runs execute in this process, on the app's event loop (see
    ``docs/serving.md``).

    Args:
        graphs: the agents to serve, by graph id (the ``assistant_id`` clients name).
        checkpointer: where threads are kept; every agent gets it
            (``Agent.with_checkpointer``). ``InMemorySaver()`` when ``None``; a ``SqliteSaver``
            keeps them across restarts.
        retention: seconds a finished run's record and events are kept, for joins.

    Returns:
        A Starlette app. It runs its runs in a task group its lifespan opens: an app mounted
        in another one needs that lifespan run (``lifespan=app.router.lifespan_context``).

    Raises:
        UsageError: no graphs, or a graph that is not an rxagent ``Agent``.
    """
    if not graphs:
        raise UsageError("create_app needs at least one graph: {'agent': agent}")
    for graph_id, agent in graphs.items():
        if not isinstance(agent, Agent):
            raise UsageError(
                f"graph {graph_id!r} is a {type(agent).__name__}, not an agent from "
                "rxagent.create_agent"
            )
    saver = checkpointer if checkpointer is not None else InMemorySaver()
    served = {graph_id: agent.with_checkpointer(saver) for graph_id, agent in graphs.items()}
    group: anyio.abc.TaskGroup | None = None

    def spawn(work: Callable[[], Any]) -> None:
        if group is None:
            raise RuntimeError("the app's lifespan has not started: runs have nowhere to run")
        group.start_soon(work)

    threads = MemoryThreadStore()
    runs = MemoryRunRegistry(spawn, threads, retention=retention)
    server = Server(served, saver, threads, runs, __version__)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal group
        async with anyio.create_task_group() as group:
            yield
            group.cancel_scope.cancel()
        group = None

    async def not_found(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return json_response({"detail": error.detail}, error.status_code)

    return Starlette(
        routes=server.routes(),
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found},
    )
