"""An agent's steps with its middleware: which node follows which, and how hooks are called.

Without middleware the loop is two nodes, ``model`` and ``tools``. Each middleware hook is a
node of its own, named and ordered as LangChain's ``create_agent`` names and orders them, so
``updates`` shows the same steps:

- ``before_agent`` hooks once (in the middleware's order), then the loop;
- the loop: ``before_model`` hooks (in order), ``model``, ``after_model`` hooks (in reverse
  order), then ``tools`` if the reply called any (and its calls are not all answered), back to
  the first ``before_model``;
- ``after_agent`` hooks once, in reverse order, as the run ends.

A hook's ``"jump_to"`` (``"model"``, ``"tools"``, ``"end"``) sends the run elsewhere where the
hook allows it (:func:`~rxagent.middleware.hook_config`); the last ``after_model`` hook's jump is
always followed, as LangChain's edge after it reads it.

``wrap_model_call`` and ``wrap_tool_call`` wrap the call inside the ``model`` and ``tools``
steps, the first middleware outermost. A sync hook or wrapper runs where a sync tool runs
(``rxagent/_scheduler.py``); a sync wrapper's ``handler`` makes its call on the worker
thread's own loop, stopped if the run is cancelled.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ._exceptions import InvalidUpdateError, UsageError
from ._interrupts import Command
from ._loops import claim_for_asyncio
from ._messages import AIMessage, BaseMessage, ToolMessage
from ._per_loop import thread_loop
from ._scheduler import SyncToolPlacement, when_cancelled
from ._state_schema import StateKey, state_keys_of
from ._thread_views import last_reply, pending_calls
from ._tools import BaseTool
from .middleware._types import (
    HOOKS,
    AgentMiddleware,
    ExtendedModelResponse,
    ModelRequest,
    ModelResponse,
    ToolCallRequest,
    can_jump_to,
    meant_to_fail_run,
    overrides,
)
from .runtime import Runtime

__all__ = ["AgentGraph", "HookNode", "ModelCalls", "ToolCalls"]

END = None  # where the run ends: no node


class HookNode:
    """One middleware hook, a node of the agent's graph."""

    __slots__ = ("_async", "_placement", "_sync", "hook", "jumps", "middleware", "name")

    def __init__(self, middleware: AgentMiddleware[Any, Any], hook: str) -> None:
        self.middleware = middleware
        self.hook = hook
        self.name = f"{middleware.name}.{hook}"
        self.jumps = frozenset(can_jump_to(middleware, hook))
        has_sync, has_async = overrides(middleware, hook)
        self._async = getattr(middleware, "a" + hook) if has_async else None
        self._sync = getattr(middleware, hook) if has_sync else None
        self._placement = SyncToolPlacement(None, reaches_run=False)

    async def __call__(self, state: dict[str, Any], runtime: Runtime[Any]) -> Any:
        """The hook's update of the state (or ``None``)."""
        if self._async is not None:
            return await self._async(state, runtime)
        return await self._placement.call(
            contextvars.copy_context(), _positional, {"fn": self._sync, "args": (state, runtime)}
        )


def _positional(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return fn(*args)


class AgentGraph:
    """The nodes of an agent with its middleware, and the edges between them."""

    def __init__(
        self,
        middleware: Sequence[AgentMiddleware[Any, Any]],
        *,
        has_tools: bool,
        output_tools: frozenset[str] = frozenset(),
    ) -> None:
        names = [m.name for m in middleware]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise UsageError(f"two middleware share the name(s) {repeated}; each middleware "
                             "appears once (a name is its class name, or the function's)")
        chains: dict[str, list[HookNode]] = {hook: [] for hook in HOOKS}
        for item in middleware:
            for hook in HOOKS:
                if any(overrides(item, hook)):
                    chains[hook].append(HookNode(item, hook))
        # after_* hooks run from the last middleware to the first, as LangChain runs them.
        chains["after_model"].reverse()
        chains["after_agent"].reverse()
        self.hooks: dict[str, HookNode] = {h.name: h for c in chains.values() for h in c}
        self._following: dict[str, str | None] = {}
        self.has_tools = has_tools
        # The response format's output tools: their answers end the run, as LangChain's edges
        # read them.
        self.output_tools = output_tools
        self.loop_entry = chains["before_model"][0].name if chains["before_model"] else "model"
        self.entry = chains["before_agent"][0].name if chains["before_agent"] else self.loop_entry
        self.exit = chains["after_agent"][0].name if chains["after_agent"] else END
        self.loop_exit = chains["after_model"][-1].name if chains["after_model"] else "model"
        for chain, then in (("before_agent", self.loop_entry), ("before_model", "model"),
                            ("after_model", None), ("after_agent", END)):
            nodes = chains[chain]
            if not nodes:
                continue
            for node, following in zip(nodes, [*(n.name for n in nodes[1:]), then],
                                       strict=True):
                self._following[node.name] = following
        if chains["after_model"]:
            self._following["model"] = chains["after_model"][0].name
        self.nodes = frozenset({"model", *(("tools",) if has_tools else ()), *self.hooks})
        self.model_calls = ModelCalls([m for m in middleware
                                       if any(overrides(m, "wrap_model_call"))])
        self.tool_calls = ToolCalls([m for m in middleware if any(overrides(m, "wrap_tool_call"))])

    def after(self, node: str, jump_to: Any, messages: Sequence[BaseMessage],
              returns_directly: Callable[[AIMessage, Sequence[ToolMessage]], bool],
              *, answered: bool = False) -> str | None:
        """The node after ``node``, which wrote ``jump_to`` (or ``None``); ``messages`` is the
        state's conversation after it, ``answered`` whether it holds a structured response."""
        if node == "tools":
            reply, answers = last_reply(messages)
            if reply is not None and returns_directly(reply, answers):
                return self.exit
            if any(m.name in self.output_tools and m.status != "error" for m in answers):
                return self.exit  # the output tool answered beside the other calls
            return self.loop_entry
        hook = self.hooks.get(node)
        if jump_to and ((node == self.loop_exit and (self.has_tools or bool(self.output_tools)))
                        or (hook is not None and jump_to in hook.jumps)):
            return self._jump(jump_to)
        if node == self.loop_exit:
            if not self.has_tools:
                # With output tools, the model goes again until it gives an answer.
                return self.exit if answered or not self.output_tools else self.loop_entry
            reply, answers = last_reply(messages)
            if reply is None or (not reply.tool_calls and not _invalid_calls(reply)):
                return self.exit
            if pending_calls(reply, answers) or _invalid_calls(reply):
                return "tools"
            if answered:
                return self.exit
            # Every call answered already: a middleware answered them, or the step told the
            # model what was wrong with its structured answer.
            return self.loop_entry
        return self._following[node]

    def before(self, next_nodes: Sequence[str], messages: Sequence[BaseMessage]) -> str:
        """The node that ran last before a checkpoint whose ``next`` is ``next_nodes`` (the
        node a state update without ``as_node`` counts as)."""
        if not next_nodes:  # the run ended: after its last after_agent hook, or the loop
            last_exit = [n for n, f in self._following.items()
                         if f is None and self.hooks[n].hook == "after_agent"]
            return last_exit[0] if last_exit else self.loop_exit
        following = next_nodes[0]
        if following == "__start__":
            return "__start__"
        if following == "tools":
            return self.loop_exit
        if following == self.loop_entry and messages and isinstance(messages[-1], ToolMessage):
            return "tools"
        if following == self.entry:
            return "__start__"
        earlier = [n for n, f in self._following.items() if f == following]
        return earlier[0] if earlier else "__start__"

    def _jump(self, jump_to: Any) -> str | None:
        if jump_to == "model":
            return self.loop_entry
        if jump_to == "end":
            return self.exit
        if jump_to == "tools":
            return "tools" if self.has_tools else self.exit
        raise UsageError(f"jump_to is 'model', 'tools' or 'end', got {jump_to!r}")


def _invalid_calls(reply: AIMessage) -> list[Any]:
    return [c for c in reply.invalid_tool_calls if c.get("id")]


def middleware_state_keys(middleware: Sequence[AgentMiddleware[Any, Any]]) -> list[StateKey]:
    """The state keys the middleware's schemas add."""
    keys: list[StateKey] = []
    for item in middleware:
        keys.extend(state_keys_of(type(item).state_schema,
                                  what=f"{item.name}'s state_schema"))
    return keys


def middleware_tools(middleware: Sequence[AgentMiddleware[Any, Any]]) -> list[BaseTool]:
    return [tool for item in middleware for tool in (item.tools or ())]


def check_middleware(middleware: Any) -> list[AgentMiddleware[Any, Any]]:
    """``create_agent``'s ``middleware=``, checked.

    Raises:
        UsageError: it is not a list of :class:`AgentMiddleware` instances.
    """
    if middleware is None:
        return []
    if isinstance(middleware, AgentMiddleware) or not isinstance(middleware, Sequence):
        raise UsageError("middleware is a list of AgentMiddleware instances, got "
                         f"{type(middleware).__name__}; a single one goes in a list of one")
    for item in middleware:
        if not isinstance(item, AgentMiddleware):
            hint = " (a class: instantiate it)" if isinstance(item, type) else ""
            raise UsageError(f"middleware items are AgentMiddleware instances, got "
                             f"{item!r}{hint}")
    return list(middleware)


# -- calls wrapped by middleware ------------------------------------------------------------


def _blocking(work: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``work()`` from a sync wrapper in a worker thread, on that thread's own loop, so
    that a ``handler(request)`` call blocks as LangChain's does; the run's cancellation
    stops it (it is a task there)."""
    loop = thread_loop()

    async def main() -> Any:
        # The context came from the run's task, maybe a trio one: here asyncio runs it.
        claim_for_asyncio(None)
        return await work()

    task = loop.create_task(main())

    def cancel() -> None:
        loop.call_soon_threadsafe(task.cancel)

    withdraw = when_cancelled(cancel)
    try:
        return loop.run_until_complete(task)
    finally:
        withdraw()


class _WrappedCalls:
    """A chain of ``wrap_model_call`` or ``wrap_tool_call`` wrappers: the first middleware
    outermost, the call itself (``base``) inside. A sync wrapper runs where its
    ``placement`` puts it, and its ``handler`` blocks on the rest of the chain
    (:func:`_blocking`)."""

    def __init__(self, wrappers: Sequence[AgentMiddleware[Any, Any]], hook: str,
                 placement: Callable[[], SyncToolPlacement]) -> None:
        self._hook = hook
        self._links = [(m, overrides(m, hook)[1], placement()) for m in wrappers]

    def __bool__(self) -> bool:
        return bool(self._links)

    async def _run(
        self,
        request: Any,
        base: Callable[[Any], Awaitable[Any]],
        settle: Callable[[Any, AgentMiddleware[Any, Any]], Any],
        layer: Callable[[], Callable[[], None]],
    ) -> Any:
        """The result of ``request`` through the chain. ``settle`` checks (and unwraps) what
        each wrapper returned; ``layer()`` runs as a wrapper starts, and what it returns runs
        each time the wrapper calls its handler."""

        async def call(index: int, request: Any) -> Any:
            if index == len(self._links):
                return await base(request)
            middleware, is_async, placement = self._links[index]
            again = layer()

            def inner(request: Any) -> Awaitable[Any]:
                again()
                return call(index + 1, request)

            if is_async:
                result = await getattr(middleware, "a" + self._hook)(request, inner)
            else:
                def handler(request: Any) -> Any:
                    return _blocking(lambda: inner(request))

                result = await placement.call(contextvars.copy_context(), _positional, {
                    "fn": getattr(middleware, self._hook), "args": (request, handler)})
            return settle(result, middleware)

        return await call(0, request)


class ModelCalls(_WrappedCalls):
    """The ``wrap_model_call`` chain around the model call."""

    def __init__(self, wrappers: Sequence[AgentMiddleware[Any, Any]]) -> None:
        # A sync wrapper always gets a thread: its handler makes a model call.
        super().__init__(wrappers, "wrap_model_call",
                         lambda: SyncToolPlacement(True, reaches_run=True))

    async def __call__(
        self,
        request: ModelRequest[Any],
        base: Callable[[ModelRequest[Any]], Awaitable[ModelResponse]],
        commands: list[Command],
    ) -> ModelResponse:
        """The response of ``request`` through the chain; the commands of any
        ``ExtendedModelResponse`` go into ``commands``, innermost first."""

        def layer() -> Callable[[], None]:
            mark = len(commands)

            def again() -> None:
                # A wrapper that calls its handler again (a retry) keeps only the last
                # call's commands from the layers inside it.
                del commands[mark:]

            return again

        response: ModelResponse = await self._run(
            request, base, lambda result, middleware: _response(result, middleware, commands),
            layer)
        return response


def _response(result: Any, middleware: AgentMiddleware[Any, Any],
              commands: list[Command]) -> ModelResponse:
    if isinstance(result, ModelResponse):
        return result
    if isinstance(result, AIMessage):
        return ModelResponse(result=[result])
    if isinstance(result, ExtendedModelResponse):
        if result.command is not None:
            commands.append(result.command)
        return result.model_response
    raise UsageError(f"{middleware.name}.wrap_model_call returns a ModelResponse, an AIMessage "
                     f"or an ExtendedModelResponse, got {type(result).__name__}")


class ToolCalls(_WrappedCalls):
    """The ``wrap_tool_call`` chain around each tool call."""

    def __init__(self, wrappers: Sequence[AgentMiddleware[Any, Any]]) -> None:
        super().__init__(wrappers, "wrap_tool_call",
                         lambda: SyncToolPlacement(None, reaches_run=False))

    async def __call__(
        self,
        request: ToolCallRequest,
        base: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command]],
    ) -> ToolMessage | Command:
        """The answer to ``request`` through the chain.

        Inside the chain a tool's exception is raised, as LangChain's handler raises it, so a
        wrapper's ``try``/``except`` sees it. One that comes out of the chain unhandled gets
        the error answer it would have had without middleware (rxagent's tools answer their
        failures), unless a wrapper raised it with :func:`~rxagent.middleware._types.fails_run`.
        """
        failures: dict[int, ToolMessage] = {}  # id(exception) -> its error answer

        async def raising(request: ToolCallRequest) -> ToolMessage | Command:
            result = await base(request)
            failure = tool_failure(result, request)
            if failure is None:
                return result
            assert isinstance(result, ToolMessage)
            failures[id(failure)] = result
            raise failure

        try:
            result: ToolMessage | Command = await self._run(
                request, raising, _tool_result, _no_layer)
        except Exception as exc:
            answer = failures.get(id(exc))
            if answer is None or meant_to_fail_run(exc):
                raise
            return answer
        return result


def tool_failure(result: ToolMessage | Command, request: ToolCallRequest) -> Exception | None:
    """The exception a tool raised, from the error answer its call made of it; ``None`` for
    any other answer. Arguments the tool's schema refused are not such a failure: LangChain's
    tool node answers those without raising."""
    if not isinstance(result, ToolMessage) or result.status != "error":
        return None
    exc = result.artifact
    if not isinstance(exc, Exception):
        return None
    tool = request.tool
    if (isinstance(exc, ValidationError) and tool is not None
            and exc.title == getattr(tool.args_schema, "__name__", None)):
        return None
    return exc


def _tool_result(result: Any, middleware: AgentMiddleware[Any, Any]) -> ToolMessage | Command:
    if not isinstance(result, (ToolMessage, Command)):
        raise UsageError(f"{middleware.name}.wrap_tool_call returns a ToolMessage or a "
                         f"Command, got {type(result).__name__}")
    return result


def _no_layer() -> Callable[[], None]:
    return _nothing


def _nothing() -> None:
    pass


def hook_update(node: str, update: Any, known: Sequence[str]) -> dict[str, Any]:
    """A hook's return value as a state update (``{}`` for ``None``).

    Raises:
        InvalidUpdateError: it is not a dict, or it writes a key the state does not have.
    """
    if update is None:
        return {}
    if isinstance(update, Command):
        raise UsageError(f"{node} returned a Command; a hook returns a dict update (use "
                         "'jump_to' in it to go elsewhere)")
    if not isinstance(update, Mapping):
        raise InvalidUpdateError(f"{node} returns a dict update of the state or None, got "
                                 f"{type(update).__name__}")
    unknown = sorted(str(k) for k in update if k not in ("messages", "jump_to") and k not in known)
    if unknown:
        raise InvalidUpdateError(
            f"{node} updates key(s) {unknown} that the agent's state does not have; declare "
            "them in the middleware's state_schema"
        )
    return dict(update)
