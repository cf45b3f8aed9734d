"""LangChain's Runnable methods on every chat model: ``batch``, ``with_retry``, ``bind``...

:class:`RunnableMethods` is a base of :class:`~rxagent.chat_models.BaseChatModel`. Each
``with_*``/``bind`` returns another chat model (``_wrappers.py``), so that the result goes
wherever a model goes (``create_agent(model.bind(temperature=0), ...)``) and still streams.
``batch``/``abatch`` make one ``ainvoke`` per input, at most ``max_concurrency`` at once.

A ``config`` is read by :func:`read_config`: the keys a model call honours (``tags`` and
``metadata`` reach the stream metadata of a call made in a run, ``max_concurrency`` bounds a
batch) and those it has nothing to do with (``run_name``, ``run_id``, ``recursion_limit``,
``configurable``: there is no tracer or graph under a single call) are taken; anything else
raises :class:`~rxagent.UsageError` naming the key, so that nothing is dropped silently.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, TypedDict, TypeVar, cast, overload

import anyio

from .._exceptions import UsageError
from .._messages import AIMessage
from .._threads import run_sync
from ..messages import MessageLike

__all__ = ["ExponentialJitterParams", "ModelConfig", "RunnableMethods", "read_config"]

ModelInput = str | Sequence[MessageLike]
"""What ``invoke`` takes: a string, or the conversation as a list."""


class ExponentialJitterParams(TypedDict, total=False):
    """The backoff of :meth:`RunnableMethods.with_retry`, as LangChain (tenacity) names it:
    ``initial * exp_base ** attempt`` seconds plus up to ``jitter`` at random, at most
    ``max``."""

    initial: float
    max: float
    exp_base: float
    jitter: float


_TAKEN = frozenset(
    {"tags", "metadata", "max_concurrency", "run_name", "run_id", "recursion_limit",
     "configurable", "callbacks"}
)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """What a model call takes from a ``config``."""

    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    max_concurrency: int | None = None

    @property
    def changes_the_call(self) -> bool:
        """Whether the call must be made through a configured model (tags or metadata)."""
        return bool(self.tags or self.metadata)


def read_config(config: Mapping[str, Any] | None) -> ModelConfig:
    """Check a model call's ``config`` and keep what it honours.

    Raises:
        UsageError: a key a model call cannot honour, or a value of the wrong type.
    """
    if config is None:
        return ModelConfig()
    if not isinstance(config, Mapping):
        raise UsageError(f"config is a dict (LangChain's RunnableConfig), got {config!r}")
    for key in config:
        if key not in _TAKEN:
            raise UsageError(f"config key {key!r} cannot be honoured on a model call; a model "
                             f"call takes {sorted(_TAKEN)}")
    tags = config.get("tags") or ()
    if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags):
        raise UsageError(f"config['tags'] is a list of str, got {tags!r}")
    metadata = config.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise UsageError(f"config['metadata'] is a dict, got {metadata!r}")
    limit = config.get("max_concurrency")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"config['max_concurrency'] is a positive int, got {limit!r}")
    return ModelConfig(tuple(tags), dict(metadata), limit)


def _configs(
    config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, count: int
) -> list[Mapping[str, Any] | None]:
    # One config for all the inputs, or one per input (as LangChain's batch takes them).
    if config is None or isinstance(config, Mapping):
        return [config] * count
    configs: list[Mapping[str, Any] | None] = list(config)
    if len(configs) != count:
        raise UsageError(
            f"batch() got {len(configs)} configs for {count} inputs; give one config, or one "
            "per input"
        )
    return configs


class _Invocable(Protocol):
    async def ainvoke(
        self, messages: ModelInput, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AIMessage: ...


_M = TypeVar("_M", bound=_Invocable)


class RunnableMethods(Generic[_M]):
    """The methods LangChain users call on a chat model besides ``invoke`` and ``stream``.

    A base of :class:`~rxagent.chat_models.BaseChatModel` (``RunnableMethods[BaseChatModel]``);
    every method works on any model, the wrapped ones included.

    The wrapper classes subclass ``BaseChatModel``, so this module cannot import them (nor
    ``_base``, which imports this one): ``_wrappers.py`` hands them over when it is imported,
    which ``rxagent.chat_models`` does before any model can exist.
    """

    __slots__ = ()
    _wrappers: ClassVar[dict[str, Callable[..., Any]]] = {}

    def _model(self) -> _M:
        return cast(_M, self)

    def bind(self, **kwargs: Any) -> _M:
        """The same model with request parameters fixed for every call.

        ``model.bind(temperature=0)``, ``model.bind(logprobs=True)``, ``model.bind(stop=[...])``:
        the parameters go in each request's body (a call's own keyword arguments override
        them). The result is a chat model like any other: it streams, and it goes to
        ``create_agent``.
        """
        return cast(_M, self._wrappers["bound"](self, kwargs=kwargs))

    def with_config(
        self, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> _M:
        """The same model with a ``config`` for every call: ``tags`` (in the stream metadata
        of a call made in a run, as the model's own tags are) and ``metadata`` (merged into
        that metadata).

        Raises:
            UsageError: a config key a model call cannot honour; ``callbacks``, which a model
                does not keep (give them to each call's or run's config).
        """
        merged = {**(config or {}), **kwargs}
        if merged.get("callbacks"):
            raise UsageError("with_config(callbacks=...): a model does not keep handlers; pass "
                             "config={'callbacks': [...]} to each call, or to the agent's run")
        read = read_config(merged)
        return cast(_M, self._wrappers["bound"](self, tags=read.tags, metadata=read.metadata))

    def with_retry(
        self,
        *,
        retry_if_exception_type: tuple[type[BaseException], ...] = (Exception,),
        wait_exponential_jitter: bool = True,
        exponential_jitter_params: ExponentialJitterParams | None = None,
        stop_after_attempt: int = 3,
    ) -> _M:
        """The same model, a failed call made again (LangChain's signature).

        ``invoke``/``ainvoke``/``batch`` make the whole call again, as LangChain does. A stream
        (and so an agent's model step) is made again only while none of its chunks has been
        delivered: after that a second reply would repeat what the consumer already has, so
        the error goes out with its ``partial`` reply. (LangChain's ``stream`` is not retried
        at all.)

        Args:
            retry_if_exception_type: the errors worth another attempt.
            wait_exponential_jitter: wait between attempts, longer each time, with jitter;
                ``False`` tries again at once.
            exponential_jitter_params: ``initial`` (1 s), ``max`` (60 s), ``exp_base`` (2),
                ``jitter`` (1 s).
            stop_after_attempt: the most attempts, the first included.

        Raises:
            UsageError: ``stop_after_attempt`` is not a positive int.
        """
        return cast(_M, self._wrappers["retry"](
            self,
            retry_if_exception_type=retry_if_exception_type,
            wait_exponential_jitter=wait_exponential_jitter,
            exponential_jitter_params=exponential_jitter_params,
            stop_after_attempt=stop_after_attempt,
        ))

    def with_fallbacks(
        self,
        fallbacks: Sequence[_M],
        *,
        exceptions_to_handle: tuple[type[BaseException], ...] = (Exception,),
        exception_key: str | None = None,
    ) -> _M:
        """This model, then each of ``fallbacks`` in turn while a call fails (LangChain's
        signature). If all fail, the first model's error is raised.

        ``invoke``/``ainvoke``/``batch`` move on after a failure anywhere in the call; a stream
        moves on only while none of its chunks has been delivered, as LangChain's does.

        Args:
            fallbacks: chat models to try after this one, in order.
            exceptions_to_handle: the errors that move on to the next model.
            exception_key: not supported (a model's input is no dict to put the error in).

        Raises:
            UsageError: ``exception_key`` is given, or a fallback is not a chat model.
        """
        if exception_key is not None:
            raise UsageError(
                "with_fallbacks(exception_key=...) passes the error in a dict input; a chat "
                "model's input is a conversation, so it cannot be honoured here"
            )
        return cast(_M, self._wrappers["fallbacks"](
            self, fallbacks, exceptions_to_handle=exceptions_to_handle
        ))

    @overload
    async def abatch(
        self,
        inputs: Sequence[ModelInput],
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        return_exceptions: Literal[False] = False,
        **kwargs: Any,
    ) -> list[AIMessage]: ...

    @overload
    async def abatch(
        self,
        inputs: Sequence[ModelInput],
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        return_exceptions: Literal[True],
        **kwargs: Any,
    ) -> list[AIMessage | Exception]: ...

    async def abatch(
        self,
        inputs: Sequence[ModelInput],
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage] | list[AIMessage | Exception]:
        """One ``ainvoke`` per input, at most ``config["max_concurrency"]`` at once; the
        replies in the order of the inputs.

        Args:
            inputs: the conversations (or strings), one per call.
            config: one config for every call, or one per input.
            return_exceptions: put a failed call's error in its place instead of raising
                the first failure (which cancels the calls still running).
            **kwargs: request parameters for every call.
        """
        results: list[AIMessage | Exception | None] = [None] * len(inputs)
        async for index, result in self._calls(inputs, config, return_exceptions, kwargs):
            results[index] = result
        return results  # type: ignore[return-value]  # every place is filled

    @overload
    def batch(
        self,
        inputs: Sequence[ModelInput],
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        return_exceptions: Literal[False] = False,
        **kwargs: Any,
    ) -> list[AIMessage]: ...

    @overload
    def batch(
        self,
        inputs: Sequence[ModelInput],
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        return_exceptions: Literal[True],
        **kwargs: Any,
    ) -> list[AIMessage | Exception]: ...

    def batch(
        self,
        inputs: Sequence[ModelInput],
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage] | list[AIMessage | Exception]:
        """:meth:`abatch` from sync code: the calls run concurrently on an event loop."""
        return run_sync(  # type: ignore[no-any-return]
            lambda: self.abatch(  # type: ignore[call-overload]
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        )

    async def abatch_as_completed(
        self,
        inputs: Sequence[ModelInput],
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> AsyncIterator[tuple[int, AIMessage | Exception]]:
        """:meth:`abatch`, each reply as its call ends: ``(index of the input, reply)``."""
        async for pair in self._calls(inputs, config, return_exceptions, kwargs):
            yield pair

    def batch_as_completed(
        self,
        inputs: Sequence[ModelInput],
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> Iterator[tuple[int, AIMessage | Exception]]:
        """:meth:`batch`, each reply as its call ends: ``(index of the input, reply)``.

        The calls run on an event loop in a worker thread while this one takes the replies.
        """
        done = object()
        replies: queue.SimpleQueue[Any] = queue.SimpleQueue()

        async def collect() -> None:
            async for pair in self._calls(inputs, config, return_exceptions, kwargs):
                replies.put(pair)

        def work() -> None:
            try:
                anyio.run(collect)
            except BaseException as error:  # handed to the caller's thread
                replies.put(error)
            replies.put(done)

        worker = threading.Thread(target=work, name="rxagent-batch", daemon=True)
        worker.start()
        try:
            while (item := replies.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            worker.join()

    async def _calls(
        self,
        inputs: Sequence[ModelInput],
        config: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
        return_exceptions: bool,
        kwargs: dict[str, Any],
    ) -> AsyncIterator[tuple[int, AIMessage | Exception]]:
        # Each call in a task of its own, at most max_concurrency at once (the first config's,
        # as LangChain reads it); the replies as they come. A failure cancels the others
        # unless it is returned.
        if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
            raise UsageError(f"batch() takes a list of inputs, got {inputs!r}")
        configs = _configs(config, len(inputs))
        read = [read_config(one) for one in configs]
        limit = next((r.max_concurrency for r in read if r.max_concurrency), None)
        slots = anyio.Semaphore(limit or max(len(inputs), 1))
        send, receive = anyio.create_memory_object_stream[tuple[int, Any]](len(inputs) or 1)

        failures: list[Exception] = []

        async def call(index: int) -> None:
            async with slots:
                try:
                    reply: AIMessage | Exception = await self._model().ainvoke(
                        inputs[index], configs[index], **kwargs
                    )
                except Exception as error:
                    if not return_exceptions:
                        # Raised as it is after the others are cancelled, not in a group.
                        failures.append(error)
                        tasks.cancel_scope.cancel()
                        return
                    reply = error
            send.send_nowait((index, reply))  # never waits: room for every reply

        with send, receive:
            async with anyio.create_task_group() as tasks:
                for index in range(len(inputs)):
                    tasks.start_soon(call, index)
                for _ in range(len(inputs)):
                    yield await receive.receive()
        if failures:
            raise failures[0]
