"""The chat-model base class: a model call is a cold Observable of message chunks.

A provider implements one coroutine, :meth:`BaseChatModel._produce`, that pushes the reply's
chunks into ``emit`` and consults the demand before each read, so that a slow consumer holds
back the socket itself. Everything else (``stream``, ``invoke``, ``ainvoke``, disabled
streaming) is built on it here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import reactivex
from reactivex import abc

from .._bridges import IterableObservable, iterable
from .._context import report_model_calls
from .._convert import to_messages
from .._demand import Demand
from .._exceptions import ModelCallError, UsageError
from .._fast_rx import consume, observable_from_async
from .._messages import AIMessage, AIMessageChunk, BaseMessage, ChunkAccumulator
from .._threads import run_sync
from .._types import DisableStreaming, ToolSpec
from ..messages import MessageLike

__all__ = ["UNNAMED_TOOL", "BaseChatModel", "DisableStreaming", "ToolSpec", "tool_specs"]

UNNAMED_TOOL = "unnamed_tool"
"""The name an invalid tool call goes back to a provider with when the model's reply never
named its tool (fragments cut short, out of order): the APIs want a non-empty name on every
call, and the call must go back, or the error result answering it has nothing to answer."""

def tool_specs(tools: Sequence[Any] | None) -> list[ToolSpec]:
    """Describe tools for a model: tool objects, plain functions, or ready-made spec dicts."""
    if not tools:
        return []
    from .._tools import as_tool

    specs: list[ToolSpec] = []
    for item in tools:
        if isinstance(item, Mapping):
            specs.append(dict(item))
        else:
            specs.append(as_tool(item).tool_spec())
    return specs


class BaseChatModel(ABC):
    """A chat model whose every call is a cold Observable of :class:`AIMessageChunk`.

    Subclasses implement :meth:`_produce`. Subscribing to :meth:`stream` starts the call,
    disposing the subscription cancels it (and closes the connection), and the last chunk has
    ``chunk_position="last"``, the finish reason and the usage.

    Attributes:
        model_name: the model's name as the provider knows it.
        provider: the provider's name, reported as ``ls_provider`` in stream metadata.
        disable_streaming: ``True`` delivers each reply as one whole chunk; ``"tool_calling"``
            streams text token by token but delivers each tool call once, complete.
        tags: reported in stream metadata; a model tagged ``"nostream"`` is left out of a
            run's ``messages`` mode altogether.
    """

    provider: str = "unknown"

    def __init__(
        self,
        *,
        model_name: str,
        disable_streaming: DisableStreaming = False,
        tags: Sequence[str] = (),
    ) -> None:
        if disable_streaming not in (True, False, "tool_calling"):
            raise UsageError(
                "disable_streaming must be True, False or 'tool_calling', "
                f"got {disable_streaming!r}"
            )
        self.model_name = model_name
        self.disable_streaming: DisableStreaming = disable_streaming
        self.tags = list(tags)

    @abstractmethod
    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        """Make one model call, pushing the reply's chunks into ``emit`` as they arrive.

        Before reading or producing more, check ``demand.ready`` and ``await demand.wait()``
        when it is false. The last chunk pushed must have ``chunk_position="last"``. A failure
        after chunks went out raises a :class:`ModelCallError` (its ``partial`` may be left
        ``None``: callers that accumulate fill it in, but a subscriber to :meth:`stream` sees
        only what the provider set). ``docs/providers.md`` walks through a provider.
        """

    def stream_raw(
        self,
        messages: Sequence[MessageLike],
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> IterableObservable[AIMessageChunk]:
        """The call's chunks as the provider sends them, whatever ``disable_streaming`` says."""
        return iterable(self._raw(to_messages(messages), tool_specs(tools), kwargs))

    def _raw(
        self, messages: list[BaseMessage], specs: list[ToolSpec], kwargs: dict[str, Any]
    ) -> reactivex.Observable[AIMessageChunk]:
        async def produce(emit: Callable[[AIMessageChunk], None], demand: Demand) -> None:
            await self._produce(messages, specs, emit, demand, **kwargs)

        return observable_from_async(produce)

    def _raw_keeping(
        self,
        messages: list[BaseMessage],
        specs: list[ToolSpec],
        kwargs: dict[str, Any],
        keep: ChunkAccumulator,
    ) -> reactivex.Observable[AIMessageChunk] | None:
        """:meth:`_raw`, from a model that adds every chunk it delivers to ``keep`` as it goes
        (an HTTP model keeps its reply so anyway, for the partial reply); ``None`` from one
        that does not (the base)."""
        return None

    async def _reply_prepared(
        self, messages: list[BaseMessage], specs: list[ToolSpec], kwargs: dict[str, Any]
    ) -> AIMessage:
        """The whole reply of :meth:`stream_prepared`'s call, its chunks reported to the run as
        they pass; a failure carries the partial reply. For the agent's model step.

        A model that keeps its reply as it delivers it (:meth:`_raw_keeping`) keeps it here,
        so that no chunk is added up twice: adding a chunk cost 7% of a token of text's path
        through an agent and 12% of a tool call's piece (``bench/instructions.py``, the agent
        wire rows). With ``disable_streaming`` the
        chunks delivered are not the ones the model made, so they are added up as they come.
        """
        reply = ChunkAccumulator()
        kept = None if self.disable_streaming else self._raw_keeping(messages, specs, kwargs, reply)
        try:
            if kept is None:
                await consume(self.stream_prepared(messages, specs, **kwargs), reply.add)
            else:
                await consume(report_model_calls(kept, self), _ignore)
        except ModelCallError as error:
            if error.partial is None and not reply.empty:
                error.partial = reply.snapshot()
            raise
        return reply.to_message()

    def stream_prepared(
        self, messages: list[BaseMessage], specs: list[ToolSpec], **kwargs: Any
    ) -> reactivex.Observable[AIMessageChunk]:
        """:meth:`stream` for callers that already hold message objects and tool specs (the
        agent loop, once per step): nothing converted or copied, so a call costs the same
        however long the conversation. Neither list may change while the call runs."""
        chunks = self._raw(messages, specs, kwargs)
        if self.disable_streaming is True:
            chunks = chunks.pipe(whole_message())
        elif self.disable_streaming == "tool_calling":
            chunks = chunks.pipe(whole_tool_calls())
        # Inside a run, the chunks also go to the run's ``messages`` mode, as delivered.
        return report_model_calls(chunks, self)

    def stream(
        self,
        messages: Sequence[MessageLike],
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> IterableObservable[AIMessageChunk]:
        """Start a call on subscription; the Observable of its reply's chunks.

        It is also iterable, as LangChain's ``stream()`` is: ``for chunk in model.stream(...)``
        and ``async for chunk in model.stream(...)`` each make one call.

        Args:
            messages: the conversation: message objects, dicts, ``(role, text)`` or strings.
            tools: tools the model may call: tool objects, functions or spec dicts.
            **kwargs: provider parameters for this call (``temperature``...).
        """
        return iterable(self.stream_prepared(to_messages(messages), tool_specs(tools), **kwargs))

    def astream(
        self,
        messages: Sequence[MessageLike],
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> IterableObservable[AIMessageChunk]:
        """:meth:`stream` under LangChain's async name, for ``async for chunk in
        model.astream(...)``: the same Observable, iterable either way."""
        return self.stream(messages, tools=tools, **kwargs)

    async def ainvoke(
        self,
        messages: Sequence[MessageLike],
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Make a call and return the whole reply. A failure carries the partial reply.

        Inside a run (in a tool, say), the call's chunks also stream in the run's ``messages``.
        """
        accumulator = ChunkAccumulator()
        try:
            await consume(self.stream(messages, tools=tools, **kwargs), accumulator.add)
        except ModelCallError as error:
            if error.partial is None and not accumulator.empty:
                error.partial = accumulator.snapshot()
            raise
        return accumulator.to_message()

    def invoke(
        self,
        messages: Sequence[MessageLike],
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Make a call from sync code and return the whole reply."""
        return run_sync(lambda: self.ainvoke(messages, tools=tools, **kwargs))

    def __repr__(self) -> str:
        extra = (
            f", disable_streaming={self.disable_streaming!r}" if self.disable_streaming else ""
        )
        return f"{type(self).__name__}(model_name={self.model_name!r}{extra})"


def _ignore(chunk: AIMessageChunk) -> None:
    pass


def whole_message() -> Callable[
    [reactivex.Observable[AIMessageChunk]], reactivex.Observable[AIMessageChunk]
]:
    """Collapse a call's chunks into one chunk (``disable_streaming=True``).

    ::

        --a--b--c--|   ->   ----------(abc)|

    If the call fails, the part that had arrived rides on the error as ``partial``.
    """

    def operator(
        source: reactivex.Observable[AIMessageChunk],
    ) -> reactivex.Observable[AIMessageChunk]:
        def subscribe(
            observer: abc.ObserverBase[AIMessageChunk],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            accumulator = ChunkAccumulator()

            def on_error(error: Exception) -> None:
                _attach_partial(error, accumulator)
                observer.on_error(error)

            def on_completed() -> None:
                if not accumulator.empty:
                    observer.on_next(accumulator.snapshot())
                observer.on_completed()

            return source.subscribe(
                accumulator.add, on_error, on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)

    return operator


def whole_tool_calls() -> Callable[
    [reactivex.Observable[AIMessageChunk]], reactivex.Observable[AIMessageChunk]
]:
    """Stream text as it comes, but each tool call once, complete (``"tool_calling"``).

    Tool-call fragments are held back and each call goes out as one chunk with its whole
    arguments, in index order, just before the last chunk::

        --t1--[c0 head]--[c0 args]--t2--[last]|  ->  --t1--t2--[c0 whole]--[last]|
    """

    def operator(
        source: reactivex.Observable[AIMessageChunk],
    ) -> reactivex.Observable[AIMessageChunk]:
        def subscribe(
            observer: abc.ObserverBase[AIMessageChunk],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            held = ChunkAccumulator()  # only the tool-call part of each chunk

            def flush() -> None:
                if held.empty:
                    return
                merged = held.snapshot()
                held.clear()
                for call_chunk in merged.tool_call_chunks:
                    observer.on_next(
                        AIMessageChunk(content="", id=merged.id, tool_call_chunks=[call_chunk])
                    )

            def on_next(chunk: AIMessageChunk) -> None:
                if not chunk.tool_call_chunks:
                    if chunk.chunk_position == "last":
                        flush()
                    observer.on_next(chunk)
                    return
                held.add(AIMessageChunk(id=chunk.id, tool_call_chunks=chunk.tool_call_chunks))
                rest = chunk.model_copy(update={"tool_call_chunks": []})
                if rest.chunk_position == "last":
                    flush()
                    observer.on_next(rest)
                elif rest.content:
                    observer.on_next(rest)

            def on_error(error: Exception) -> None:
                _attach_partial(error, held)
                observer.on_error(error)

            return source.subscribe(on_next, on_error, observer.on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator


def _attach_partial(error: Exception, accumulator: ChunkAccumulator) -> None:
    if isinstance(error, ModelCallError) and error.partial is None and not accumulator.empty:
        error.partial = accumulator.snapshot()
