"""``LLMToolEmulator``: a model makes up the tools' results, for testing an agent without them.

Each emulated call is answered by one model call (kept out of the run's ``messages`` mode, as
LangChain tags it ``nostream``) that is shown the tool's name, description and arguments; its
text becomes the call's ``ToolMessage``. The tool itself never runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from .._interrupts import Command
from .._messages import HumanMessage, ToolMessage
from .._threads import run_sync
from .._tools import BaseTool
from ..chat_models._base import BaseChatModel
from ..chat_models._init import init_chat_model
from ._types import AgentMiddleware, ToolCallRequest, unreported_reply

__all__ = ["LLMToolEmulator"]

DEFAULT_EMULATOR_MODEL = "anthropic:claude-sonnet-4-5-20250929"
"""LangChain's default emulator model, kept (with its deprecation warning) so code moved over
behaves the same."""


class LLMToolEmulator(AgentMiddleware[Any, Any]):
    """Answer tool calls with a model's made-up results instead of running the tools.

    Args:
        tools: names or tools to emulate; ``None`` (the default) emulates every tool, ``[]``
            none.
        model: the emulating model (a chat model or model string). Leaving it out uses
            LangChain's default, ``"anthropic:claude-sonnet-4-5-20250929"``, with a
            ``DeprecationWarning`` as LangChain gives.
    """

    def __init__(
        self,
        *,
        tools: list[str | BaseTool] | None = None,
        model: str | BaseChatModel | None = None,
    ) -> None:
        self.emulate_all = tools is None
        self.tools_to_emulate = {t if isinstance(t, str) else t.name for t in tools or []}
        if model is None:
            warnings.warn(
                f"LLMToolEmulator's default model ({DEFAULT_EMULATOR_MODEL!r}) is deprecated; "
                "pass model= explicitly", DeprecationWarning, stacklevel=2)
            model = DEFAULT_EMULATOR_MODEL
        # temperature=1: LangChain asks the emulator for varied results.
        self.model = init_chat_model(model, temperature=1) if isinstance(model, str) else model

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command],
    ) -> ToolMessage | Command:
        """The emulated result, or the real call for a tool that is not emulated."""
        if not self._emulates(request):
            return handler(request)
        return run_sync(lambda: self._emulate(request))

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command]],
    ) -> ToolMessage | Command:
        """As :meth:`wrap_tool_call`, for the async handler."""
        if not self._emulates(request):
            return await handler(request)
        return await self._emulate(request)

    def _emulates(self, request: ToolCallRequest) -> bool:
        return self.emulate_all or request.tool_call["name"] in self.tools_to_emulate

    async def _emulate(self, request: ToolCallRequest) -> ToolMessage:
        call = request.tool_call
        description = request.tool.description if request.tool else "No description available"
        prompt = (
            "You are emulating a tool call for testing purposes.\n\n"
            f"Tool: {call['name']}\nDescription: {description}\nArguments: {call['args']}\n\n"
            "Reply with the output this tool would return for these arguments, and nothing "
            "else: no explanation, no preamble. Vary your replies."
        )
        reply = await unreported_reply(self.model, [HumanMessage(content=prompt)])
        return ToolMessage(content=reply.content,
                           tool_call_id=call["id"] or "", name=call["name"])

    def __repr__(self) -> str:
        which = "all" if self.emulate_all else sorted(self.tools_to_emulate)
        return f"LLMToolEmulator(tools={which!r}, model={self.model!r})"
