"""Callback handlers, as ``langchain_core.callbacks`` has them.

Give handlers in a run's config, ``agent.invoke(..., config={"callbacks": [handler]})``, or a
model call's, ``model.invoke(messages, config={"callbacks": [handler]})``. rxagent calls their
methods by name, with LangChain's arguments (``run_id``, ``parent_run_id``, ``tags``,
``metadata``), so a handler written for LangChain works unchanged and rxagent does not depend
on LangChain:

- the agent run and each of its nodes: ``on_chain_start``, ``on_chain_end``,
  ``on_chain_error``;
- each model call: ``on_chat_model_start``, ``on_llm_new_token`` (with ``chunk=``),
  ``on_llm_end`` (an :class:`LLMResult`), ``on_llm_error``;
- each tool call: ``on_tool_start``, ``on_tool_end``, ``on_tool_error``;
- :func:`dispatch_custom_event`: ``on_custom_event``.

An :class:`AsyncCallbackHandler`'s methods are awaited, in order, by a task on the loop they
were called on; an agent run ends once they have all been, a model called on its own does not
wait for them. A handler that raises is logged and the run goes on, unless its ``raise_error`` is
true. Models always stream here, so ``on_llm_new_token`` comes under ``invoke()`` too (in
LangChain only when something consumes the stream).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._callbacks import (
    ChatGeneration,
    ChatGenerationChunk,
    LLMResult,
    current_scope,
    handler_in_context,
)
from ._context import current_run
from ._exceptions import UsageError
from ._merge import add_usage
from ._messages import AIMessage

__all__ = [
    "AsyncCallbackHandler",
    "BaseCallbackHandler",
    "ChatGeneration",
    "ChatGenerationChunk",
    "LLMResult",
    "UsageMetadataCallbackHandler",
    "adispatch_custom_event",
    "dispatch_custom_event",
    "get_usage_metadata_callback",
]


class BaseCallbackHandler:
    """A handler whose methods do nothing: override the ones you need.

    ``ignore_chain``, ``ignore_llm``, ``ignore_chat_model``, ``ignore_agent`` (tools) and
    ``ignore_custom_event`` turn a group of events off; ``raise_error`` lets an exception in a
    method end the run instead of being logged.
    """

    raise_error: bool = False
    run_inline: bool = False
    ignore_chain: bool = False
    ignore_llm: bool = False
    ignore_chat_model: bool = False
    ignore_agent: bool = False
    ignore_retriever: bool = False
    ignore_retry: bool = False
    ignore_custom_event: bool = False

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: uuid.UUID,
                       **kwargs: Any) -> Any:
        """An agent run or one of its nodes starts (``name=`` names it)."""

    def on_chain_end(self, outputs: Any, *, run_id: uuid.UUID, **kwargs: Any) -> Any:
        """It ended with ``outputs`` (a node's update, the agent's final state)."""

    def on_chain_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> Any:
        """It failed."""

    def on_chat_model_start(self, serialized: Any, messages: list[list[Any]], *,
                            run_id: uuid.UUID, **kwargs: Any) -> Any:
        """A model call starts with ``messages[0]``."""

    def on_llm_new_token(self, token: str, *, chunk: Any = None, run_id: uuid.UUID,
                         **kwargs: Any) -> Any:
        """A chunk arrived (``chunk.message``); ``token`` is its text."""

    def on_llm_end(self, response: LLMResult, *, run_id: uuid.UUID, **kwargs: Any) -> Any:
        """The call ended: ``response.generations[0][0].message`` is the reply."""

    def on_llm_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> Any:
        """The call failed."""

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: uuid.UUID,
                      **kwargs: Any) -> Any:
        """A tool call starts (``inputs=`` has its arguments)."""

    def on_tool_end(self, output: Any, *, run_id: uuid.UUID, **kwargs: Any) -> Any:
        """It answered ``output`` (a ``ToolMessage``)."""

    def on_tool_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> Any:
        """It raised (the model still gets an error message)."""

    def on_custom_event(self, name: str, data: Any, *, run_id: uuid.UUID,
                        **kwargs: Any) -> Any:
        """:func:`dispatch_custom_event` was called in the run ``run_id``."""


class AsyncCallbackHandler(BaseCallbackHandler):
    """A handler whose methods are coroutines: each is awaited, in order."""

    async def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: uuid.UUID,
                             **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_chain_start`."""

    async def on_chain_end(self, outputs: Any, *, run_id: uuid.UUID, **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_chain_end`."""

    async def on_chain_error(self, error: BaseException, *, run_id: uuid.UUID,
                             **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_chain_error`."""

    async def on_chat_model_start(self, serialized: Any, messages: list[list[Any]], *,
                                  run_id: uuid.UUID, **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_chat_model_start`."""

    async def on_llm_new_token(self, token: str, *, chunk: Any = None, run_id: uuid.UUID,
                               **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_llm_new_token`."""

    async def on_llm_end(self, response: LLMResult, *, run_id: uuid.UUID,
                         **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_llm_end`."""

    async def on_llm_error(self, error: BaseException, *, run_id: uuid.UUID,
                           **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_llm_error`."""

    async def on_tool_start(self, serialized: Any, input_str: str, *, run_id: uuid.UUID,
                            **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_tool_start`."""

    async def on_tool_end(self, output: Any, *, run_id: uuid.UUID, **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_tool_end`."""

    async def on_tool_error(self, error: BaseException, *, run_id: uuid.UUID,
                            **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_tool_error`."""

    async def on_custom_event(self, name: str, data: Any, *, run_id: uuid.UUID,
                              **kwargs: Any) -> Any:
        """See :meth:`BaseCallbackHandler.on_custom_event`."""


class UsageMetadataCallbackHandler(BaseCallbackHandler):
    """Adds up the token usage of every model call it hears of, by model name.

    Attributes:
        usage_metadata: ``{model_name: {"input_tokens", "output_tokens", "total_tokens",
            ...}}``; a call whose reply names no model, or has no usage, is not counted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # sync tools call models from worker threads
        self.usage_metadata: dict[str, dict[str, Any]] = {}

    def on_llm_end(self, response: LLMResult, *, run_id: uuid.UUID | None = None,
                   **kwargs: Any) -> None:
        """Count the reply's usage under its model's name."""
        generations = response.generations
        message = generations[0][0].message if generations and generations[0] else None
        if not isinstance(message, AIMessage) or not message.usage_metadata:
            return
        model = message.response_metadata.get("model_name")
        if not model:
            return
        with self._lock:
            self.usage_metadata[model] = add_usage(self.usage_metadata.get(model),
                                                   message.usage_metadata)

    def __repr__(self) -> str:
        return str(self.usage_metadata)


@contextmanager
def get_usage_metadata_callback(
    name: str = "usage_metadata_callback",
) -> Iterator[UsageMetadataCallbackHandler]:
    """Count the token usage of every model call made inside the ``with`` block::

        with get_usage_metadata_callback() as cb:
            agent.invoke({"messages": [("user", "hi")]})
        print(cb.usage_metadata)

    Args:
        name: kept for LangChain's signature (its context variable's name).
    """
    handler = UsageMetadataCallbackHandler()
    with handler_in_context(handler):
        yield handler


def dispatch_custom_event(name: str, data: Any, *, config: Mapping[str, Any] | None = None
                          ) -> None:
    """Send ``on_custom_event(name, data)`` to the handlers of the run this code is in (a tool
    of an agent run): ``astream_events(version="v2")`` shows it as an ``on_custom_event``
    event under the tool. Inside a run nobody listens to, nothing happens.

    Args:
        name: the event's name.
        data: what it carries.
        config: kept for LangChain's signature: the run is found from the context.

    Raises:
        UsageError: called outside any run.
    """
    scope = current_scope.get()
    if scope is None:
        if current_run.get() is None:
            raise UsageError(
                "dispatch_custom_event() tells the handlers of the run it is called in (a "
                "tool of an agent run), and this code runs in none"
            )
        return
    if scope.run_id is None:
        raise UsageError("dispatch_custom_event() needs a run to report under")
    scope.call("on_custom_event", name, data, run_id=scope.run_id, tags=list(scope.tags),
               metadata=dict(scope.metadata))


async def adispatch_custom_event(
    name: str, data: Any, *, config: Mapping[str, Any] | None = None
) -> None:
    """:func:`dispatch_custom_event` for async code."""
    dispatch_custom_event(name, data, config=config)
