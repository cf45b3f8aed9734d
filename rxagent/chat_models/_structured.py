"""``model.bind_tools(...)`` and ``model.with_structured_output(...)``, as LangChain's chat
models have them.

Both return a small runnable over the model: ``invoke``/``ainvoke`` give the reply (or the
parsed answer), ``stream``/``astream`` iterate (an Observable, iterable either way, as the
model's own ``stream``). Beyond LangChain, a structured model's ``stream`` gives validated
partial objects while the JSON arrives (:mod:`rxagent._structured_partial`), the last one the
whole answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import reactivex
from reactivex import abc

from .._bridges import IterableObservable, iterable
from .._convert import to_messages
from .._exceptions import StructuredOutputValidationError, UsageError
from .._messages import AIMessage, AIMessageChunk, ChunkAccumulator
from .._structured import SchemaSpec, json_text, openai_response_format
from .._threads import run_sync
from ..messages import MessageLike
from ..operators._partial import PartialStructured

__all__ = ["BoundTools", "StructuredModel", "partial_answers"]

Method = Literal["function_calling", "json_schema", "json_mode"]


class ChatModel(Protocol):
    """What these wrappers use of a chat model (``BaseChatModel``, which imports this module
    for its methods, so this one cannot import it back)."""

    def stream_prepared(self, messages: list[Any], specs: list[dict[str, Any]], **kwargs: Any
                        ) -> reactivex.Observable[AIMessageChunk]: ...

    def stream(self, messages: Sequence[MessageLike], *, tools: Sequence[Any] | None = None,
               **kwargs: Any) -> IterableObservable[AIMessageChunk]: ...

    async def ainvoke(self, messages: Sequence[MessageLike], *,
                      tools: Sequence[Any] | None = None, **kwargs: Any) -> AIMessage: ...


class BoundTools:
    """A chat model with tools (and a ``tool_choice``) bound to every call: LangChain's
    ``model.bind_tools(tools, tool_choice=...)``.

    ``tool_choice``: ``"auto"``, ``"any"`` (some tool; OpenAI's ``"required"``), ``"none"``,
    a tool's name (that tool), or a provider's own dict.
    """

    def __init__(self, model: ChatModel, tools: Sequence[Any], kwargs: dict[str, Any]) -> None:
        self.model = model
        self.tools = list(tools)
        self.kwargs = kwargs

    def stream(self, messages: Sequence[MessageLike] | MessageLike, **kwargs: Any
               ) -> IterableObservable[AIMessageChunk]:
        """The call's chunks, as the model's ``stream``."""
        return self.model.stream(_conversation(messages), tools=self.tools,
                                 **{**self.kwargs, **kwargs})

    def astream(self, messages: Sequence[MessageLike] | MessageLike, **kwargs: Any
                ) -> IterableObservable[AIMessageChunk]:
        """:meth:`stream`, for ``async for``."""
        return self.stream(messages, **kwargs)

    async def ainvoke(self, messages: Sequence[MessageLike] | MessageLike, **kwargs: Any
                      ) -> AIMessage:
        """The whole reply."""
        return await self.model.ainvoke(_conversation(messages), tools=self.tools,
                                        **{**self.kwargs, **kwargs})

    def invoke(self, messages: Sequence[MessageLike] | MessageLike, **kwargs: Any) -> AIMessage:
        """The whole reply, from sync code."""
        return run_sync(lambda: self.ainvoke(messages, **kwargs))

    def __repr__(self) -> str:
        return f"BoundTools(model={self.model!r}, tools={len(self.tools)})"


class StructuredModel:
    """A chat model that answers with an object of a schema: LangChain's
    ``model.with_structured_output(schema, include_raw=..., method=...)``.

    ``invoke`` gives the answer (a schema instance; a dict for a TypedDict or JSON schema), or
    with ``include_raw=True`` ``{"raw": AIMessage, "parsed": answer or None, "parsing_error":
    error or None}``. ``stream`` gives partial answers as the JSON arrives, each validated
    as far as it goes (see :func:`rxagent.operators.partial_structured`), the last the whole
    answer.
    """

    def __init__(self, model: ChatModel, schema: Any, *, include_raw: bool,
                 method: Method, strict: bool | None) -> None:
        if method not in ("function_calling", "json_schema", "json_mode"):
            raise UsageError("method is 'function_calling', 'json_schema' or 'json_mode', got "
                             f"{method!r}")
        self.model = model
        self.spec = SchemaSpec(schema, strict=strict)
        self.include_raw = include_raw
        self.method = method
        self.specs = [self.spec.tool_spec()] if method == "function_calling" else []
        if method == "function_calling":
            self.kwargs: dict[str, Any] = {"tool_choice": self.spec.name}
        elif method == "json_schema":
            self.kwargs = {"response_format": openai_response_format(self.spec)}
        else:
            self.kwargs = {"response_format": {"type": "json_object"}}

    def _chunks(self, messages: Sequence[MessageLike] | MessageLike, kwargs: dict[str, Any]
                ) -> reactivex.Observable[AIMessageChunk]:
        return self.model.stream_prepared(
            to_messages(_conversation(messages)), self.specs, **{**self.kwargs, **kwargs})

    def parse(self, reply: AIMessage) -> Any:
        """The answer a whole reply carries.

        Raises:
            StructuredOutputValidationError: no answer, JSON that does not parse, or an
                answer the schema refuses.
        """
        return _parse(self.spec, self.method, reply)

    async def ainvoke(self, messages: Sequence[MessageLike] | MessageLike, **kwargs: Any
                      ) -> Any:
        """The answer (or, with ``include_raw``, the raw reply beside it)."""
        reply = await self.model.ainvoke(_conversation(messages), tools=self.specs,
                                         **{**self.kwargs, **kwargs})
        if not self.include_raw:
            return self.parse(reply)
        try:
            return {"raw": reply, "parsed": self.parse(reply), "parsing_error": None}
        except StructuredOutputValidationError as error:
            return {"raw": reply, "parsed": None, "parsing_error": error}

    def invoke(self, messages: Sequence[MessageLike] | MessageLike, **kwargs: Any) -> Any:
        """:meth:`ainvoke` from sync code."""
        return run_sync(lambda: self.ainvoke(messages, **kwargs))

    def stream(self, messages: Sequence[MessageLike] | MessageLike, **kwargs: Any
               ) -> IterableObservable[Any]:
        """Partial answers while the JSON arrives, the whole answer last (iterable, as the
        model's ``stream``)."""
        return iterable(self._chunks(messages, kwargs).pipe(
            partial_answers(self.spec, self.method)))

    def astream(self, messages: Sequence[MessageLike] | MessageLike, **kwargs: Any
                ) -> IterableObservable[Any]:
        """:meth:`stream`, for ``async for``."""
        return self.stream(messages, **kwargs)

    def __repr__(self) -> str:
        return f"StructuredModel(model={self.model!r}, schema={self.spec.name!r})"


def partial_answers(
    spec: SchemaSpec, what: str
) -> Callable[[reactivex.Observable[AIMessageChunk]], reactivex.Observable[Any]]:
    """Message chunks to partial answers, then the whole answer; a call that ends without a
    whole answer fails with :class:`~rxagent.StructuredOutputValidationError`."""

    def operator(source: reactivex.Observable[AIMessageChunk]) -> reactivex.Observable[Any]:
        def subscribe(observer: abc.ObserverBase[Any],
                      scheduler: abc.SchedulerBase | None = None) -> abc.DisposableBase:
            reader = PartialStructured(spec, observer)
            # Kept as they come, merged only for the error: merging costs more per chunk.
            chunks: list[AIMessageChunk] = []

            def on_next(chunk: AIMessageChunk) -> None:
                chunks.append(chunk)
                reader.on_next(chunk)

            def on_completed() -> None:
                if reader.whole is None:
                    reply = ChunkAccumulator()
                    for chunk in chunks:
                        reply.add(chunk)
                    message = reply.to_message() if not reply.empty else AIMessage(content="")
                    try:
                        _parse(spec, what, message)
                    except StructuredOutputValidationError as error:
                        observer.on_error(error)
                        return
                observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed,
                                    scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator


def _parse(spec: SchemaSpec, method: str, reply: AIMessage) -> Any:
    try:
        if method == "function_calling":
            for call in reply.tool_calls:
                if call["name"] == spec.name:
                    return spec.parse(call["args"])
            raise ValueError(f"the reply called no {spec.name!r} tool")
        return spec.parse(json.loads(json_text(reply)))
    except ValueError as error:
        raise StructuredOutputValidationError(spec.name, error, reply) from error


def _conversation(messages: Sequence[MessageLike] | MessageLike) -> Sequence[MessageLike]:
    # LangChain's models take a bare string (or one message) as a one-message conversation.
    if isinstance(messages, str) or not isinstance(messages, Sequence) or (
            isinstance(messages, tuple) and len(messages) == 2 and isinstance(messages[0], str)):
        return [messages]  # type: ignore[list-item]
    return messages
