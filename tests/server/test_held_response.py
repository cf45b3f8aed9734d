"""The connection's side of an open stream, driven in-process under asyncio and trio: the
response runs once Starlette's routing has returned, and a client that leaves ends the stream
within a second, whether the stream is paused or flowing; nothing else counts as leaving."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rxagent.server import create_app
from rxagent.server._events import Entry, LogReader, ReadBatch
from rxagent.server._response import CLIENT_LEFT, EventStreamResponse, _ClientWatch
from rxagent.server._serve import http_protocol, lean_event

from .agents import token_agent

FRAME = b"event: custom\r\ndata: 1\r\n"


class FakeReader(LogReader):
    """A run's log as a response reads it: ``flowing``, a batch every millisecond; else paused,
    each read waiting out its timeout (the heartbeat's) with nothing; ``ends_after`` batches,
    then the end."""

    def __init__(self, *, flowing: bool, ends_after: int | None = None) -> None:
        self.flowing = flowing
        self.ends_after = ends_after
        self.reads = 0
        self.closed = False

    async def read(self, timeout: float) -> ReadBatch:
        self.reads += 1
        if self.ends_after is not None and self.reads > self.ends_after:
            return ReadBatch([], True)
        if not self.flowing:
            await anyio.sleep(timeout)
            return ReadBatch([], False)
        await anyio.sleep(0.001)
        return ReadBatch([Entry(self.reads, "custom", FRAME)], False)

    def close(self) -> None:
        self.closed = True


class FakeClient:
    """The server's side of one connection: what the response sent, and a ``receive`` that
    says ``http.disconnect`` once the client has left (after ``requests`` more body
    messages)."""

    def __init__(self, requests: int = 0) -> None:
        self.sent: list[Message] = []
        self.requests = requests
        self.gone = anyio.Event()
        self.started = anyio.Event()
        self.body = anyio.Event()

    async def receive(self) -> Message:
        if self.requests:
            self.requests -= 1
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.start":
            self.started.set()
        elif message.get("body"):
            self.body.set()


def stream(reader: LogReader, left: list[str]) -> EventStreamResponse:
    async def on_disconnect() -> None:
        left.append("left")

    return EventStreamResponse(reader, headers={}, with_ids=False, on_disconnect=on_disconnect)


@pytest.mark.anyio
@pytest.mark.parametrize("flowing", [False, True], ids=["paused", "flowing"])
async def test_a_client_that_leaves_ends_the_stream_within_a_second(flowing: bool) -> None:
    reader, client, left = FakeReader(flowing=flowing), FakeClient(), []
    response = stream(reader, left)
    async with anyio.create_task_group() as group:
        group.start_soon(response, {"type": "http"}, client.receive, client.send)
        await (client.body if flowing else client.started).wait()
        await anyio.sleep(0.05)
        client.gone.set()
        # A paused stream's read waits 5 s for its heartbeat: the watch must end it sooner.
        with anyio.fail_after(1):
            while not left:
                await anyio.sleep(0.005)
    assert left == ["left"] and reader.closed
    # No end of body is sent to a client that has left.
    assert all(message.get("more_body", True) for message in client.sent)


@pytest.mark.anyio
async def test_a_stream_that_ends_is_not_a_client_that_left(anyio_backend: str) -> None:
    # Two more body messages come first: they are not a disconnect.
    reader, client, left = FakeReader(flowing=True, ends_after=3), FakeClient(requests=2), []
    await stream(reader, left)({"type": "http"}, client.receive, client.send)
    assert left == [] and reader.closed
    assert [m.get("body") for m in client.sent[1:]] == [FRAME + b"\r\n"] * 3 + [b""]
    assert client.sent[-1]["more_body"] is False
    if anyio_backend == "asyncio":
        import asyncio

        await asyncio.sleep(0)  # the watcher's cancellation lands
        await asyncio.sleep(0)
        watching = [task for task in asyncio.all_tasks()
                    if "_until_disconnected" in repr(task.get_coro())]
        assert watching == []


@pytest.mark.anyio
async def test_a_stream_cancelled_from_outside_is_not_a_client_that_left() -> None:
    # A server shutting down cancels its requests: the run goes on (on_disconnect="cancel"
    # is for a client that leaves), and the cancellation is not swallowed.
    reader, client, left = FakeReader(flowing=False), FakeClient(), []
    response = stream(reader, left)
    with anyio.move_on_after(10) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(response, {"type": "http"}, client.receive, client.send)
            await client.started.wait()
            group.cancel_scope.cancel()
        finished = True
    assert not scope.cancelled_caught and finished
    assert left == [] and reader.closed


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_watch_keeps_a_cancellation_from_elsewhere(anyio_backend: str) -> None:
    # On asyncio the watch cancels the response's own task and takes its cancellation back at
    # the end of the block: only its own, never one that came from elsewhere at the same time.
    import asyncio

    host = asyncio.current_task()
    assert host is not None

    async def gone() -> Message:  # the client has left already
        return {"type": "http.disconnect"}

    with pytest.raises(asyncio.CancelledError):
        async with _ClientWatch(gone) as watch:
            # Lands just before the watcher's end: both in the same pass of the loop.
            asyncio.get_running_loop().call_soon(host.cancel)
            await asyncio.sleep(5)
    assert watch.left
    assert host.uncancel() == 0  # the other cancellation, still counted
    # Alone, the watch's cancellation ends at the block.
    async with _ClientWatch(gone) as watch:
        await asyncio.sleep(5)
    assert watch.left and host.cancelling() == 0


class SwallowingReader(FakeReader):
    """A paused log whose read swallows a cancellation, as an anyio before 4.16 could when it
    landed in the same loop pass as the read's own timeout."""

    async def read(self, timeout: float) -> ReadBatch:
        import asyncio

        self.reads += 1
        if self.reads > 1:  # once: a build that reads on fails the test rather than hang
            return await super().read(timeout)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(timeout)
        return ReadBatch([], False)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_swallowed_cancellation_still_ends_the_stream(anyio_backend: str) -> None:
    reader, client, left = SwallowingReader(flowing=False), FakeClient(), []
    async with anyio.create_task_group() as group:
        group.start_soon(stream(reader, left), {"type": "http"}, client.receive, client.send)
        await client.started.wait()
        client.gone.set()
        with anyio.fail_after(1):
            while not left:
                await anyio.sleep(0.005)
    assert reader.reads == 1


# -- the stream routes, past Starlette's routing ------------------------------------------------

STARLETTE_LAYERS = ("ServerErrorMiddleware.__call__", "ExceptionMiddleware.__call__",
                    "Router.app", "Route.handle", "wrapped_app")


def awaiting(coro: Any) -> list[str]:
    """The chain of coroutines ``coro`` is suspended in, outermost first."""
    chain = []
    while coro is not None and hasattr(coro, "cr_code"):
        chain.append(coro.cr_code.co_qualname)
        coro = coro.cr_await
    return chain


def request(method: str, path: str, body: dict[str, Any] | None,
            headers: tuple[tuple[bytes, bytes], ...] = ()) -> tuple[Scope, bytes]:
    data = b"" if body is None else json.dumps(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()), *headers],
    }
    return scope, data


class HeldClient:
    """A client that sends its request's body, then holds the response back at its first
    frame (its ``send`` waits, as a full socket's does) until ``released``; it never leaves."""

    def __init__(self, body: bytes, *, hold: bool = True) -> None:
        self.body = body
        self.sent: list[Message] = []
        self.holding = anyio.Event()
        self.released = anyio.Event()
        if not hold:
            self.released.set()
        self.asked = False

    async def receive(self) -> Message:
        if not self.asked:
            self.asked = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message.get("body", b"").startswith(b"event:") and not self.released.is_set():
            self.holding.set()
            await self.released.wait()

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def content(self) -> bytes:
        return b"".join(message.get("body", b"") for message in self.sent)


async def call(app: ASGIApp, method: str, path: str, body: dict[str, Any] | None = None,
               headers: tuple[tuple[bytes, bytes], ...] = ()) -> HeldClient:
    """One whole request through ``app``, read as it comes."""
    scope, data = request(method, path, body, headers)
    client = HeldClient(data, hold=False)
    with anyio.fail_after(10):
        await app(scope, client.receive, client.send)
    return client


async def held_chain(app: ASGIApp, method: str, path: str, body: dict[str, Any] | None,
                     headers: tuple[tuple[bytes, bytes], ...] = ()
                     ) -> tuple[list[str], HeldClient]:
    """A stream through ``app``: the chain the request is suspended in while its client holds
    the stream back at the first frame, and the client once the stream has ended."""
    scope, data = request(method, path, body, headers)
    client = HeldClient(data)
    coro = app(scope, client.receive, client.send)

    async def run() -> None:
        await coro

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        with anyio.fail_after(10):
            await client.holding.wait()
        chain = awaiting(coro)
        client.released.set()
    return chain, client


def tokens_of(content: bytes) -> str:
    found = []
    for block in content.split(b"\r\n\r\n"):
        if block.startswith(b"event: messages"):
            data = json.loads(block.split(b"data: ", 1)[1].split(b"\r\n")[0])
            found.append(data[0]["content"])
    return "".join(found)


RUN = {"assistant_id": "tokens", "input": {"messages": ["hi"]}, "stream_mode": "messages-tuple"}


async def start_stream(app: ASGIApp, route: str) -> tuple[str, str, dict[str, Any] | None,
                                                         tuple[tuple[bytes, bytes], ...]]:
    """The request of a stream route: method, path, body, headers."""
    if route == "stateless":
        return "POST", "/runs/stream", RUN, ()
    thread = json.loads((await call(app, "POST", "/threads", {})).content)["thread_id"]
    if route == "thread":
        return "POST", f"/threads/{thread}/runs/stream", RUN, ()
    run = await call(app, "POST", f"/threads/{thread}/runs/wait",
                     {**RUN, "stream_resumable": True})
    # The join replays the finished run from its first event.
    return "GET", f"{run.headers[b'content-location'].decode()}/stream", None, (
        (b"last-event-id", b"-1"),)


@pytest.mark.anyio
@pytest.mark.parametrize("route", ["stateless", "thread", "join"])
async def test_a_held_stream_keeps_no_routing_frames(anyio_backend: str, route: str) -> None:
    app = create_app({"tokens": token_agent(5)})
    async with app.router.lifespan_context(app):
        chain, client = await held_chain(app, *await start_stream(app, route))
    assert "EventStreamResponse.respond" in chain
    assert not [name for name in chain if name.endswith(STARLETTE_LAYERS)], chain
    assert client.status == 200
    assert tokens_of(client.content) == "t0 t1 t2 t3 t4"


class AddHeader:
    """A user's middleware that acts on a response once it has started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-seen", b"1")]}
            await send(message)

        await self.app(scope, receive, sending)


@pytest.mark.anyio
async def test_a_stream_goes_through_a_users_middleware(anyio_backend: str) -> None:
    app = create_app({"tokens": token_agent(5)})
    app.add_middleware(AddHeader)
    async with app.router.lifespan_context(app):
        chain, client = await held_chain(app, "POST", "/runs/stream", RUN)
    assert client.headers[b"x-seen"] == b"1"
    assert "Route.handle" in chain  # sent from inside the layers, as Starlette does
    assert tokens_of(client.content) == "t0 t1 t2 t3 t4"


@pytest.mark.anyio
async def test_a_mounted_app_streams_and_refuses_as_before(anyio_backend: str) -> None:
    app = create_app({"tokens": token_agent(5)})
    parent = Starlette(routes=[Mount("/agents", app=app)],
                       lifespan=lambda _: app.router.lifespan_context(app))
    async with parent.router.lifespan_context(parent):
        _, client = await held_chain(parent, "POST", "/agents/runs/stream", RUN)
        unknown = await call(parent, "POST", "/agents/runs/stream",
                             {**RUN, "assistant_id": "nobody"})
        bad_join = await call(parent, "GET", "/agents/threads/t/runs/r/stream")
    assert tokens_of(client.content) == "t0 t1 t2 t3 t4"
    assert unknown.status == 404 and json.loads(unknown.content)["detail"].startswith(
        "no assistant 'nobody'")
    assert bad_join.status == 404 and json.loads(bad_join.content) == {
        "detail": "no run 'r' on thread 't'"}


# -- uvicorn's events, per connection ----------------------------------------------------------


def test_a_lean_event_waits_sets_and_cancels_as_asyncios() -> None:
    import asyncio

    async def main() -> None:
        event = asyncio.Event()
        lean_event(event)
        assert type(event._waiters) is list  # type: ignore[attr-defined]
        woken: list[int] = []

        async def wait(n: int) -> None:
            await event.wait()
            woken.append(n)

        tasks = [asyncio.create_task(wait(n)) for n in range(3)]
        await asyncio.sleep(0)
        tasks[1].cancel()  # a cancelled waiter leaves the list
        await asyncio.sleep(0)
        assert len(event._waiters) == 2  # type: ignore[attr-defined]
        event.set()
        await asyncio.gather(tasks[0], tasks[2])
        assert woken == [0, 2] and event._waiters == []  # type: ignore[attr-defined]
        await asyncio.wait_for(event.wait(), 1)  # set: at once
        event.clear()
        later = asyncio.create_task(event.wait())
        await asyncio.sleep(0)
        assert not later.done()
        event.set()
        assert await later is True

    asyncio.run(main())


async def _serve(protocol_class: type, app: ASGIApp) -> Any:
    """A loopback server of ``app`` with uvicorn's ``protocol_class``; started, with the
    protocols it made."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    config = uvicorn.Config(app, ws="none", lifespan="off", log_level="warning")
    config.load()
    made: list[Any] = []

    def factory() -> asyncio.Protocol:
        protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
        made.append(protocol)
        return protocol

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    return server, made


def test_rxagent_serves_connections_with_lean_events() -> None:
    import asyncio

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> list[type]:
        server, made = await _serve(http_protocol(), app)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
        kinds = [type(made[0].flow._is_writable_event._waiters),
                 type(made[0].cycle.message_event._waiters)]
        writer.close()
        server.close()
        await server.wait_closed()
        return kinds

    assert asyncio.run(main()) == [list, list]


# -- told by rxagent serve's protocol that the client left ---------------------------------------


async def _serve_one_stream(protocol_class: type, reader: FakeReader, left: list[str]) -> Any:
    """A loopback server with ``protocol_class`` whose every request is answered with a stream
    of ``reader``; started, with the protocols it made."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await stream(reader, left)(scope, receive, send)

    return await _serve(protocol_class, app)


def _watchers() -> list[Any]:
    import asyncio

    return [task for task in asyncio.all_tasks() if "_until_disconnected" in repr(task.get_coro())]


@pytest.mark.parametrize("served_by", ["rxagent serve", "uvicorn"])
def test_a_client_that_leaves_is_told_by_the_protocol_or_watched_for(served_by: str) -> None:
    # rxagent serve's protocol tells the response that its client left: no task waits on
    # receive(). Under another server's protocol a task does, with the same outcome.
    import asyncio

    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    protocol_class = http_protocol() if served_by == "rxagent serve" else AutoHTTPProtocol

    async def main() -> tuple[int, list[str], bool]:
        reader, left = FakeReader(flowing=False), []
        server, _ = await _serve_one_stream(protocol_class, reader, left)
        port = server.sockets[0].getsockname()[1]
        client, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await client.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.05)  # the response waits in its paused read
        watchers = len(_watchers())
        writer.close()
        # The paused read waits 5 s for its heartbeat: being told must end it sooner.
        with anyio.fail_after(1):
            while not left:
                await asyncio.sleep(0.005)
        server.close()
        await server.wait_closed()
        return watchers, left, reader.closed

    watchers, left, closed = asyncio.run(main())
    assert watchers == (0 if served_by == "rxagent serve" else 1)
    assert left == ["left"] and closed


def test_a_stream_that_ends_stops_the_protocol_telling_it() -> None:
    # Once the stream has ended, the connection's end (a kept-alive client leaving later) is
    # nothing to it: the protocol forgets the response, and no task is cancelled.
    import asyncio

    async def main() -> tuple[list[str], Any]:
        reader, left = FakeReader(flowing=True, ends_after=2), []
        server, made = await _serve_one_stream(http_protocol(), reader, left)
        port = server.sockets[0].getsockname()[1]
        client, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await client.readuntil(b"0\r\n\r\n")  # the chunked body's end
        told = made[0]._client_left
        writer.close()
        await asyncio.sleep(0.1)
        server.close()
        await server.wait_closed()
        return left, told

    left, told = asyncio.run(main())
    assert told is None and left == []


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_client_gone_before_the_watch_begins_is_watched_for(anyio_backend: str) -> None:
    # A protocol that says the client has left already: the watch falls back to receive(),
    # which says so at once.
    class Gone:
        def __init__(self) -> None:
            self.asked: list[object] = []

        def watch_client(self, client_left: object) -> bool:
            self.asked.append(client_left)
            return False

    reader, client, left = FakeReader(flowing=False), FakeClient(), []
    client.gone.set()
    gone = Gone()
    with anyio.fail_after(1):
        await stream(reader, left)({"type": "http", CLIENT_LEFT: gone}, client.receive,
                                   client.send)
    assert left == ["left"] and len(gone.asked) == 1
