"""The chat models that ``bind``, ``with_config``, ``with_retry`` and ``with_fallbacks`` return.

Each is a :class:`~rxagent.chat_models.BaseChatModel` around another, so it streams, goes to
``create_agent`` and wraps again. Each implements ``_produce`` by calling the wrapped model's
``_produce``: one Observable, one demand and one cancellation for the whole call, whatever
the depth, and the wrapped model still decides its own request (a non-streaming one under
``disable_streaming``). Attributes a wrapper does not have are read from the model it wraps
(``model.bind(...).base_url``), as LangChain's ``RunnableBinding`` does.

Retries and fallbacks of a stream happen only while nothing has been delivered: the consumer
never sees a reply start twice. ``ainvoke`` (so ``invoke`` and ``batch`` too) retries, or moves
on, after a failure anywhere in the call, as LangChain does: its reply is handed over whole.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

from .._demand import Demand
from .._exceptions import UsageError
from .._messages import AIMessage, AIMessageChunk, BaseMessage
from .._types import ToolSpec
from ..messages import MessageLike
from ._base import BaseChatModel
from ._runnable import ExponentialJitterParams, RunnableMethods

__all__ = ["BoundChatModel", "FallbackChatModel", "RetryChatModel", "WrappedChatModel"]


class WrappedChatModel(BaseChatModel):
    """A chat model around another; reports itself as the model it wraps.

    Attributes:
        bound: the wrapped model.
    """

    def __init__(
        self,
        bound: BaseChatModel,
        *,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(bound, BaseChatModel):
            raise UsageError(f"a chat model is needed, got {type(bound).__name__}")
        super().__init__(
            model_name=bound.model_name,
            disable_streaming=bound.disable_streaming,
            tags=[*bound.tags, *tags],
        )
        self.bound = bound
        self.provider = bound.provider
        self.config_metadata = {**bound.config_metadata, **(metadata or {})}

    @property
    def profile(self) -> dict[str, Any] | None:
        """The wrapped model's profile."""
        return self.bound.profile

    @profile.setter
    def profile(self, value: Mapping[str, Any] | None) -> None:
        self.bound.profile = value

    def __getattr__(self, name: str) -> Any:
        # Only for names the wrapper lacks; "bound" itself is missing while unpickling.
        if name == "bound":
            raise AttributeError(name)
        return getattr(self.bound, name)

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        await self.bound._produce(messages, tools, emit, demand, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bound={self.bound!r})"


class BoundChatModel(WrappedChatModel):
    """:meth:`~RunnableMethods.bind` and :meth:`~RunnableMethods.with_config`: request
    parameters, tags and metadata fixed for every call.

    Attributes:
        kwargs: the request parameters; a call's own override them.
    """

    def __init__(
        self,
        bound: BaseChatModel,
        *,
        kwargs: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(bound, tags=tags, metadata=metadata)
        self.kwargs = dict(kwargs or {})

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        await self.bound._produce(messages, tools, emit, demand, **{**self.kwargs, **kwargs})

    def __repr__(self) -> str:
        return f"BoundChatModel(bound={self.bound!r}, kwargs={self.kwargs!r})"


class RetryChatModel(WrappedChatModel):
    """:meth:`~RunnableMethods.with_retry`: a failed call made again (see the module doc)."""

    def __init__(
        self,
        bound: BaseChatModel,
        *,
        retry_if_exception_type: tuple[type[BaseException], ...] = (Exception,),
        wait_exponential_jitter: bool = True,
        exponential_jitter_params: ExponentialJitterParams | None = None,
        stop_after_attempt: int = 3,
    ) -> None:
        if (
            isinstance(stop_after_attempt, bool)
            or not isinstance(stop_after_attempt, int)
            or stop_after_attempt < 1
        ):
            raise UsageError(
                f"stop_after_attempt is a positive int, got {stop_after_attempt!r}"
            )
        kinds = tuple(retry_if_exception_type)
        if not all(isinstance(kind, type) and issubclass(kind, BaseException) for kind in kinds):
            raise UsageError(
                f"retry_if_exception_type is a tuple of exception types, got {kinds!r}"
            )
        super().__init__(bound)
        self.retry_if_exception_type = kinds
        self.stop_after_attempt = stop_after_attempt
        self.wait_exponential_jitter = wait_exponential_jitter
        params: dict[str, Any] = dict(exponential_jitter_params or {})
        unknown = set(params) - {"initial", "max", "exp_base", "jitter"}
        if unknown:
            raise UsageError(f"exponential_jitter_params has no {sorted(unknown)}")
        self._initial = float(params.get("initial", 1.0))
        self._max = float(params.get("max", 60.0))
        self._exp_base = float(params.get("exp_base", 2.0))
        self._jitter = float(params.get("jitter", 1.0))

    def _retries(self, error: BaseException, attempt: int) -> bool:
        # Never a cancellation, whatever the types given: it must reach the task it stops.
        return (
            isinstance(error, Exception)
            and isinstance(error, self.retry_if_exception_type)
            and attempt < self.stop_after_attempt
        )

    def _wait(self, attempt: int) -> float:
        # tenacity's wait_exponential_jitter, which LangChain uses: after attempt n (from 1).
        if not self.wait_exponential_jitter:
            return 0.0
        exponent = self._initial * self._exp_base ** (attempt - 1)
        return min(self._max, exponent + random.uniform(0, self._jitter))

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        attempt = 0
        while True:
            attempt += 1
            started = False

            def relay(chunk: AIMessageChunk) -> None:
                nonlocal started
                started = True
                emit(chunk)

            try:
                await self.bound._produce(messages, tools, relay, demand, **kwargs)
                return
            except BaseException as error:
                if started or not self._retries(error, attempt):
                    raise
            await anyio.sleep(self._wait(attempt))

    async def ainvoke(
        self,
        messages: str | Sequence[MessageLike],
        config: Mapping[str, Any] | None = None,
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Make the call, again after a failure while attempts remain."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.bound.ainvoke(messages, config, tools=tools, **kwargs)
            except BaseException as error:
                if not self._retries(error, attempt):
                    raise
            await anyio.sleep(self._wait(attempt))

    def __repr__(self) -> str:
        return (
            f"RetryChatModel(bound={self.bound!r}, "
            f"stop_after_attempt={self.stop_after_attempt})"
        )


class FallbackChatModel(WrappedChatModel):
    """:meth:`~RunnableMethods.with_fallbacks`: the next model while a call fails.

    Attributes:
        fallbacks: the models tried after :attr:`bound`, in order.
    """

    def __init__(
        self,
        bound: BaseChatModel,
        fallbacks: Sequence[BaseChatModel],
        *,
        exceptions_to_handle: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        if isinstance(fallbacks, BaseChatModel) or not all(
            isinstance(model, BaseChatModel) for model in fallbacks
        ):
            raise UsageError(f"fallbacks is a list of chat models, got {fallbacks!r}")
        super().__init__(bound)
        self.fallbacks = list(fallbacks)
        self.exceptions_to_handle = tuple(exceptions_to_handle)

    @property
    def models(self) -> list[BaseChatModel]:
        """Every model, in the order they are tried."""
        return [self.bound, *self.fallbacks]

    def _handles(self, error: BaseException) -> bool:
        return isinstance(error, Exception) and isinstance(error, self.exceptions_to_handle)

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        first: BaseException | None = None
        for model in self.models:
            started = False

            def relay(chunk: AIMessageChunk) -> None:
                nonlocal started
                started = True
                emit(chunk)

            try:
                await model._produce(messages, tools, relay, demand, **kwargs)
                return
            except BaseException as error:
                if started or not self._handles(error):
                    raise
                first = first or error
        assert first is not None
        raise first

    async def ainvoke(
        self,
        messages: str | Sequence[MessageLike],
        config: Mapping[str, Any] | None = None,
        *,
        tools: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Make the call with each model in turn until one succeeds."""
        first: BaseException | None = None
        for model in self.models:
            try:
                return await model.ainvoke(messages, config, tools=tools, **kwargs)
            except BaseException as error:
                if not self._handles(error):
                    raise
                first = first or error
        assert first is not None
        raise first

    def __repr__(self) -> str:
        return f"FallbackChatModel(bound={self.bound!r}, fallbacks={self.fallbacks!r})"


# What the model methods of _runnable.py make (it cannot import this module: see there).
RunnableMethods._wrappers.update(
    bound=BoundChatModel, retry=RetryChatModel, fallbacks=FallbackChatModel
)
