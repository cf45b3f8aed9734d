"""The middleware interface: :class:`AgentMiddleware`, its hooks, and what they are given.

A middleware's hooks become steps of the agent's run, named as LangChain names them
(``"<name>.before_model"``), so ``updates`` shows them; ``wrap_model_call`` and
``wrap_tool_call`` wrap the model call and each tool call inside their steps. The agent loop
(``rxagent/_agent_graph.py``) decides which hooks a middleware has by looking at which methods
its class overrides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from .._fast_rx import consume
from .._messages import (
    AIMessage,
    BaseMessage,
    ChunkAccumulator,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from .._state_schema import AgentState, JumpTo
from .._tools import BaseTool, ToolRuntime
from ..chat_models._base import BaseChatModel
from ..runtime import Runtime

if TYPE_CHECKING:
    from .._interrupts import Command

__all__ = [
    "HOOKS",
    "AgentMiddleware",
    "ExtendedModelResponse",
    "ModelCallResult",
    "ModelRequest",
    "ModelResponse",
    "ToolCallRequest",
    "hook_config",
]

ContextT = TypeVar("ContextT")
StateT = TypeVar("StateT")
CallableT = TypeVar("CallableT", bound=Callable[..., Any])

HOOKS = ("before_agent", "before_model", "after_model", "after_agent")
"""The hooks that are steps of their own, in the order a run meets them."""


@dataclasses.dataclass
class ModelRequest(Generic[ContextT]):
    """One model call, as ``wrap_model_call`` sees it: change it with :meth:`override` and
    hand it to the handler.

    Attributes:
        model: the chat model to call.
        messages: the conversation, without the system message.
        system_message: put before the conversation, or ``None``.
        tool_choice: passed to the model as ``tool_choice=`` when not ``None``.
        tools: the tools the model may call (tool objects or spec dicts).
        response_format: the agent's structured output format, or ``None``.
        state: the agent's state as the model step began.
        runtime: the run (its ``context``, ``store``, ``stream_writer``).
        model_settings: extra parameters for this call (``temperature``...).
    """

    model: BaseChatModel
    messages: list[BaseMessage]
    system_message: SystemMessage | None = None
    tool_choice: Any = None
    tools: list[BaseTool | dict[str, Any]] = dataclasses.field(default_factory=list)
    response_format: Any = None
    state: dict[str, Any] = dataclasses.field(default_factory=dict)
    runtime: Runtime[ContextT] = dataclasses.field(default_factory=Runtime)
    model_settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def system_prompt(self) -> str | None:
        """The system message's text, or ``None``."""
        return None if self.system_message is None else self.system_message.text

    def override(self, **overrides: Any) -> ModelRequest[ContextT]:
        """A copy with ``overrides`` (``model=``, ``messages=``, ``system_message=``,
        ``system_prompt=`` as a str, ``tools=``, ``tool_choice=``, ``model_settings=``...).

        Raises:
            ValueError: both ``system_prompt`` and ``system_message`` are given, or a name
                that is not a field.
        """
        if "system_prompt" in overrides:
            if "system_message" in overrides:
                raise ValueError("give system_prompt or system_message, not both")
            prompt = overrides.pop("system_prompt")
            overrides["system_message"] = None if prompt is None else SystemMessage(content=prompt)
        return dataclasses.replace(self, **overrides)


@dataclasses.dataclass
class ModelResponse:
    """What a model call gave: its messages (the reply) and the structured response, if the
    agent has a response format."""

    result: list[BaseMessage]
    structured_response: Any = None


@dataclasses.dataclass
class ExtendedModelResponse:
    """A :class:`ModelResponse` with a ``Command`` whose ``update`` the model step also
    writes to the state."""

    model_response: ModelResponse
    command: Command | None = None


ModelCallResult = ModelResponse | AIMessage | ExtendedModelResponse
"""What ``wrap_model_call`` returns: a response, a bare reply, or a response with a command."""


@dataclasses.dataclass
class ToolCallRequest:
    """One tool call, as ``wrap_tool_call`` sees it.

    Attributes:
        tool_call: the call (``name``, ``args``, ``id``).
        tool: the tool it names, or ``None`` if the agent has no such tool.
        state: the agent's state as the tool step began.
        runtime: the tool's runtime (state, context, store, writer, call id).
    """

    tool_call: ToolCall
    tool: BaseTool | None
    state: dict[str, Any]
    runtime: ToolRuntime[Any, Any]

    def override(self, **overrides: Any) -> ToolCallRequest:
        """A copy with ``overrides`` (``tool_call=``, ``tool=``, ``state=``)."""
        if "state" in overrides:
            overrides["runtime"] = dataclasses.replace(self.runtime, state=overrides["state"])
        return dataclasses.replace(self, **overrides)


class AgentMiddleware(Generic[StateT, ContextT]):
    """A middleware: hooks that run as steps of the agent's loop, and wrappers around its model
    and tool calls. Override the ones you need; each has a sync and an async form, and the run
    uses the async one where it is overridden.

    - ``before_agent`` / ``after_agent``: once per run, first and last;
    - ``before_model`` / ``after_model``: around every model step;
    - ``wrap_model_call(request, handler)``: around the model call itself; ``handler(request)``
      makes the call, which still streams its tokens;
    - ``wrap_tool_call(request, handler)``: around each tool call.

    A hook returns ``None`` or an update of the state (``{"messages": [...]}``, keys of its
    ``state_schema``, and ``"jump_to"``: ``"model"``, ``"tools"`` or ``"end"``, where
    :func:`hook_config` allows it).

    Attributes:
        state_schema: an :class:`~rxagent.AgentState` subclass whose keys join the agent's state.
        tools: tools the middleware adds to the agent.
    """

    state_schema: ClassVar[type[Any]] = AgentState
    tools: Sequence[BaseTool] = ()

    @property
    def name(self) -> str:
        """The middleware's name, in its steps' names (``"<name>.before_model"``): its class
        name unless the class sets another."""
        return type(self).__name__

    def before_agent(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Once, as the run starts."""
        return None

    async def abefore_agent(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Once, as the run starts (async form)."""
        return None

    def before_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Before each model step."""
        return None

    async def abefore_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Before each model step (async form)."""
        return None

    def after_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """After each model step."""
        return None

    async def aafter_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """After each model step (async form)."""
        return None

    def after_agent(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Once, as the run ends."""
        return None

    async def aafter_agent(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Once, as the run ends (async form)."""
        return None

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse],
    ) -> ModelCallResult:
        """Around the model call: ``return handler(request)`` makes it."""
        return handler(request)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse]],
    ) -> ModelCallResult:
        """Around the model call (async form): ``return await handler(request)``."""
        return await handler(request)

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command],
    ) -> ToolMessage | Command:
        """Around each tool call: ``return handler(request)`` runs the tool."""
        return handler(request)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command]],
    ) -> ToolMessage | Command:
        """Around each tool call (async form): ``return await handler(request)``."""
        return await handler(request)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def hook_config(
    *, can_jump_to: list[JumpTo] | None = None
) -> Callable[[CallableT], CallableT]:
    """Say where a hook may send the run with ``"jump_to"``: ``@hook_config(can_jump_to=
    ["end"])`` on a ``before_model`` method, say. A jump a hook is not allowed is ignored."""

    def mark(func: CallableT) -> CallableT:
        func.__can_jump_to__ = list(can_jump_to or ())  # type: ignore[attr-defined]
        return func

    return mark


def overrides(middleware: AgentMiddleware[Any, Any], hook: str) -> tuple[bool, bool]:
    """Whether ``middleware``'s class overrides the sync and the async form of ``hook``."""
    cls = type(middleware)
    sync_name = hook
    async_name = "a" + hook
    return (getattr(cls, sync_name) is not getattr(AgentMiddleware, sync_name),
            getattr(cls, async_name) is not getattr(AgentMiddleware, async_name))


def can_jump_to(middleware: AgentMiddleware[Any, Any], hook: str) -> list[str]:
    """Where ``middleware``'s ``hook`` may jump, from :func:`hook_config` on either form."""
    for name in (hook, "a" + hook):
        marked = getattr(getattr(type(middleware), name), "__can_jump_to__", None)
        if marked:
            return list(marked)
    return []


_FAILS_RUN = "_rxagent_fails_run"


def fails_run(exc: Exception) -> Exception:
    """Mark a tool's exception that a ``wrap_tool_call`` wrapper raises on purpose: the run
    fails with it, instead of the call getting the error answer an unhandled failure gets
    (``ToolRetryMiddleware(on_failure="error")``)."""
    setattr(exc, _FAILS_RUN, True)
    return exc


def meant_to_fail_run(exc: BaseException) -> bool:
    """Whether ``exc`` went through :func:`fails_run`."""
    return bool(getattr(exc, _FAILS_RUN, False))


async def unreported_reply(model: BaseChatModel, messages: Sequence[Any],
                           **kwargs: Any) -> AIMessage:
    """The whole reply of a model call a middleware makes for itself (a summary, a tool
    selection, an emulated tool result): ``stream_raw`` keeps it out of the run's ``messages``
    mode, as LangChain tags such calls ``nostream``, since it is no part of the agent's reply."""
    accumulator = ChunkAccumulator()
    await consume(model.stream_raw(messages, **kwargs), accumulator.add)
    return accumulator.to_message()
