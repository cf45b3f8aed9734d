"""The streaming response: one client reading a run's log, with heartbeats, told apart from a
client that left.

The client has left only when the ASGI server says so (``http.disconnect``) or a write fails;
a quiet run is kept alive with ``: heartbeat`` comments after ``RXAGENT_HEARTBEAT_S`` seconds
(5 by default) of silence, so that proxies do not cut it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.abc
from starlette.types import ASGIApp, Receive, Scope, Send

from ._events import Entry, LogReader
from ._sse import HEARTBEAT, with_id

__all__ = [
    "CLIENT_LEFT",
    "ClientLeftNotice",
    "EventStreamResponse",
    "WaitResponse",
    "heartbeat_seconds",
    "respond_outside",
]

SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
}


def heartbeat_seconds() -> float:
    """Seconds of silence before a heartbeat: ``RXAGENT_HEARTBEAT_S``, 5 by default."""
    value = os.environ.get("RXAGENT_HEARTBEAT_S", "")
    try:
        seconds = float(value) if value else 5.0
    except ValueError:
        seconds = 5.0
    return seconds if seconds > 0 else 5.0


# The scope key under which ``respond_outside`` takes a held response to run once the app's
# stack has returned (a list, empty until a response is put in it).
_LATER = "rxagent.respond_later"


class _Held(Protocol):
    async def respond(self, scope: Scope, receive: Receive, send: Send) -> None: ...


def _respond_later(scope: Scope, response: _Held) -> bool:
    """Leave ``response`` to ``respond_outside``, when it runs this request: whether it will."""
    later = scope.pop(_LATER, None)
    if later is None:
        return False
    later.append(response)
    return True


async def respond_outside(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app`` for one request; a stream or a wait it answers with is sent once ``app`` has
    returned, with the ``receive`` and ``send`` given here.

    Why: a response is sent from inside the routing and middleware that called its endpoint
    (Starlette's error and exception middleware, their exception wrappers, the router, the
    route), and a held stream kept all of their frames and closures for its whole life, about
    6 KiB of every open stream (``bench/_serve_memory.py``). Those layers have done their work
    once the endpoint has returned its response: errors before streaming are answered inside
    them as before, and an error while streaming only ever re-raised through them. ``app``
    must be one whose layers do nothing with a response once it has started (the app
    ``create_app`` makes, without user middleware: ``_app.py`` checks).
    """
    later: list[_Held] = []
    scope[_LATER] = later
    try:
        await app(scope, receive, send)
    finally:
        scope.pop(_LATER, None)
    if later:
        await later.pop().respond(scope, receive, send)


class EventStreamResponse:
    """An ASGI response that sends a log reader's events as SSE frames.

    Args:
        reader: where the events come from; closed when the response ends.
        headers: added to the SSE headers (``Location``...).
        with_ids: send each event's id (a resumable run).
        on_disconnect: called once if the client leaves before the run ends.
        wanted: which events to send, by name (all when ``None``).
    """

    # An open stream keeps its response for its whole life, thousands at once.
    __slots__ = ("_headers", "on_disconnect", "reader", "wanted", "with_ids")

    def __init__(
        self,
        reader: LogReader,
        *,
        headers: Mapping[str, str],
        with_ids: bool,
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
        wanted: Callable[[str], bool] | None = None,
    ) -> None:
        self.reader = reader
        self.wanted = wanted
        self._headers: Mapping[str, str] | None = headers
        self.with_ids = with_ids
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _respond_later(scope, self):
            await self.respond(scope, receive, send)

    async def respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream until the log ends or the client leaves.

        One coroutine from the headers to the end, the reads and writes in its own loop: a
        held stream waits in this frame and the log reader's, nothing between."""
        reader = self.reader
        watch = _ClientWatch(receive, scope)
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": _encoded_headers(self._headers or {})})
            self._headers = None  # sent: not kept for the stream's life
            period = heartbeat_seconds()
            last_sent = anyio.current_time()
            async with watch:
                while not watch.left:
                    batch = await reader.read(max(period - (anyio.current_time() - last_sent), 0))
                    done = batch.done
                    body = self._frames(batch.entries)
                    # Nothing of the batch outlives its write: while the next read waits (a
                    # held stream's usual state), this process keeps only what is still in the
                    # log.
                    del batch
                    if body:
                        await send({"type": "http.response.body", "body": body, "more_body": True})
                        last_sent = anyio.current_time()
                    elif not done and anyio.current_time() - last_sent >= period:
                        # Silence on this stream (events this client did not ask for are
                        # silence too).
                        await send({"type": "http.response.body", "body": HEARTBEAT,
                                    "more_body": True})
                        last_sent = anyio.current_time()
                    del body
                    if done:
                        break
            if not watch.left:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the write failed: the client is gone
            watch.left = True
        finally:
            reader.close()
            if watch.left and self.on_disconnect is not None:
                with anyio.CancelScope(shield=True):
                    await self.on_disconnect()

    def _frames(self, entries: list[Entry]) -> bytes:
        """The bytes of a batch's frames, those this client asked for, in one write."""
        wanted, with_ids = self.wanted, self.with_ids
        return b"".join(with_id(entry.body, entry.id if with_ids else None) for entry in entries
                        if wanted is None or wanted(entry.event))


def _encoded_headers(extra: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    headers = {**SSE_HEADERS, **{k.lower(): v for k, v in extra.items()}}
    return [(k.encode(), v.encode()) for k, v in headers.items()]


# What the watch cancels its response's task with, on asyncio.
_CLIENT_LEFT = "rxagent: the client left"

# The scope key under which the server's HTTP protocol (``rxagent serve``'s, ``_serve.py``)
# offers to tell a response that its client left: a :class:`ClientLeftNotice`.
CLIENT_LEFT = "rxagent.client_left"


class ClientLeftNotice(Protocol):
    def watch_client(self, client_left: Callable[[], None] | None) -> bool:
        """Call ``client_left`` (from the loop, not from a task) once the request's client
        has left, instead of the function given before; ``None`` stops. False: the client has
        left already, and nothing will be called."""


class _ClientWatch:
    """Whether the client has left (``http.disconnect``), watched for as long as a response's
    work runs in ``async with`` it; the work is cancelled when the client leaves, and the
    cancellation ends at the ``async with``.

    Something must wait on ``receive()`` beside the work, for as long as a stream is open,
    unless the server's protocol says when the client leaves (``rxagent serve``'s, through the
    scope's :data:`CLIENT_LEFT`): then nothing waits, and the protocol calls back. Otherwise,
    on asyncio, one bare task waits. Either cancels the response's own task (``Task.cancel``,
    taken back with ``uncancel`` at the end of the block, so that a cancellation from anywhere
    else still goes through): an anyio task group (its cancel scope, a task state, the task's
    closure and coroutine, its end's wake-up) cost every open stream about 2 KiB more, and a
    cancel scope of our own about 0.6 KiB (``bench/_serve_memory.py``). Elsewhere (trio,
    under hypercorn; trio's tasks inside an asyncio loop, its guest mode) a task group, as
    anyio has it. A loop over the work should also stop once ``left`` is true: an anyio before
    4.16 may swallow the cancellation when it lands in the same loop pass as a timeout of its
    own.
    """

    __slots__ = ("_cancelled", "_group", "_host", "_notice", "_receive", "_watcher", "left")

    def __init__(self, receive: Receive, scope: Scope | None = None) -> None:
        self._receive = receive
        self.left = False
        self._host: asyncio.Task[Any] | None = None
        self._notice: ClientLeftNotice | None = scope.get(CLIENT_LEFT) if scope else None
        self._watcher: asyncio.Task[None] | None = None
        self._cancelled = False  # whether the watch cancelled the host
        self._group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> _ClientWatch:
        try:
            self._host = asyncio.current_task()
        except RuntimeError:  # no asyncio loop here
            self._host = None
        if self._host is None:
            self._group = group = anyio.create_task_group()
            await group.__aenter__()
            group.start_soon(self._watch_in_group, group)
        elif self._notice is None or not self._notice.watch_client(self._client_left):
            # Nothing tells this response (or the client has left already, which the
            # watcher's first receive() says): a task waits.
            self._notice = None
            self._watcher = self._host.get_loop().create_task(_until_disconnected(self._receive))
            self._watcher.add_done_callback(self._ended)
        return self

    def _ended(self, watcher: asyncio.Task[None]) -> None:
        if watcher.cancelled():  # the loop's end: no client has left
            return
        watcher.exception()  # retrieved: a receive() that failed is a client gone too
        self._client_left()

    def _client_left(self) -> None:
        self.left = True
        assert self._host is not None
        self._cancelled = True
        self._host.cancel(_CLIENT_LEFT)

    async def _watch_in_group(self, group: anyio.abc.TaskGroup) -> None:
        await _until_disconnected(self._receive)
        self.left = True
        group.cancel_scope.cancel()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> bool:
        if self._group is not None:
            self._group.cancel_scope.cancel()
            return bool(await self._group.__aexit__(kind, error, traceback))
        watcher, host = self._watcher, self._host
        assert host is not None
        if watcher is not None:
            watcher.remove_done_callback(self._ended)
            watcher.cancel()
        elif self._notice is not None:
            self._notice.watch_client(None)
        if not self._cancelled:
            return False
        # Ours, if nobody else cancelled the task as well: swallowed. (Raised at an await in
        # the block, never after it: the watch cancels only while the task waits in there.)
        return (host.uncancel() == 0 and kind is not None
                and issubclass(kind, asyncio.CancelledError))


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class WaitResponse:
    """An ASGI response that answers with the JSON ``outcome()`` gives once the run has ended.

    Its headers go out at once, and a newline after each ``RXAGENT_HEARTBEAT_S`` seconds of
    waiting (JSON allows whitespace before a value), as the reference server answers: a proxy
    does not cut a long wait as idle, and a client whose connection drops has the
    ``Location`` header already, so the SDK's ``runs.wait`` rejoins the run there (when the
    process serving it died, on another that took the run over) instead of failing.

    Args:
        outcome: waits for the run's end; the answer's JSON bytes.
        headers: the answer's headers besides its content type.
        on_disconnect: called if the client leaves before the run ends.
    """

    def __init__(
        self,
        outcome: Callable[[], Awaitable[bytes]],
        *,
        headers: Mapping[str, str],
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.outcome = outcome
        self.headers = {"content-type": "application/json",
                        **{k.lower(): v for k, v in headers.items()}}
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _respond_later(scope, self):
            await self.respond(scope, receive, send)

    async def respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers, heartbeats while the run goes on, then the outcome."""
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [(k.encode(), v.encode()) for k, v in self.headers.items()],
        })
        body = b""
        watch = _ClientWatch(receive, scope)
        async with watch, anyio.create_task_group() as beats:
            beats.start_soon(self._heartbeats, send)
            body = await self.outcome()
            beats.cancel_scope.cancel()
        if watch.left:
            if self.on_disconnect is not None:
                with anyio.CancelScope(shield=True):
                    await self.on_disconnect()
            return
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _heartbeats(send: Send) -> None:
        interval = heartbeat_seconds()
        while True:
            await anyio.sleep(interval)
            try:
                await send({"type": "http.response.body", "body": b"\n", "more_body": True})
            except OSError:  # the client is gone: the disconnect watcher ends the wait
                return
