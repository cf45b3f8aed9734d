"""The streaming response: one client reading a run's log, with heartbeats, told apart from a
client that left.

The client has left only when the ASGI server says so (``http.disconnect``) or a write fails;
a quiet run is kept alive with ``: heartbeat`` comments after ``RXAGENT_HEARTBEAT_S`` seconds
(5 by default) of silence, so that proxies do not cut it.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping

import anyio
from starlette.types import Receive, Scope, Send

from ._events import Entry, LogReader
from ._sse import HEARTBEAT, with_id

__all__ = ["EventStreamResponse", "WaitResponse", "heartbeat_seconds"]

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
    """Await ``work`` unless the client leaves first; whether it left."""
    left = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
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
