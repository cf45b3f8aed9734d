"""TCP proxies on loopback: one that cuts connections mid-stream, for the tests of reconnects
(the SDK's, in ``test_reconnect.py``, and the chat page's, in ``tests/browser/``), and one that
fails over between processes, for the tests of runs that move (``test_moving_runs.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator


class CuttingProxy:
    """A TCP proxy on loopback that closes each connection once ``limit`` bytes have gone from
    the server to the client, wherever that falls (mid-frame, mid-chunk).

    With ``streams_only``, the count starts where the server starts an event stream (its
    ``content-type: text/event-stream`` header), so that a browser's other requests on a
    kept-alive connection (the page, its scripts, JSON) pass whole and every stream is cut. The
    header is looked for, not the bare media type: the page's own script names that in its
    requests' ``Accept``, and counting from there cut the next response on its connection.
    """

    STREAM_HEADER = b"\r\ncontent-type: text/event-stream"

    def __init__(self, upstream_port: int, limit: int, *, streams_only: bool = False) -> None:
        self.upstream_port = upstream_port
        self.limit = limit
        self.streams_only = streams_only
        self.connections = 0
        self.cuts = 0
        self.port = 0
        self.handlers: set[asyncio.Task[None]] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    budget: int | None) -> None:
        sent = 0
        counting = not self.streams_only
        tail = b""  # the end of the bytes before, lowered: a header may span two reads
        try:
            while data := await reader.read(4096):
                if budget is not None and not counting:
                    seen = tail + data.lower()
                    start = seen.find(self.STREAM_HEADER)
                    if start >= 0:
                        counting = True
                        sent = len(tail) - start  # count from the stream's headers on
                    tail = seen[-len(self.STREAM_HEADER):]
                if budget is not None and counting and sent + len(data) >= budget:
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


class FailoverProxy:
    """A TCP proxy on loopback, in a thread of its own, that sends each connection to the first
    of ``upstream_ports`` that accepts it: a load balancer in front of processes of which some
    may die (the tests of runs that move between processes on Redis).

    ``with FailoverProxy([a, b]) as proxy:`` serves on ``proxy.port`` until the block ends.
    """

    def __init__(self, upstream_ports: list[int]) -> None:
        self.upstream_ports = upstream_ports
        self.port = 0
        self.used: list[int] = []  # the upstream port of each connection, in order
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        for port in self.upstream_ports:
            with contextlib.suppress(ConnectionError):
                connection = await asyncio.open_connection("127.0.0.1", port)
                self.used.append(port)
                return connection
        raise ConnectionRefusedError("no upstream accepts connections")

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    async def _serve(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        self._handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        writers = [client_writer]
        try:
            up_reader, up_writer = await self._connect()
            writers.append(up_writer)
            tasks = [asyncio.ensure_future(self._pipe(up_reader, client_writer)),
                     asyncio.ensure_future(self._pipe(client_reader, up_writer))]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        except ConnectionError:
            pass  # the client's connection is closed: to it, the server is down
        finally:
            for writer in writers:
                writer.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        async with server:
            await self._stop.wait()
            for handler in self._handlers:  # connections the client keeps alive in its pool
                handler.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    def __enter__(self) -> FailoverProxy:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
