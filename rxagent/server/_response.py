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
from typing import Protocol

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from ._events import Entry, LogReader
from ._sse import HEARTBEAT, with_id

__all__ = ["EventStreamResponse", "WaitResponse", "heartbeat_seconds", "respond_outside"]

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
        self.headers = {**SSE_HEADERS, **{k.lower(): v for k, v in headers.items()}}
        self.with_ids = with_ids
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _respond_later(scope, self):
            await self.respond(scope, receive, send)

    async def respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream until the log ends or the client leaves."""
        left = False
        try:
            await send({
                "type": "http.response.start",
                "status": 200,
                "headers": [(k.encode(), v.encode()) for k, v in self.headers.items()],
            })
            left = await _unless_disconnected(receive, self._pump(send))
            if not left:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the write failed: the client is gone
            left = True
        finally:
            self.reader.close()
            if left and self.on_disconnect is not None:
                with anyio.CancelScope(shield=True):
                    await self.on_disconnect()

    async def _pump(self, send: Send) -> None:
        period = heartbeat_seconds()
        last_sent = anyio.current_time()
        while True:
            batch = await self.reader.read(max(period - (anyio.current_time() - last_sent), 0))
            done = batch.done
            body = self._frames(batch.entries)
            # Nothing of the batch outlives its write: while the next read waits (a held
            # stream's usual state), this process keeps only what is still in the log.
            del batch
            if body:
                await send({"type": "http.response.body", "body": body, "more_body": True})
                last_sent = anyio.current_time()
            elif not done and anyio.current_time() - last_sent >= period:
                # Silence on this stream (events this client did not ask for are silence too).
                await send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})
                last_sent = anyio.current_time()
            del body
            if done:
                return

    def _frames(self, entries: list[Entry]) -> bytes:
        """The bytes of a batch's frames, those this client asked for, in one write."""
        wanted, with_ids = self.wanted, self.with_ids
        return b"".join(with_id(entry.body, entry.id if with_ids else None) for entry in entries
                        if wanted is None or wanted(entry.event))


async def _unless_disconnected(receive: Receive, work: Awaitable[None]) -> bool:
    """Await ``work`` unless the client leaves first (``http.disconnect``); whether it left.

    Something must wait on ``receive()`` beside the work, for as long as a stream is open. On
    asyncio that is a bare task, whose end cancels the work through one cancel scope: an anyio
    task group (its own cancel scope, a task state, the task's closure, a wake-up for its
    end) cost every open stream about 2 KiB more (``bench/_serve_memory.py``). Elsewhere (trio,
    under hypercorn) a task group, as anyio would have it.
    """
    try:
        on_asyncio = asyncio.current_task() is not None
    except RuntimeError:  # no asyncio loop here
        on_asyncio = False
    if not on_asyncio:  # trio, or trio's tasks inside an asyncio loop (its guest mode)
        return await _unless_disconnected_in_group(receive, work)
    left = False
    with anyio.CancelScope() as scope:

        def ended(watcher: asyncio.Task[None]) -> None:
            nonlocal left
            # Not cancelled (by us, below): the client left, or receive() failed, which is
            # no way to go on either.
            if not watcher.cancelled():
                watcher.exception()  # retrieved: a failure is the client gone, not a log line
                left = True
                scope.cancel()

        watcher = asyncio.get_running_loop().create_task(_until_disconnected(receive))
        watcher.add_done_callback(ended)
        try:
            await work
        finally:
            watcher.remove_done_callback(ended)
            watcher.cancel()
    return left


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected_in_group(receive: Receive, work: Awaitable[None]) -> bool:
    left = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal left
            await _until_disconnected(receive)
            left = True
            group.cancel_scope.cancel()

        group.start_soon(watch)
        await work
        group.cancel_scope.cancel()
    return left


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

        async def wait() -> None:
            nonlocal body
            async with anyio.create_task_group() as beats:
                beats.start_soon(self._heartbeats, send)
                body = await self.outcome()
                beats.cancel_scope.cancel()

        if await _unless_disconnected(receive, wait()):
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
