"""``stream_events(version="v3")``: a run as projections the caller drives by iterating.

LangGraph's experimental v3 event stream gives a run's model calls as message streams
(``for message in run.messages: for token in message.text``), its states, and whether it
stopped for an interrupt. Here it is a thin layer over the run's parts (``messages`` and
``values``, the run's own namespace only): one iterator underneath, pulled as far as the
projection being read needs, so a message's tokens arrive as the model sends them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ._bridges import AsyncIteratorBridge, SyncIterator
from ._messages import AIMessage, AIMessageChunk, ChunkAccumulator
from ._types import StreamPart

__all__ = ["AsyncMessageStream", "AsyncRunStream", "MessageStream", "RunStream"]


class _Run:
    """What the parts so far say: the message streams, the states, the interrupts."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        self.make = make  # a message stream for a new message id
        self.fresh: deque[Any] = deque()  # message streams not handed out yet
        self.states: deque[dict[str, Any]] = deque()
        self.latest: dict[str, Any] | None = None
        self.interrupts: list[Any] = []
        self.open: dict[str, Any] = {}  # message id -> its stream, until its last chunk
        self.done = False

    def take(self, part: StreamPart) -> None:
        if part["ns"]:
            return  # a nested agent's: its own projections, not this run's
        if part["type"] == "values":
            state = dict(part["data"])
            for item in state.pop("__interrupt__", ()):
                if item not in self.interrupts:
                    self.interrupts.append(item)
            self.latest = state
            self.states.append(state)
            return
        chunk = part["data"][0]
        if not isinstance(chunk, AIMessageChunk):
            return  # a tool's message: not a model call
        key = chunk.id or ""
        stream = self.open.get(key)
        if stream is None:
            stream = self.open[key] = self.make(key)
            self.fresh.append(stream)
        stream._add(chunk)
        if chunk.chunk_position == "last":
            del self.open[key]

    def finish(self) -> None:
        self.done = True
        for stream in self.open.values():
            stream._finished = True
        self.open.clear()


class MessageStream:
    """One model call's reply as it streams.

    Attributes:
        id: the reply's message id.
    """

    def __init__(self, run: RunStream, message_id: str) -> None:
        self.id = message_id
        self._run = run
        self._deltas: list[str] = []
        self._reply = ChunkAccumulator()
        self._finished = False

    def _add(self, chunk: AIMessageChunk) -> None:
        self._reply.add(chunk)
        if isinstance(chunk.content, str) and chunk.content:
            self._deltas.append(chunk.content)
        if chunk.chunk_position == "last":
            self._finished = True

    @property
    def text(self) -> Iterator[str]:
        """The reply's text, a delta at a time, as it arrives."""
        position = 0
        while True:
            if position < len(self._deltas):
                position += 1
                yield self._deltas[position - 1]
            elif self._finished or not self._run._pump():
                return

    @property
    def output(self) -> AIMessage:
        """The whole reply, once it has arrived."""
        while not self._finished and self._run._pump():
            pass
        return self._reply.to_message()


class RunStream:
    """A run as projections: ``messages``, ``values``, and once it has ended ``output``,
    ``interrupted`` and ``interrupts`` (reading those drives the run to its end). Leaving a
    ``with`` block, or :meth:`abort`, stops the run."""

    def __init__(self, parts: SyncIterator[StreamPart]) -> None:
        self._parts = parts
        self._state = _Run(lambda key: MessageStream(self, key))

    def _pump(self) -> bool:
        if self._state.done:
            return False
        part = next(self._parts, None)
        if part is None:
            self._state.finish()
            return False
        self._state.take(part)
        return True

    @property
    def messages(self) -> Iterator[MessageStream]:
        """The run's model calls, each a :class:`MessageStream`, as they start."""
        fresh = self._state.fresh
        while True:
            if fresh:
                yield fresh.popleft()
            elif not self._pump():
                return

    @property
    def values(self) -> Iterator[dict[str, Any]]:
        """The run's states, as they come."""
        states = self._state.states
        while True:
            if states:
                yield states.popleft()
            elif not self._pump():
                return

    def _drain(self) -> None:
        while self._pump():
            pass

    @property
    def output(self) -> dict[str, Any] | None:
        """The run's final state (after running it to its end)."""
        self._drain()
        return self._state.latest

    @property
    def interrupted(self) -> bool:
        """Whether the run stopped for an interrupt (after running it to its end)."""
        self._drain()
        return bool(self._state.interrupts)

    @property
    def interrupts(self) -> list[Any]:
        """The interrupts it stopped for (after running it to its end)."""
        self._drain()
        return list(self._state.interrupts)

    def abort(self) -> None:
        """Stop the run."""
        self._state.finish()
        self._parts.close()

    def __enter__(self) -> RunStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class AsyncMessageStream:
    """:class:`MessageStream` for ``async for``."""

    def __init__(self, run: AsyncRunStream, message_id: str) -> None:
        self.id = message_id
        self._run = run
        self._deltas: list[str] = []
        self._reply = ChunkAccumulator()
        self._finished = False

    _add = MessageStream._add

    @property
    def text(self) -> AsyncIterator[str]:
        """The reply's text, a delta at a time, as it arrives."""
        return self._text()

    async def _text(self) -> AsyncIterator[str]:
        position = 0
        while True:
            if position < len(self._deltas):
                position += 1
                yield self._deltas[position - 1]
            elif self._finished or not await self._run._pump():
                return

    async def output(self) -> AIMessage:
        """The whole reply, once it has arrived."""
        while not self._finished and await self._run._pump():
            pass
        return self._reply.to_message()


class AsyncRunStream:
    """:class:`RunStream` for asyncio and trio: ``async for`` over ``messages`` and
    ``values``; ``await output()``, ``interrupted()``, ``interrupts()``."""

    def __init__(self, parts: AsyncIteratorBridge[StreamPart]) -> None:
        self._parts = parts
        self._state = _Run(lambda key: AsyncMessageStream(self, key))

    async def _pump(self) -> bool:
        if self._state.done:
            return False
        try:
            part = await self._parts.__anext__()
        except StopAsyncIteration:
            self._state.finish()
            return False
        self._state.take(part)
        return True

    @property
    def messages(self) -> AsyncIterator[AsyncMessageStream]:
        """The run's model calls, each an :class:`AsyncMessageStream`, as they start."""
        return self._messages()

    async def _messages(self) -> AsyncIterator[AsyncMessageStream]:
        fresh = self._state.fresh
        while True:
            if fresh:
                yield fresh.popleft()
            elif not await self._pump():
                return

    @property
    def values(self) -> AsyncIterator[dict[str, Any]]:
        """The run's states, as they come."""
        return self._values()

    async def _values(self) -> AsyncIterator[dict[str, Any]]:
        states = self._state.states
        while True:
            if states:
                yield states.popleft()
            elif not await self._pump():
                return

    async def _drain(self) -> None:
        while await self._pump():
            pass

    async def output(self) -> dict[str, Any] | None:
        """The run's final state (after running it to its end)."""
        await self._drain()
        return self._state.latest

    async def interrupted(self) -> bool:
        """Whether the run stopped for an interrupt (after running it to its end)."""
        await self._drain()
        return bool(self._state.interrupts)

    async def interrupts(self) -> list[Any]:
        """The interrupts it stopped for (after running it to its end)."""
        await self._drain()
        return list(self._state.interrupts)

    async def abort(self) -> None:
        """Stop the run."""
        self._state.finish()
        await self._parts.aclose()

    async def __aenter__(self) -> AsyncRunStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.abort()
