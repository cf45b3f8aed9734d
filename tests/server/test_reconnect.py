"""Through a proxy that cuts every connection mid-stream, the SDK's own reconnects (to the
stream's ``Location`` with ``Last-Event-ID``) end with every event exactly once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langgraph_sdk import get_client

from rxagent.checkpoint import InMemorySaver
from rxagent.server._sse import jsonable

from .agents import token_agent
from .test_streams import normalized, without_run_ids

SAY = {"messages": [{"role": "user", "content": "count"}]}
MODES = ["values", "updates", "messages-tuple"]

class CuttingProxy:
    """A TCP proxy on loopback that closes each connection once ``limit`` bytes have gone from
    the server to the client, wherever that falls (mid-frame, mid-chunk)."""

    def __init__(self, upstream_port: int, limit: int) -> None:
        self.upstream_port = upstream_port
        self.limit = limit
        self.connections = 0
        self.cuts = 0
        self.port = 0
        self.handlers: set[asyncio.Task[None]] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    budget: int | None) -> None:
        sent = 0
        try:
            while data := await reader.read(4096):
                if budget is not None and sent + len(data) >= budget:
                    writer.write(data[: budget - sent])
                    await writer.drain()
                    self.cuts += 1
                    return
                sent += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass

    async def _serve(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        writers = [client_writer]
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port)
            writers.append(up_writer)
            down = asyncio.ensure_future(self._pipe(up_reader, client_writer, self.limit))
            up = asyncio.ensure_future(self._pipe(client_reader, up_writer, None))
            try:
                await asyncio.wait([down, up], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (down, up):
                    task.cancel()
                await asyncio.gather(down, up, return_exceptions=True)
        finally:
            for writer in writers:
                writer.close()
            for writer in writers:
                with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                    await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CuttingProxy]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            async with server:
                yield self
        finally:
            # Connections the client keeps alive in its pool are closed here, not by the loop.
            for handler in self.handlers:
                handler.cancel()
            await asyncio.gather(*self.handlers, return_exceptions=True)


def local_events() -> list[tuple[str, Any]]:
    """The same agent's stream, run locally, named as the server names its events."""
    agent = token_agent(40).with_checkpointer(InMemorySaver())
    events = [
        (part["type"], without_run_ids(part["type"], jsonable(part["data"])))
        for part in agent.stream(SAY, {"configurable": {"thread_id": "local"}},
                                 stream_mode=["values", "updates", "messages"], version="v2")
    ]
    return json.loads(json.dumps(events))  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the SDK's async client is asyncio only


@pytest.mark.anyio
async def test_the_sdk_reconnects_through_cuts_and_gets_every_event_once(
    server: Any, url: str
) -> None:
    expected = local_events()
    # About 37 KB of frames in all (a token's frame is ~830 bytes): a cut every 12,000 bytes
    # lands mid-frame on the first connection and on reconnects, and each connection still
    # moves the stream on (the SDK waits about a second before each reconnect).
    proxy = CuttingProxy(server.port, 12_000)
    async with (
        proxy.running(),
        get_client(url=f"http://127.0.0.1:{proxy.port}", timeout=30) as client,
    ):
        thread = await client.threads.create()
        parts = [part async for part in client.runs.stream(
            thread["thread_id"], "tokens", input=SAY, stream_mode=MODES,
            stream_resumable=True)]
    assert proxy.cuts >= 2, proxy.cuts  # the stream was cut, more than once
    assert [part.id for part in parts] == [str(i) for i in range(1, len(parts) + 1)]
    assert parts[0].event == "metadata"
    events = []
    for part in parts[1:]:
        events.append((part.event, without_run_ids(part.event, part.data)))
    assert normalized(events) == normalized(expected)
