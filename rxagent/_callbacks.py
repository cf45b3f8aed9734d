"""LangChain's callback handlers, called duck-typed: who is told what, under which parent run.

A run with ``config["callbacks"]`` (or inside ``get_usage_metadata_callback()``) puts a
:class:`Scope` in a context variable: the handlers, the run id that children take as
``parent_run_id``, and the tags and metadata they inherit. The agent, its nodes, its model
calls and its tools each open a child scope where they start and tell the handlers through
:meth:`Scope.call`, by method name, as LangChain's callback manager does; a handler object from
LangChain works unchanged, and rxagent never imports LangChain.

The cost when nobody listens is one context-variable read per model call, tool call and node,
none per token: the variable is ``None`` and nothing else happens.

A handler method that returns an awaitable (an ``AsyncCallbackHandler``'s) is awaited in
order, on the loop it was called on, by a task of the run's; the agent run waits for them all
before it ends. LangChain awaits each in place, holding the stream back; the Rx path cannot
wait in the middle of delivering a token.
"""

from __future__ import annotations

import inspect
import logging
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
from reactivex import abc

from ._exceptions import UsageError
from ._fast_rx import Trusted
from ._interrupts import GraphInterrupt
from ._loops import spawn
from ._messages import AIMessage, AIMessageChunk, BaseMessage, ChunkAccumulator, ToolMessage
from ._types import ModelInfo

__all__ = [
    "AgentCallbacks",
    "ChatGeneration",
    "ChatGenerationChunk",
    "LLMResult",
    "Scope",
    "ambient_handlers",
    "current_agent",
    "current_scope",
    "handlers_of",
    "model_scope",
    "start_tool",
]

log = logging.getLogger("rxagent.callbacks")


@dataclass
class ChatGenerationChunk:
    """One streamed chunk as ``on_llm_new_token(chunk=...)`` gets it (LangChain's shape)."""

    message: AIMessageChunk
    text: str = ""
    generation_info: dict[str, Any] | None = None


@dataclass
class ChatGeneration:
    """One reply of a model call, in :class:`LLMResult`'s ``generations``."""

    message: AIMessage
    text: str = ""
    generation_info: dict[str, Any] | None = None


@dataclass
class LLMResult:
    """What ``on_llm_end`` gets: ``generations[0][0].message`` is the whole reply."""

    generations: list[list[ChatGeneration]]
    llm_output: dict[str, Any] | None = None
    run: list[Any] | None = None
    type: str = "LLMResult"


class _Awaited:
    """The awaitables an async handler's methods returned, awaited in order by one task."""

    def __init__(self) -> None:
        self.queue: deque[Awaitable[Any]] = deque()
        self.lock = threading.Lock()
        self.draining = False

    def add(self, awaitable: Awaitable[Any]) -> None:
        with self.lock:
            self.queue.append(awaitable)
            if self.draining:
                return
            self.draining = True
        spawn(self._drain, on_error=_log_failure, on_completed=_nothing)

    async def _drain(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    self.draining = False
                    return
                awaitable = self.queue.popleft()
            await _await_logged(awaitable)

    async def settle(self) -> None:
        """Wait until the task draining the queue has awaited everything in it (one task
        awaits them all, so that they run in the order they were called)."""
        while self.draining:
            await anyio.sleep(0.001)


async def _await_logged(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as error:
        _log_failure(error)


def _log_failure(error: Exception) -> None:
    log.warning("a callback handler failed: %r", error)


def _nothing() -> None:
    pass


# The events LangChain lets a handler opt out of, by its ``ignore_*`` property.
_IGNORED_BY = {
    "on_chain_start": "ignore_chain", "on_chain_end": "ignore_chain",
    "on_chain_error": "ignore_chain", "on_chat_model_start": "ignore_chat_model",
    "on_llm_new_token": "ignore_llm", "on_llm_end": "ignore_llm", "on_llm_error": "ignore_llm",
    "on_tool_start": "ignore_agent", "on_tool_end": "ignore_agent",
    "on_tool_error": "ignore_agent", "on_custom_event": "ignore_custom_event",
}


class Scope:
    """Where a callback event happens: the handlers, the run its children hang under, what
    they inherit. ``node`` marks a graph node's scope (its model calls and tools are the
    second step of a sequence there, as LangChain tags them)."""

    __slots__ = ("awaited", "handlers", "metadata", "node", "run_id", "tags")

    def __init__(
        self,
        handlers: tuple[Any, ...],
        run_id: uuid.UUID | None,
        tags: list[str],
        metadata: dict[str, Any],
        awaited: _Awaited,
        *,
        node: bool = False,
    ) -> None:
        self.handlers = handlers
        self.run_id = run_id
        self.tags = tags
        self.metadata = metadata
        self.awaited = awaited
        self.node = node

    @classmethod
    def root(
        cls, handlers: Sequence[Any], tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> Scope:
        return cls(tuple(handlers), None, list(tags), dict(metadata or {}), _Awaited())

    def child(
        self, run_id: uuid.UUID, metadata: Mapping[str, Any] | None = None, *, node: bool = False
    ) -> Scope:
        """The scope of a run started here, for what runs inside it."""
        merged = {**self.metadata, **metadata} if metadata else self.metadata
        return Scope(self.handlers, run_id, self.tags, merged, self.awaited, node=node)

    def with_handlers(
        self, handlers: Sequence[Any], tags: Sequence[str], metadata: Mapping[str, Any] | None
    ) -> Scope:
        """This scope with a call's own ``config`` added (a model or tool called with one)."""
        known = set(map(id, self.handlers))
        return Scope(
            (*self.handlers, *(h for h in handlers if id(h) not in known)), self.run_id,
            [*self.tags, *(t for t in tags if t not in self.tags)],
            {**self.metadata, **(metadata or {})}, self.awaited, node=self.node,
        )

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Call ``method`` on every handler that has it and does not ignore it."""
        ignore = _IGNORED_BY.get(method)
        for handler in self.handlers:
            if ignore is not None and getattr(handler, ignore, False):
                continue
            function = getattr(handler, method, None)
            if function is None:
                continue
            try:
                result = function(*args, **kwargs)
                if inspect.isawaitable(result):
                    self.awaited.add(result)
            except NotImplementedError:
                if method == "on_chat_model_start":  # LangChain's fallback for text models
                    self._as_text_model(handler, *args, **kwargs)
            except Exception as error:
                if getattr(handler, "raise_error", False):
                    raise
                log.warning("callback handler %s.%s failed: %r",
                            type(handler).__name__, method, error)

    def _as_text_model(
        self, handler: Any, serialized: Any, messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        function = getattr(handler, "on_llm_start", None)
        if function is None:
            return
        prompts = ["\n".join(f"{m.type.capitalize()}: {m.text}" for m in batch)
                   for batch in messages]
        result = function(serialized, prompts, **kwargs)
        if inspect.isawaitable(result):
            self.awaited.add(result)


current_scope: ContextVar[Scope | None] = ContextVar("rxagent_callbacks", default=None)
"""The callback scope of the code running now; ``None`` when nobody listens."""

_ambient: ContextVar[tuple[Any, ...]] = ContextVar("rxagent_ambient_callbacks", default=())


def ambient_handlers() -> tuple[Any, ...]:
    """Handlers every run started here gets (``get_usage_metadata_callback``'s)."""
    return _ambient.get()


@contextmanager
def handler_in_context(handler: Any) -> Iterator[None]:
    """Give ``handler`` to every run and model call started in this block."""
    token = _ambient.set((*_ambient.get(), handler))
    try:
        yield
    finally:
        _ambient.reset(token)


def handlers_of(config: Mapping[str, Any] | None) -> list[Any]:
    """``config["callbacks"]``: a list of handlers, or a callback manager that holds them.

    Raises:
        UsageError: anything else.
    """
    given = (config or {}).get("callbacks")
    if given is None:
        return []
    if isinstance(given, (list, tuple)):
        return list(given)
    handlers = getattr(given, "handlers", None)  # LangChain's CallbackManager
    if isinstance(handlers, list):
        return list(handlers)
    raise UsageError(
        "config['callbacks'] is a list of callback handlers (objects with on_chain_start, "
        f"on_llm_new_token... methods), got {type(given).__name__}"
    )


def _call_scope(config: Mapping[str, Any] | None) -> Scope | None:
    """The scope a model or tool call made with ``config`` runs in: the current one, with the
    config's handlers, tags and metadata added; ``None`` when nobody listens."""
    scope = current_scope.get()
    handlers = handlers_of(config) if config else []
    if scope is None:
        handlers = [*ambient_handlers(), *handlers]
        if not handlers:
            return None
        return Scope.root(handlers, (config or {}).get("tags") or (),
                          (config or {}).get("metadata"))
    if config:
        return scope.with_handlers(handlers, config.get("tags") or (), config.get("metadata"))
    return scope


def model_scope(config: Mapping[str, Any] | None) -> Scope | None:
    """The callback scope of a model call about to start (``None`` when nobody listens)."""
    if config is None and current_scope.get() is None and not _ambient.get():
        return None
    return _call_scope(config)


class ModelCallback(Trusted[AIMessageChunk]):
    """Tells the handlers about one model call as its chunks pass on to ``observer``."""

    __slots__ = ("_kw", "_observer", "_reply", "_scope")

    def __init__(
        self,
        scope: Scope,
        model: ModelInfo,
        messages: list[BaseMessage],
        metadata: dict[str, Any],
        observer: abc.ObserverBase[AIMessageChunk],
    ) -> None:
        self._scope = scope
        self._observer = observer
        self._reply = ChunkAccumulator()
        run_id = uuid.uuid4()
        tags = [*(["seq:step:1"] if scope.node else []), *scope.tags, *model.tags]
        self._kw: dict[str, Any] = {
            "run_id": run_id, "parent_run_id": scope.run_id, "tags": tags,
        }
        name = type(model).__name__
        scope.call(
            "on_chat_model_start",
            {"lc": 1, "type": "not_implemented", "id": [type(model).__module__, name],
             "name": name},
            [list(messages)],
            metadata={**scope.metadata, **metadata},
            invocation_params={"model": model.model_name, "_type": model.provider,
                               "stop": None},
            options={"stop": None}, name=name, batch_size=1, **self._kw,
        )

    def on_next(self, chunk: AIMessageChunk) -> None:
        self._reply.add(chunk)
        text = chunk.text if isinstance(chunk.content, str) else ""
        self._scope.call("on_llm_new_token", text,
                         chunk=ChatGenerationChunk(message=chunk, text=text), **self._kw)
        self._observer.on_next(chunk)

    def on_error(self, error: Exception) -> None:
        self._scope.call("on_llm_error", error, **self._kw)
        self._observer.on_error(error)

    def on_completed(self) -> None:
        reply = self._reply.to_message()
        self._scope.call("on_llm_end", LLMResult(
            generations=[[ChatGeneration(message=reply, text=reply.text)]], llm_output=None,
        ), **self._kw)
        self._observer.on_completed()


class ToolRun:
    """One tool call, told to the handlers: start now, then :meth:`end`."""

    __slots__ = ("_kw", "_scope", "_token", "inputs")

    def __init__(self, scope: Scope, name: str, description: str, call: Mapping[str, Any]
                 ) -> None:
        self._scope = scope
        self.inputs = call.get("args") or {}
        run_id = uuid.uuid4()
        tags = [*(["seq:step:1"] if scope.node else []), *scope.tags]
        self._kw = {"run_id": run_id, "parent_run_id": scope.run_id, "tags": tags}
        metadata = dict(scope.metadata)
        if "langgraph_checkpoint_ns" in metadata:  # in a graph: its task's, as LangGraph adds
            metadata["checkpoint_ns"] = metadata["langgraph_checkpoint_ns"].partition("|")[0]
        scope.call(
            "on_tool_start", {"name": name, "description": description}, str(self.inputs),
            metadata=metadata, inputs=self.inputs, name=None, tool_call_id=call.get("id"),
            **self._kw,
        )
        self._token = current_scope.set(scope.child(run_id, metadata))

    def end(self, result: Any, name: str) -> None:
        current_scope.reset(self._token)
        error = getattr(result, "artifact", None)
        if (isinstance(result, ToolMessage) and result.status == "error"
                and isinstance(error, Exception)):
            self._scope.call("on_tool_error", error, **self._kw)
        else:
            self._scope.call("on_tool_end", result, name=name, **self._kw)

    def failed(self, error: BaseException) -> None:
        current_scope.reset(self._token)
        self._scope.call("on_tool_error", error, **self._kw)


def start_tool(
    name: str, description: str, call: Mapping[str, Any], config: Mapping[str, Any] | None = None
) -> ToolRun | None:
    """Tell the handlers a tool call starts (``None``, at no cost, when nobody listens)."""
    if config is None and current_scope.get() is None and not _ambient.get():
        return None
    scope = _call_scope(config)
    return ToolRun(scope, name, description, call) if scope is not None else None


@dataclass
class _Node:
    parent: Scope
    run_id: uuid.UUID
    tags: list[str]
    token: Any


class AgentCallbacks:
    """The handlers' view of one agent run's nodes: each task a chain run under the agent's."""

    __slots__ = ("open", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope  # the agent run's: its nodes hang under it
        self.open: dict[str, _Node] = {}

    def node_started(
        self, task_id: str, name: str, input: Any, step: int, metadata: dict[str, Any]
    ) -> None:
        parent = current_scope.get() or self.scope
        run_id = uuid.uuid4()
        tags = [f"graph:step:{step}", *parent.tags]
        parent.call("on_chain_start", None, input, run_id=run_id, parent_run_id=parent.run_id,
                    tags=tags, metadata={**parent.metadata, **metadata}, name=name)
        token = current_scope.set(parent.child(run_id, metadata, node=True))
        self.open[task_id] = _Node(parent, run_id, tags, token)

    def node_finished(self, task_id: str, output: Any, interrupts: Sequence[Any]) -> None:
        node = self.open.pop(task_id, None)
        if node is None:
            return
        current_scope.set(node.parent)
        kw = {"run_id": node.run_id, "parent_run_id": node.parent.run_id, "tags": node.tags}
        if interrupts:  # LangGraph's node raised GraphInterrupt through its run
            node.parent.call("on_chain_error", GraphInterrupt(tuple(interrupts)), **kw)
        else:
            node.parent.call("on_chain_end", output, **kw)

    def fail_open(self, error: BaseException) -> None:
        """The run failed: the nodes still open failed with it, the latest first."""
        for task_id in reversed(list(self.open)):
            node = self.open.pop(task_id)
            node.parent.call("on_chain_error", error, run_id=node.run_id,
                             parent_run_id=node.parent.run_id, tags=node.tags)


current_agent: ContextVar[AgentCallbacks | None] = ContextVar(
    "rxagent_agent_callbacks", default=None)
"""The agent run whose nodes the handlers hear about, if any."""
