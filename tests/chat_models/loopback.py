"""A small HTTP/1.1 server on 127.0.0.1 for wire tests, on anyio (so under asyncio and trio).

Each request gets the next scripted :class:`Reply`: a status, headers and a body made of parts,
sent chunked or close-delimited and cut into pieces of ``piece`` bytes, each piece flushed on
its own. Parts may also be :data:`STALL` (send nothing more and wait for the client to hang
up), :data:`HANGUP` (drop the connection mid-body) or a :class:`Pause`; a body may be any
iterable, a generator too (for bodies too large to build). The server records the requests it
read, every connection the client closed, the body bytes it managed to send and the bodies it
sent to their end, so tests can check that disposing a subscription and a held demand reach the
socket.

Use it inside the test body (it needs the test's task group)::

    async with serve(Reply(body=b"data: ...\\n\\n")) as server:
        model = ChatOpenAI("gpt-4o-mini", base_url=server.url + "/v1", api_key="sk-test")
        ...
    assert server.requests[0].json["model"] == "gpt-4o-mini"
"""

from __future__ import annotations

import json
import socket
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


STALL = _Marker("STALL")
"""Send nothing more; wait until the client closes the connection."""

HANGUP = _Marker("HANGUP")
"""Close the connection at once, in the middle of the body."""


@dataclass(frozen=True)
class Pause:
    """Wait this long before the next part (tiny values only: tests must stay fast)."""

    seconds: float


Part = bytes | str | _Marker | Pause


@dataclass
class Reply:
    """One scripted response.

    Attributes:
        body: the parts of the body, in order (str parts are UTF-8 encoded).
        status: the HTTP status.
        headers: extra response headers.
        chunked: chunked transfer encoding; ``False`` sends a close-delimited body.
        piece: cut each bytes part into pieces of this many bytes, each flushed on its own;
            ``None`` sends each part whole.
        stall_before_headers: read the request, then send nothing at all (like STALL).
        content_type: of the body.
    """

    body: Iterable[Any] = ()  # Part items
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = True
    piece: int | None = None
    stall_before_headers: bool = False
    content_type: str = "text/event-stream"


@dataclass
class Request:
    """A request the server read."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 529: "Overloaded"}


class LoopbackServer:
    """The running server: its URL, the requests it read, the disconnects it saw."""

    def __init__(self, replies: Sequence[Reply], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[Request] = []
        self.connections = 0
        self.disconnects = 0  # connections the client closed (or reset)
        self.bytes_sent = 0  # body bytes handed to the socket (framing excluded)
        self.bodies_completed = 0  # replies whose body was sent to its end
        self._changed = anyio.Event()

    def add(self, *replies: Reply) -> None:
        """Script more replies."""
        self.replies.extend(replies)

    async def wait_disconnects(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Wait until the client has closed ``count`` connections (fail after ``timeout``)."""
        with anyio.fail_after(timeout):
            while self.disconnects < count:
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        buffer = bytearray()
        closed_by_client = False
        try:
            while True:
                request = await _read_request(stream, buffer)
                if request is None:
                    closed_by_client = True
                    return
                self.requests.append(request)
                self._notify()
                reply = self.replies.popleft() if self.replies else Reply(status=404)
                outcome = await self._send(stream, reply)
                if outcome == "client-closed":
                    closed_by_client = True
                    return
                if outcome == "closed":
                    return
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError,
                ConnectionError, OSError):
            closed_by_client = True
        finally:
            if closed_by_client:
                self.disconnects += 1
                self._notify()
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def _send(self, stream: anyio.abc.SocketStream, reply: Reply) -> str:
        if reply.stall_before_headers:
            await _wait_for_close(stream)
            return "client-closed"
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}",
                f"content-type: {reply.content_type}"]
        head += [f"{name}: {value}" for name, value in reply.headers.items()]
        if reply.chunked:
            head.append("transfer-encoding: chunked")
        else:
            head.append("connection: close")
        await stream.send(("\r\n".join(head) + "\r\n\r\n").encode())
        for part in reply.body:
            if part is STALL:
                await _wait_for_close(stream)
                return "client-closed"
            if part is HANGUP:
                return "closed"
            if isinstance(part, Pause):
                await anyio.sleep(part.seconds)
                continue
            data = part.encode() if isinstance(part, str) else part
            assert isinstance(data, bytes)
            size = reply.piece or len(data) or 1
            for start in range(0, len(data), size):
                piece = data[start:start + size]
                length = len(piece)
                if reply.chunked:
                    piece = f"{length:x}\r\n".encode() + piece + b"\r\n"
                await stream.send(piece)
                self.bytes_sent += length
                await anyio.sleep(0)  # let the client read this piece on its own
        self.bodies_completed += 1
        if reply.chunked:
            await stream.send(b"0\r\n\r\n")
            return "kept"
        return "closed"


async def _wait_for_close(stream: anyio.abc.SocketStream) -> None:
    while True:
        await stream.receive()  # raises EndOfStream / BrokenResourceError when the client goes


async def _read_request(stream: anyio.abc.SocketStream, buffer: bytearray) -> Request | None:
    while b"\r\n\r\n" not in buffer:
        try:
            data = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return None
        buffer += data
    end = buffer.index(b"\r\n\r\n")
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    del buffer[:end + 4]
    method, path, _ = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        buffer += await stream.receive()
    body = bytes(buffer[:length])
    del buffer[:length]
    return Request(method, path, headers, body)


@asynccontextmanager
async def serve(*replies: Reply) -> AsyncIterator[LoopbackServer]:
    """Run a server on 127.0.0.1 (an ephemeral port) for the ``async with`` block."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    server = LoopbackServer(replies, port)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(listener.serve, server.handle)
            try:
                yield server
            finally:
                group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await listener.aclose()


async def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    return port


@contextmanager
def unaccepting_port() -> Iterator[int]:
    """A port on 127.0.0.1 where connecting hangs: a listener whose backlog is full.

    The kernel drops further SYNs to a listener whose accept queue is full, so a client's
    connect waits until its own connect timeout, the way it does for a server that is down
    behind a firewall.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        for _ in range(4):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@contextmanager
def serve_in_thread(
    *replies: Reply,
) -> Iterator[tuple[LoopbackServer, anyio.from_thread.BlockingPortal]]:
    """:func:`serve` on an event loop of its own, in another thread, for sync tests.

    Yields the server and the portal to call its coroutines with
    (``portal.call(server.wait_disconnects, 1)``).
    """
    with anyio.from_thread.start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(serve(*replies)) as server:
        yield server, portal
