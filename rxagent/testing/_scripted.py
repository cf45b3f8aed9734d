"""Test models shipped for users: a scripted model and a function-backed model."""

from __future__ import annotations

import inspect
import itertools
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeAlias

import anyio

from .._chunks import make_chunk, text_chunk
from .._demand import Demand
from .._exceptions import ScriptExhaustedError, UsageError
from .._messages import AIMessage, AIMessageChunk, BaseMessage
from ..chat_models._base import BaseChatModel, DisableStreaming, ToolSpec
from ._replies import count_words, stream_reply

__all__ = ["FunctionChatModel", "Reply", "ScriptedChatModel"]

Reply: TypeAlias = str | AIMessage
"""A whole reply: a text answer, or an AIMessage (typically with ``tool_calls``)."""

_ids = itertools.count(1)


def _message_id() -> str:
    return f"lc_run--{uuid.uuid4()}"  # LangChain's form, as the providers give it


def _with_call_ids(reply: Reply) -> Reply:
    """Give tool calls written without an id one, as a provider would."""
    if isinstance(reply, str) or all(call["id"] for call in reply.tool_calls):
        return reply
    calls = [
        {**call, "id": call["id"] or f"call_{next(_ids):04d}"} for call in reply.tool_calls
    ]
    return reply.model_copy(update={"tool_calls": calls})


class ModelCall:
    """What a test model was called with (kept so tests can assert on prompts and tools)."""

    __slots__ = ("kwargs", "messages", "tools")

    def __init__(
        self, messages: list[BaseMessage], tools: list[ToolSpec],
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.messages = messages
        self.tools = tools
        self.kwargs = kwargs or {}  # the call's parameters (tool_choice, response_format...)

    def __repr__(self) -> str:
        return f"ModelCall(messages={len(self.messages)}, tools={[t['name'] for t in self.tools]})"


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script, streaming each reply like a real provider.

    Each call takes the next reply of ``script``: a ``str`` streams as word tokens that keep
    their leading space (``"It's"``, ``" always"``...); an :class:`AIMessage` with
    ``tool_calls`` streams each call as a header chunk (id, name, empty args) and argument
    fragments (``'{"'``, ``'city'``, ``'":"'``...). Every call ends with an empty chunk with
    ``chunk_position="last"``, the finish reason and the usage. No key, no network.

    Args:
        script: the replies, one per call, in order.
        delay: seconds to wait between chunks, for demos; 0 streams as fast as it can.
        model_name: reported as ``ls_model_name`` in stream metadata.
        disable_streaming: as for every chat model.
        tags: reported in stream metadata; ``"nostream"`` leaves the model out of ``messages``.

    Attributes:
        calls: what each call was given (messages and tool specs), in order.

    Raises:
        ScriptExhaustedError: (from the call) when the script has no reply left.
    """

    provider = "scripted"

    def __init__(
        self,
        script: Sequence[Reply],
        *,
        delay: float = 0.0,
        model_name: str = "scripted",
        disable_streaming: DisableStreaming = False,
        tags: Sequence[str] = (),
    ) -> None:
        super().__init__(
            model_name=model_name, disable_streaming=disable_streaming, tags=tags
        )
        replies = list(script)
        for reply in replies:
            if not isinstance(reply, (str, AIMessage)):
                raise UsageError(
                    f"a script holds str or AIMessage replies, got {type(reply).__name__}"
                )
        if delay < 0:
            raise UsageError(f"delay must not be negative, got {delay!r}")
        self.script = [_with_call_ids(reply) for reply in replies]
        self.delay = delay
        self.calls: list[ModelCall] = []
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        """How many replies are left."""
        return len(self.script) - len(self.calls)

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            position = len(self.calls)
            if position >= len(self.script):
                raise ScriptExhaustedError(
                    f"{self.model_name!r} was called {position + 1} times but its script has "
                    f"{len(self.script)} replies; add replies to the script"
                )
            self.calls.append(ModelCall(messages, tools, kwargs))
        await stream_reply(
            self.script[position],
            message_id=_message_id(),
            emit=emit,
            demand=demand,
            delay=self.delay,
            input_tokens=count_words(messages),
            response_metadata={"model_name": self.model_name, "model_provider": self.provider},
        )

    def __repr__(self) -> str:
        return f"ScriptedChatModel(replies={len(self.script)}, remaining={self.remaining})"


ReplyFunction: TypeAlias = Callable[[list[BaseMessage], list[ToolSpec]], Any]


class FunctionChatModel(BaseChatModel):
    """A chat model whose replies a function computes from the conversation.

    ``fn(messages, tools)`` may return a reply (``str`` or :class:`AIMessage`, or an awaitable
    of one), streamed like :class:`ScriptedChatModel` streams it; or it may be a generator,
    sync or async, yielding :class:`AIMessageChunk` objects or strings (text chunks). A
    generator is pulled lazily, one item when downstream has room for it, so a slow consumer
    holds it back. A last chunk is added when the generator does not end with one.
    """

    provider = "function"

    def __init__(
        self,
        fn: ReplyFunction,
        *,
        delay: float = 0.0,
        model_name: str = "function",
        disable_streaming: DisableStreaming = False,
        tags: Sequence[str] = (),
    ) -> None:
        super().__init__(
            model_name=model_name, disable_streaming=disable_streaming, tags=tags
        )
        if not callable(fn):
            raise UsageError(f"FunctionChatModel needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.delay = delay

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        result = self.fn(messages, tools)
        if inspect.isawaitable(result):
            result = await result
        message_id = _message_id()
        metadata = {"model_name": self.model_name, "model_provider": self.provider}
        if isinstance(result, AIMessageChunk):
            result = iter([result])  # a chunk is streamed as it is, fragments and all
        if isinstance(result, (str, AIMessage)):
            await stream_reply(
                _with_call_ids(result),
                message_id=message_id,
                emit=emit,
                demand=demand,
                delay=self.delay,
                input_tokens=count_words(messages),
                response_metadata=metadata,
            )
            return
        if isinstance(result, (Iterator, AsyncIterator)):
            items: Iterator[Any] | AsyncIterator[Any] = result
        else:
            raise UsageError(
                "a FunctionChatModel function returns a str, an AIMessage, or a (sync or "
                f"async) generator of chunks or strings; got {type(result).__name__}"
            )
        await _stream_items(items, message_id, metadata, emit, demand, self.delay)


async def _stream_items(
    items: Iterator[Any] | AsyncIterator[Any],
    message_id: str,
    metadata: dict[str, Any],
    emit: Callable[[AIMessageChunk], None],
    demand: Demand,
    delay: float,
) -> None:
    ended = False
    saw_tool_call = False
    produced = 0
    if isinstance(items, Iterator):  # pulled right here, not through an async wrapper
        pull_sync: Callable[[], Any] | None = items.__next__
        pull_async: Callable[[], Awaitable[Any]] | None = None
    else:
        pull_sync, pull_async = None, items.__anext__
    try:
        while True:
            if not demand.ready:
                await demand.wait()
            if delay and produced:
                await anyio.sleep(delay)
            try:
                # pull_async is set whenever pull_sync is not; no assert on the per-token path
                item = pull_sync() if pull_sync is not None else await pull_async()  # type: ignore[misc]
            except (StopIteration, StopAsyncIteration):
                break
            produced += 1
            if item.__class__ is str:  # a text token: nothing else to look at
                emit(text_chunk(item, message_id))
                continue
            chunk = _chunk_of(item, message_id)
            saw_tool_call = saw_tool_call or bool(chunk.tool_call_chunks)
            ended = chunk.chunk_position == "last"
            emit(chunk)
    finally:
        close = getattr(items, "close" if pull_sync is not None else "aclose", None)
        if close is not None:
            done = close()
            if pull_sync is None:
                await done
    if not ended:
        emit(
            make_chunk(
                "",
                id=message_id,
                chunk_position="last",
                response_metadata={
                    **metadata,
                    "finish_reason": "tool_calls" if saw_tool_call else "stop",
                },
                usage_metadata={"input_tokens": 0, "output_tokens": produced,
                                "total_tokens": produced},
            )
        )


def _chunk_of(item: Any, message_id: str) -> AIMessageChunk:
    if isinstance(item, str):
        return text_chunk(item, message_id)
    if isinstance(item, AIMessageChunk):
        return item if item.id else item.model_copy(update={"id": message_id})
    raise UsageError(
        "a FunctionChatModel generator yields AIMessageChunk objects or strings, "
        f"got {type(item).__name__}"
    )
