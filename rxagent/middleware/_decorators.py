"""Middleware from a function: ``@before_model``, ``@wrap_tool_call``, ``@dynamic_prompt``...

Each decorator makes a one-hook :class:`AgentMiddleware` subclass named after the function
(so its step is ``"<function name>.before_model"``) and returns an instance of it. A
coroutine function becomes the hook's async form.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, overload

from .._messages import SystemMessage
from .._state_schema import AgentState
from .._tools import BaseTool
from ._types import AgentMiddleware, ModelRequest

__all__ = [
    "after_agent",
    "after_model",
    "before_agent",
    "before_model",
    "dynamic_prompt",
    "wrap_model_call",
    "wrap_tool_call",
]

Decorated = Callable[[Callable[..., Any]], AgentMiddleware[Any, Any]]


def _middleware(
    hook: str,
    func: Callable[..., Any],
    *,
    state_schema: type[Any] | None,
    tools: Sequence[BaseTool] | None,
    can_jump_to: list[str] | None,
    name: str | None,
) -> AgentMiddleware[Any, Any]:
    if not callable(func):
        raise TypeError(f"@{hook} decorates a function, got {type(func).__name__}")
    jumps = can_jump_to if can_jump_to is not None else getattr(func, "__can_jump_to__", None)
    if inspect.iscoroutinefunction(func):
        async def async_hook(self: AgentMiddleware[Any, Any], *args: Any) -> Any:
            return await func(*args)

        method: Callable[..., Any] = async_hook
        attribute = "a" + hook
    else:
        def sync_hook(self: AgentMiddleware[Any, Any], *args: Any) -> Any:
            return func(*args)

        method = sync_hook
        attribute = hook
    if jumps:
        method.__can_jump_to__ = list(jumps)  # type: ignore[attr-defined]
    class_name = name or getattr(func, "__name__", None) or f"{hook}_middleware"
    cls = type(class_name, (AgentMiddleware,), {
        attribute: method,
        "state_schema": state_schema or AgentState,
        "tools": list(tools or ()),
        "__doc__": getattr(func, "__doc__", None),
    })
    instance: AgentMiddleware[Any, Any] = cls()
    return instance


def _state_hook(hook: str) -> Callable[..., Any]:
    @overload
    def decorator(func: Callable[..., Any]) -> AgentMiddleware[Any, Any]: ...
    @overload
    def decorator(
        func: None = None,
        *,
        state_schema: type[Any] | None = None,
        tools: Sequence[BaseTool] | None = None,
        can_jump_to: list[str] | None = None,
        name: str | None = None,
    ) -> Decorated: ...

    def decorator(
        func: Callable[..., Any] | None = None,
        *,
        state_schema: type[Any] | None = None,
        tools: Sequence[BaseTool] | None = None,
        can_jump_to: list[str] | None = None,
        name: str | None = None,
    ) -> AgentMiddleware[Any, Any] | Decorated:
        def make(function: Callable[..., Any]) -> AgentMiddleware[Any, Any]:
            return _middleware(hook, function, state_schema=state_schema, tools=tools,
                               can_jump_to=can_jump_to, name=name)

        return make if func is None else make(func)

    decorator.__name__ = decorator.__qualname__ = hook
    decorator.__doc__ = (
        f"A middleware whose ``{hook}`` hook is the decorated function ``(state, runtime) -> "
        "dict | None`` (sync or async); its step is named ``\"<function name>." + hook + "\"``."
        "\n\nArgs:\n    func: the hook (or ``None``, to configure the decorator first).\n"
        "    state_schema: keys the hook adds to the agent's state.\n"
        "    tools: tools the middleware adds to the agent.\n"
        "    can_jump_to: where the hook's ``\"jump_to\"`` may send the run.\n"
        "    name: the middleware's name, instead of the function's.\n"
    )
    return decorator


before_agent = _state_hook("before_agent")
before_model = _state_hook("before_model")
after_model = _state_hook("after_model")
after_agent = _state_hook("after_agent")


def _call_wrapper(hook: str) -> Callable[..., Any]:
    def decorator(
        func: Callable[..., Any] | None = None,
        *,
        state_schema: type[Any] | None = None,
        tools: Sequence[BaseTool] | None = None,
        name: str | None = None,
    ) -> AgentMiddleware[Any, Any] | Decorated:
        def make(function: Callable[..., Any]) -> AgentMiddleware[Any, Any]:
            return _middleware(hook, function, state_schema=state_schema, tools=tools,
                               can_jump_to=None, name=name)

        return make if func is None else make(func)

    decorator.__name__ = decorator.__qualname__ = hook
    what = "model call" if hook == "wrap_model_call" else "tool call"
    decorator.__doc__ = (
        f"A middleware whose ``{hook}`` is the decorated function ``(request, handler)`` (sync "
        f"or async): it wraps each {what}, which ``handler(request)`` makes."
        "\n\nArgs:\n    func: the wrapper (or ``None``, to configure the decorator first).\n"
        "    state_schema: keys the middleware adds to the agent's state.\n"
        "    tools: tools the middleware adds to the agent.\n"
        "    name: the middleware's name, instead of the function's.\n"
    )
    return decorator


wrap_model_call = _call_wrapper("wrap_model_call")
wrap_tool_call = _call_wrapper("wrap_tool_call")


def dynamic_prompt(func: Callable[..., Any]) -> AgentMiddleware[Any, Any]:
    """A middleware that sets each model call's system prompt to what ``func(request)``
    returns (a str or a ``SystemMessage``; sync or async)."""
    if inspect.iscoroutinefunction(func):
        async def async_wrapper(request: ModelRequest[Any], handler: Any) -> Any:
            return await handler(_prompted(request, await func(request)))

        wrapper: Callable[..., Any] = async_wrapper
    else:
        def sync_wrapper(request: ModelRequest[Any], handler: Any) -> Any:
            return handler(_prompted(request, func(request)))

        wrapper = sync_wrapper
    wrapper.__name__ = getattr(func, "__name__", "dynamic_prompt")
    return _middleware("wrap_model_call", wrapper, state_schema=None, tools=None,
                       can_jump_to=None, name=None)


def _prompted(request: ModelRequest[Any], prompt: Any) -> ModelRequest[Any]:
    message = prompt if isinstance(prompt, SystemMessage) else SystemMessage(content=str(prompt))
    return request.override(system_message=message)
