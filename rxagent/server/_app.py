"""``create_app``: the ASGI app serving agents over LangGraph Server's HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .. import __version__
from .._agent import Agent
from .._exceptions import UsageError
from ..checkpoint import BaseCheckpointSaver, InMemorySaver
from ._agui import agui_route
from ._page import page_routes
from ._response import respond_outside
from ._routes import Server, json_response
from ._runs import MemoryRunRegistry, RunRegistry
from ._tasks import AppTasks
from ._threads import MemoryThreadStore, ThreadStore

__all__ = ["create_app"]


def _served(graphs: Mapping[str, Agent], saver: BaseCheckpointSaver) -> dict[str, Agent]:
    return {graph_id: agent.with_checkpointer(saver) for graph_id, agent in graphs.items()}


def create_app(
    graphs: Mapping[str, Agent],
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    retention: float = 600.0,
    redis_url: str | None = None,
    redis_prefix: str = "rxagent:server:",
    lease: float = 10.0,
    max_events: int = 100_000,
    jobs_per_worker: int = 10,
    move_streamed: bool = True,
) -> Starlette:
    """The ASGI app that serves ``graphs`` over LangGraph Server's HTTP API.

    ``langgraph-sdk`` clients, ``RemoteGraph`` and other clients of that API talk to it
    unchanged: assistants (one per graph), threads, and runs streamed, awaited or in the
    background. Runs execute in the process that creates them, on the app's event loop (see
    ``docs/serving.md``). With ``redis_url``, runs, their events and threads are kept in Redis,
    so that any number of processes serving the same graphs on the same Redis serve any
    request: a run made on one is joined, cancelled or awaited through any other.

    Args:
        graphs: the agents to serve, by graph id (the ``assistant_id`` clients name).
        checkpointer: where threads are kept; every agent gets it
            (``Agent.with_checkpointer``). When ``None``: a ``RedisSaver`` on ``redis_url``
            if given, else ``InMemorySaver()``. A ``SqliteSaver`` keeps them across restarts.
        retention: seconds a finished run's record and events are kept, for joins.
        redis_url: a ``redis://`` URL: keep runs, events and threads there (needs the
            ``redis`` package, and an asyncio event loop: uvicorn's).
        redis_prefix: put before the server's keys in Redis.
        lease: with Redis, seconds a run and its thread's lock outlive a process that died.
        max_events: with Redis, a run's stream is trimmed to about this many events, and the
            run waits while its slowest live reader is this many events behind.
        jobs_per_worker: how many background runs (``POST /threads/{t}/runs``) this process
            runs at once (LangGraph's ``N_JOBS_PER_WORKER``); the others wait, ``pending``,
            in the order they were made (on Redis, in the queue, for any worker). Streamed
            and awaited runs start at once and do not count.
        move_streamed: with Redis, a run streamed or awaited by the request that made it is
            continued by another process, from its last checkpoint, should this one die (as
            background runs are); ``False``: it ends ``error`` (``RunLost``) then, for agents
            whose steps must not run twice.

    Returns:
        A Starlette app. It runs its runs in a task group its lifespan opens: an app mounted
        in another one needs that lifespan run (``lifespan=app.router.lifespan_context``).

    Raises:
        UsageError: no graphs, a graph that is not an rxagent ``Agent``, ``redis_url``
            without the ``redis`` package, or ``jobs_per_worker`` below 1.
    """
    if jobs_per_worker < 1:
        raise UsageError(f"jobs_per_worker is at least 1, got {jobs_per_worker!r}")
    if not graphs:
        raise UsageError("create_app needs at least one graph: {'agent': agent}")
    for graph_id, agent in graphs.items():
        if not isinstance(agent, Agent):
            raise UsageError(
                f"graph {graph_id!r} is a {type(agent).__name__}, not an agent from "
                "rxagent.create_agent"
            )
    group: AppTasks | None = None

    def spawn(work: Callable[[], Any]) -> None:
        if group is None:
            raise RuntimeError("the app's lifespan has not started: runs have nowhere to run")
        group.start_soon(work)

    background: Callable[[], Coroutine[Any, Any, None]] | None = None
    stop: Callable[[], None] | None = None
    closers: list[Callable[[], Awaitable[None]]] = []
    threads: ThreadStore
    runs: RunRegistry
    if redis_url is None:
        saver = checkpointer if checkpointer is not None else InMemorySaver()
        served = _served(graphs, saver)
        threads = MemoryThreadStore()
        runs = MemoryRunRegistry(spawn, threads, retention=retention,
                                 jobs_per_worker=jobs_per_worker)
    else:
        from ._redis import RedisRunRegistry, RedisThreadStore, aredis

        client = aredis.Redis.from_url(redis_url)
        closers.append(client.aclose)
        if checkpointer is None:
            from ..checkpoint.redis import RedisSaver

            owned = RedisSaver(redis_url)

            async def close_saver() -> None:
                owned.close()

            closers.append(close_saver)
            checkpointer = owned
        saver = checkpointer
        served = _served(graphs, saver)
        threads = RedisThreadStore(client, prefix=redis_prefix)
        redis_runs = RedisRunRegistry(
            client, spawn, threads, prefix=redis_prefix, retention=retention, lease=lease,
            max_events=max_events, graphs=served, jobs_per_worker=jobs_per_worker,
            move_streamed=move_streamed)
        background, stop = redis_runs.serve, redis_runs.stop
        runs = redis_runs
    server = Server(served, saver, threads, runs, __version__)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal group
        try:
            async with AppTasks() as group:
                if background is not None:
                    group.start_soon(background)
                yield
                if stop is not None:
                    stop()
                group.cancel()
        finally:
            group = None
            for close in closers:
                await close()

    async def not_found(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return json_response({"detail": error.detail}, error.status_code)

    return _App(
        routes=[*server.routes(), agui_route(server), *page_routes()],  # the chat page at /
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found},
    )


class _App(Starlette):
    """Starlette, sending a held stream or wait once its routing and middleware have returned
    (``_response.respond_outside``): an open stream keeps none of their frames."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._layers_let_go():
            await super().__call__(scope, receive, send)
            return
        await respond_outside(super().__call__, scope, receive, send)

    def _layers_let_go(self) -> bool:
        """Whether nothing between this app and its routes acts on a response once it has
        started: a user's middleware may (CORS adds headers to it, GZip compresses its body),
        and a handler for errors (500 or ``Exception``) is called even for an error while
        streaming. Then a stream is sent from inside them, as Starlette does."""
        handlers = self.exception_handlers
        return not self.user_middleware and 500 not in handlers and Exception not in handlers
