"""``rxagent serve``: find the agents a command line names, and serve them with uvicorn.

A target is ``path/to/file.py:attr`` or ``package.module:attr``; its graph id is the
attribute's name, or ``name=...`` chooses it. ``--config langgraph.json`` reads LangGraph's
``{"graphs": {"id": "./file.py:attr"}}``, paths relative to the file.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import json
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._agent import Agent
from .._exceptions import UsageError
from ._response import CLIENT_LEFT

__all__ = ["GC_YOUNG_THRESHOLD", "http_protocol", "lean_event", "load_config", "load_target",
           "serve", "tune_gc", "work"]

# Allocations between two collections of the youngest generation (Python's default is 700).
# With a thousand streams open, the cyclic collector was most of the server's CPU: at 700,
# every few events a collection promoted the objects of the runs in flight, and those
# survivors set off a full collection (every object in the process, the libraries' included)
# every second or so: 4.9 s of 6.4 s of server CPU for 1,000 concurrent 100-token streams
# (docs/benchmarks.md, serving).
GC_YOUNG_THRESHOLD = 50_000


def _module_from_file(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"no file {str(path)!r}")
    # The file's folder goes on the path, so that it can import its neighbours.
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"_rxagent_serve_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_target(target: str, *, base: Path | None = None) -> tuple[str, Agent]:
    """The graph id and the agent that ``target`` names.

    Args:
        target: ``[name=]path/to/file.py:attr`` or ``[name=]package.module:attr``.
        base: the folder relative file paths start from (the config file's).

    Raises:
        UsageError: the target is malformed, cannot be imported, or is not an agent.
    """
    name, equals, reference = target.partition("=")
    if not equals or not name or any(c in name for c in "/\\:."):
        name, reference = "", target
    where, colon, attr = reference.rpartition(":")
    if not colon or not where or not attr.isidentifier():
        raise UsageError(
            f"a target is path/to/file.py:attr or package.module:attr (name=... to choose "
            f"its graph id), got {target!r}"
        )
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where)
        module = _module_from_file(path if base is None or path.is_absolute() else base / path)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as error:
            raise UsageError(f"cannot import {where!r}: {error}") from None
    agent = getattr(module, attr, None)
    if not isinstance(agent, Agent):
        raise UsageError(
            f"{reference} is {'missing' if agent is None else type(agent).__name__}, not an "
            "agent from rxagent.create_agent"
        )
    return name or attr, agent


def load_config(path: str | Path) -> dict[str, Agent]:
    """The graphs of a ``langgraph.json``: ``{"graphs": {"id": "./file.py:attr"}}``."""
    config_path = Path(path)
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {str(config_path)!r}: {error}") from None
    graphs = config.get("graphs") if isinstance(config, dict) else None
    if not isinstance(graphs, dict) or not graphs:
        raise UsageError(f"{str(config_path)!r} has no \"graphs\": {{\"id\": \"./file.py:attr\"}}")
    found = {}
    for graph_id, target in graphs.items():
        if not isinstance(target, str):
            raise UsageError(f"graph {graph_id!r} is a 'file.py:attr' string, got {target!r}")
        found[graph_id] = load_target(target, base=config_path.parent)[1]
    return found


def serve(
    graphs: dict[str, Agent],
    *,
    host: str,
    port: int,
    sqlite: str | None = None,
    redis_url: str | None = None,
    retention: float = 600.0,
    lease: float = 10.0,
    jobs_per_worker: int = 10,
    move_streamed: bool = True,
    timeout_keep_alive: int = 5,
) -> None:
    """Serve ``graphs`` with uvicorn until interrupted (on Redis with ``redis_url``)."""
    import uvicorn

    from ..checkpoint.sqlite import SqliteSaver
    from ._app import create_app

    app = create_app(graphs, checkpointer=SqliteSaver(sqlite) if sqlite else None,
                     redis_url=redis_url, retention=retention, lease=lease,
                     jobs_per_worker=jobs_per_worker, move_streamed=move_streamed)
    tune_gc()
    # asyncio, not uvloop: the Redis client is asyncio's, and one loop behaves the same
    # everywhere.
    uvicorn.run(app, host=host, port=port, log_level="info", ws="none", loop="asyncio",
                http=http_protocol(), timeout_keep_alive=timeout_keep_alive)


# The bytes a connection's asyncio transport may hold before uvicorn stops sending to it. Its
# default, 64 KiB, is what a stream whose client does not read keeps here once the socket's
# own buffers are full, on top of the run's log. uvicorn waits only before a write, so a paused
# transport holds this plus the batch written last (at most the log's max_lag_bytes): the
# socket's own buffers are the ones that matter, and a fast client never fills them. 16 KiB
# cost a held stream 13 KiB more RSS than 4 KiB, and 4 KiB 1.7 KiB more than 2 KiB once every
# buffer is full (bench/_serve_memory.py --rcvbuf 4096 --sndbuf 4096), and no CPU (neither
# for one fast stream nor for 1,000 streams at once).
WRITE_BUFFER_HIGH = 2048


def tune_gc() -> None:
    """Set the cyclic collector up for a server process, once its code is loaded: what is
    alive now (modules, the agents, the app) is moved out of the collector's sight
    (``gc.freeze``), and the youngest generation is collected every
    :data:`GC_YOUNG_THRESHOLD` allocations instead of 700, so that the objects of the runs in
    flight are not promoted, and full collections are rare and do not walk the libraries'
    objects. Only the processes ``rxagent serve`` and ``rxagent worker`` start do this; an app
    from ``create_app`` mounted elsewhere leaves its process's collector alone."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools or h11), with a transport write buffer of at most
    :data:`WRITE_BUFFER_HIGH` bytes, its two events per connection kept small
    (:func:`lean_event`), and a request's scope offering to tell a response when its client
    leaves (``_response.CLIENT_LEFT``), so that no task of a held stream waits for it."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class Protocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
        _client_left: Callable[[], None] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if isinstance(transport, asyncio.WriteTransport):
                transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
            super().connection_made(transport)
            flow = getattr(self, "flow", None)
            lean_event(getattr(flow, "_is_writable_event", None))

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # A request's cycle, with its event, is made while its head is parsed here, and
            # its task has not started yet.
            cycle = getattr(self, "cycle", None)
            if cycle is not None:
                lean_event(getattr(cycle, "message_event", None))
                cycle.scope[CLIENT_LEFT] = self

        def watch_client(self, client_left: Callable[[], None] | None) -> bool:
            """See ``_response.ClientLeftNotice``: the call comes from connection_lost."""
            if client_left is None:
                self._client_left = None
                return True
            cycle = getattr(self, "cycle", None)
            if cycle is None or cycle.disconnected:
                return False
            self._client_left = client_left
            return True

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)  # the request's cycle is disconnected
            client_left, self._client_left = self._client_left, None
            if client_left is not None:
                client_left()

    return Protocol


def lean_event(event: object) -> None:
    """Give an ``asyncio.Event`` a list of waiters instead of its deque, if it still has one.

    uvicorn keeps two events per connection for its whole life (the flow control's and the
    request cycle's), and an idle deque is 0.75 KiB, a list 56 bytes: 1.4 KiB of every open
    stream. The event uses its waiters only to append, remove and iterate (CPython 3.11 to
    3.13; ``tests/server/test_held_response.py`` waits on, sets and cancels a lean one), and
    rarely has more than one.
    """
    if isinstance(event, asyncio.Event) and type(getattr(event, "_waiters", None)) is deque:
        event._waiters = list(event._waiters)  # type: ignore[assignment]


def work(
    graphs: dict[str, Agent],
    *,
    redis_url: str,
    retention: float = 600.0,
    lease: float = 10.0,
    prefix: str = "rxagent:server:",
    jobs_per_worker: int = 10,
) -> None:
    """Run background runs from the queue on Redis until SIGTERM or SIGINT
    (``rxagent worker``); the runs it is running then are left to other workers."""
    tune_gc()
    asyncio.run(_work(graphs, redis_url, retention, lease, prefix, jobs_per_worker))


async def _work(
    graphs: dict[str, Agent], redis_url: str, retention: float, lease: float, prefix: str,
    jobs_per_worker: int,
) -> None:
    import signal

    import anyio

    from ..checkpoint.redis import RedisSaver
    from ._redis import RedisRunRegistry, RedisThreadStore, aredis

    client = aredis.Redis.from_url(redis_url)
    saver = RedisSaver(redis_url)
    try:
        async with anyio.create_task_group() as group:

            def spawn(work: Callable[[], Any]) -> None:
                group.start_soon(work)

            threads = RedisThreadStore(client, prefix=prefix)
            runs = RedisRunRegistry(
                client, spawn, threads, prefix=prefix, retention=retention,
                lease=lease, graphs={key: agent.with_checkpointer(saver)
                                     for key, agent in graphs.items()},
                jobs_per_worker=jobs_per_worker)
            group.start_soon(runs.serve)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
            runs.stop()  # its runs are handed over, not ended
            group.cancel_scope.cancel()
    finally:
        await client.aclose()
        saver.close()
