"""The chat-model base class: a model call is a cold Observable of message chunks.

A provider implements one coroutine, :meth:`BaseChatModel._produce`, that pushes the reply's
chunks into ``emit`` and consults the demand before each read, so that a slow consumer holds
back the socket itself. Everything else (``stream``, ``invoke``, ``ainvoke``, disabled
streaming) is built on it here.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import reactivex
from pydantic import BaseModel as PydanticModel
from reactivex import abc
from typing_extensions import is_typeddict

from .._bridges import IterableObservable, iterable
from .._context import report_model_calls
from .._convert import to_messages
from .._demand import Demand
from .._exceptions import ModelCallError, UsageError
from .._fast_rx import consume, discard, observable_from_async
from .._messages import AIMessage, AIMessageChunk, BaseMessage, ChunkAccumulator
from .._structured import SchemaSpec
from .._threads import run_sync
from .._types import DisableStreaming, ToolSpec
from ..messages import MessageLike
from ._profiles import known_profile
from ._runnable import RunnableMethods, read_config

if TYPE_CHECKING:
    from ._structured import BoundTools, StructuredModel

__all__ = ["UNNAMED_TOOL", "BaseChatModel", "DisableStreaming", "ToolSpec", "tool_specs"]

UNNAMED_TOOL = "unnamed_tool"
"""The name an invalid tool call goes back to a provider with when the model's reply never
named its tool (fragments cut short, out of order): the APIs want a non-empty name on every
call, and the call must go back, or the error result answering it has nothing to answer."""

def tool_specs(tools: Sequence[Any] | None) -> list[ToolSpec]:
    """Describe tools for a model: tool objects, plain functions, ready-made spec dicts, or
    schema classes (a pydantic model, dataclass or TypedDict: a tool whose arguments are its
    fields, as LangChain's ``bind_tools`` takes them)."""
    if not tools:
        return []
    from .._tools import as_tool

    specs: list[ToolSpec] = []
    for item in tools:
        if isinstance(item, Mapping):
            specs.append(dict(item))
        elif _is_schema_class(item):
            specs.append(SchemaSpec(item).tool_spec())
        else:
            specs.append(as_tool(item).tool_spec())
    return specs


def _is_schema_class(item: object) -> bool:
    return isinstance(item, type) and (
        issubclass(item, PydanticModel) or dataclasses.is_dataclass(item) or is_typeddict(item))


class BaseChatModel(RunnableMethods["BaseChatModel"], ABC):
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
        config_metadata: merged into the stream metadata of its calls in a run
            (``with_config(metadata=...)`` sets it).

    LangChain's other model methods (``batch``, ``bind``, ``with_retry``,
    ``with_fallbacks``, ``with_config``) come from :class:`RunnableMethods`
    (``_runnable.py``).
    """

    provider: str = "unknown"
    config_metadata: Mapping[str, Any] = MappingProxyType({})

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

    _profile: dict[str, Any] | None = None  # what profile= or an assignment gave

    @property
    def profile(self) -> dict[str, Any] | None:
        """What the model can do, as LangChain's ``model.profile`` gives it:
        ``max_input_tokens``, ``max_output_tokens``, ``tool_calling``, ``structured_output``,
        ``image_inputs``... The figures of a well-known model (by its exact name), or what
        ``profile=`` (or assigning this) gave; ``None`` for a model nothing is known of.
        ``SummarizationMiddleware``'s fractional triggers read ``max_input_tokens``."""
        if self._profile is not None:
            return dict(self._profile)
        return known_profile(self.provider, self.model_name)

    @profile.setter
    def profile(self, value: Mapping[str, Any] | None) -> None:
        if value is not None and not isinstance(value, Mapping):
            raise UsageError(f"a model's profile is a dict, got {value!r}")
        self._profile = dict(value) if value is not None else None

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
        if "config" in kwargs:  # LangChain's RunnableConfig, for the callbacks: no request field
            kwargs = dict(kwargs)
            config = kwargs.pop("config")
        else:
            config = None
        kept = None if self.disable_streaming else self._raw_keeping(messages, specs, kwargs, reply)
        try:
            if kept is None:
                await consume(self.stream_prepared(messages, specs, config=config, **kwargs),
                              reply.add)
            else:
                await consume(report_model_calls(kept, self, messages, config), discard)
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
        config = kwargs.pop("config", None)  # LangChain's RunnableConfig: its callbacks
        chunks = self._raw(messages, specs, kwargs)
        if self.disable_streaming is True:
            chunks = chunks.pipe(whole_message())
        elif self.disable_streaming == "tool_calling":
            chunks = chunks.pipe(whole_tool_calls())
        # Inside a run, the chunks also go to the run's ``messages`` mode, as delivered.
        return report_model_calls(chunks, self, messages, config)

    def stream(
        self,
        messages: str | Sequence[MessageLike],
        config: Mapping[str, Any] | None = None,
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> IterableObservable[AIMessageChunk]:
        """Start a call on subscription; the Observable of its reply's chunks.

        It is also iterable, as LangChain's ``stream()`` is: ``for chunk in model.stream(...)``
        and ``async for chunk in model.stream(...)`` each make one call.

        Args:
            messages: the conversation: message objects, dicts, ``(role, text)`` or strings.
            config: LangChain's ``RunnableConfig``: ``tags`` and ``metadata`` reach the
                call's stream metadata in a run, ``callbacks`` hear of the call (as
                LangChain's handlers do: ``on_chat_model_start``, ``on_llm_new_token``...);
                a key a model call cannot honour raises
                :class:`~rxagent.UsageError` (see ``_runnable.py``).
            tools: tools the model may call: tool objects, functions or spec dicts.
            **kwargs: provider parameters for this call (``temperature``, ``stop``...).
        """
        model = self._configured(config)
        if config and config.get("callbacks"):
            # stream_prepared tells them of the call; the tags and metadata are the
            # configured model's already.
            kwargs["config"] = {key: value for key, value in config.items()
                                if key not in ("tags", "metadata")}
        return iterable(model.stream_prepared(to_messages(messages), tool_specs(tools), **kwargs))

    def astream(
        self,
        messages: str | Sequence[MessageLike],
        config: Mapping[str, Any] | None = None,
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> IterableObservable[AIMessageChunk]:
        """:meth:`stream` under LangChain's async name, for ``async for chunk in
        model.astream(...)``: the same Observable, iterable either way."""
        return self.stream(messages, config, tools=tools, **kwargs)

    async def ainvoke(
        self,
        messages: str | Sequence[MessageLike],
        config: Mapping[str, Any] | None = None,
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Make a call and return the whole reply. A failure carries the partial reply.

        Inside a run (in a tool, say), the call's chunks also stream in the run's ``messages``.
        ``config`` is as for :meth:`stream`.
        """
        accumulator = ChunkAccumulator()
        try:
            await consume(self.stream(messages, config, tools=tools, **kwargs), accumulator.add)
        except ModelCallError as error:
            if error.partial is None and not accumulator.empty:
                error.partial = accumulator.snapshot()
            raise
        return accumulator.to_message()

    def invoke(
        self,
        messages: str | Sequence[MessageLike],
        config: Mapping[str, Any] | None = None,
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Make a call from sync code and return the whole reply."""
        return run_sync(lambda: self.ainvoke(messages, config, tools=tools, **kwargs))

    def _configured(self, config: Mapping[str, Any] | None) -> BaseChatModel:
        # The model a call with this config is made with: itself, or itself with the tags
        # and metadata the config adds.
        if config is None:
            return self
        read = read_config(config)
        if not read.changes_the_call:
            return self
        return self.with_config(tags=list(read.tags), metadata=dict(read.metadata))

    structured_output_method: str = "function_calling"
    """What :meth:`with_structured_output` uses by default (LangChain's default for the
    provider: ``"json_schema"`` for OpenAI, ``"function_calling"`` for Anthropic)."""

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> BoundTools:
        """This model with ``tools`` bound to every call (LangChain's ``bind_tools``).

        Args:
            tools: tool objects, functions, pydantic models or spec dicts.
            tool_choice: ``"auto"``, ``"any"``, ``"none"``, a tool's name, or a provider's
                dict; left to the provider when ``None``.
            **kwargs: other parameters for every call.
        """
        from ._structured import BoundTools

        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return BoundTools(self, tools, kwargs)

    def with_structured_output(
        self,
        schema: Any,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] | None = None,
        strict: bool | None = None,
    ) -> StructuredModel:
        """This model answering with an object of ``schema`` (LangChain's
        ``with_structured_output``); its ``stream`` gives partial objects as the JSON arrives.

        Args:
            schema: a pydantic model, dataclass, TypedDict or JSON schema dict.
            include_raw: answer ``{"raw", "parsed", "parsing_error"}`` instead of raising on
                an answer that does not parse.
            method: ``"function_calling"`` (a tool the model must call), ``"json_schema"``
                (the provider's native structured output) or ``"json_mode"``; by default
                :attr:`structured_output_method`.
            strict: ask the provider to enforce the schema strictly.

        Raises:
            UsageError: a schema of no supported kind, or an unknown method.
        """
        from ._structured import StructuredModel

        chosen: Any = method or self.structured_output_method
        return StructuredModel(self, schema, include_raw=include_raw, method=chosen,
                               strict=strict)

    def __repr__(self) -> str:
        extra = (
            f", disable_streaming={self.disable_streaming!r}" if self.disable_streaming else ""
        )
        return f"{type(self).__name__}(model_name={self.model_name!r}{extra})"


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
