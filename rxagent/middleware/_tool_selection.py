"""``LLMToolSelectorMiddleware``: a model picks the tools the agent's model is offered.

Before each model call, a selection model is shown the last user message and the agent's
tools (names and descriptions) and answers with a forced call of a ``ToolSelectionResponse``
tool: ``{"tools": [names...]}``. The model call then gets those tools only (plus
``always_include`` ones and any provider tool dicts). The selection call is kept out of the
run's ``messages`` mode, as LangChain tags it ``nostream``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .._exceptions import ToolSelectionError, UsageError
from .._messages import BaseMessage, HumanMessage, SystemMessage
from .._threads import run_sync
from .._tools import BaseTool
from ..chat_models._anthropic import ChatAnthropic
from ..chat_models._base import BaseChatModel
from ..chat_models._init import init_chat_model
from ..chat_models._openai import ChatOpenAI
from ._types import (
    AgentMiddleware,
    ModelCallResult,
    ModelRequest,
    ModelResponse,
    unreported_reply,
)

__all__ = ["DEFAULT_SYSTEM_PROMPT", "LLMToolSelectorMiddleware"]

DEFAULT_SYSTEM_PROMPT = "Choose the tools best suited to answer the user's message."
"""The selection model's instructions."""

SELECTION_TOOL = "ToolSelectionResponse"

OnParsingFailure: TypeAlias = (
    "Literal['error', 'none', 'all'] | list[str] | Callable[[Any], list[str]]"
)


@dataclass
class _Selection:
    """What one selection needs: the tools to choose from and the call to make."""

    choices: list[BaseTool]
    messages: list[BaseMessage]
    model: BaseChatModel


class LLMToolSelectorMiddleware(AgentMiddleware[Any, Any]):
    """Let a model choose which of the agent's tools each model call is offered.

    Args:
        model: the selection model (a chat model or model string); by default the agent's.
        system_prompt: the selection model's instructions.
        max_tools: use at most this many of the chosen tools (the first ones).
        always_include: names of tools always offered, not chosen nor counted.
        max_retries: how many more times to ask when the answer is malformed.
        on_parsing_failure: once the retries are spent: ``"error"`` (raise
            :class:`~rxagent.middleware.ToolSelectionError`), ``"none"`` (no tools),
            ``"all"``, a list of tool names, or a function from the last answer to names.

    Raises:
        UsageError: ``max_retries < 0``, or ``max_tools < 1``.
    """

    def __init__(
        self,
        *,
        model: str | BaseChatModel | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_tools: int | None = None,
        always_include: list[str] | None = None,
        max_retries: int = 1,
        on_parsing_failure: OnParsingFailure = "error",
    ) -> None:
        if max_retries < 0:
            raise UsageError(f"max_retries must be >= 0, got {max_retries!r}")
        if max_tools is not None and max_tools < 1:
            raise UsageError(f"max_tools must be >= 1 (or None), got {max_tools!r}")
        self.model = init_chat_model(model) if isinstance(model, str) else model
        self.system_prompt = system_prompt
        self.max_tools = max_tools
        self.always_include = list(always_include or [])
        self.max_retries = max_retries
        self.on_parsing_failure = on_parsing_failure

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse],
    ) -> ModelCallResult:
        """Choose the tools, then call the model with them."""
        selection = self._selection(request)
        if selection is None:
            return handler(request)
        answer = run_sync(lambda: self._ask(selection))
        return handler(self._narrowed(request, selection, answer))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse]],
    ) -> ModelCallResult:
        """As :meth:`wrap_model_call`, for the async handler."""
        selection = self._selection(request)
        if selection is None:
            return await handler(request)
        answer = await self._ask(selection)
        return await handler(self._narrowed(request, selection, answer))

    def _selection(self, request: ModelRequest[Any]) -> _Selection | None:
        tools = [t for t in request.tools if isinstance(t, BaseTool)]
        names = {tool.name for tool in tools}
        missing = [name for name in self.always_include if name not in names]
        if missing:
            raise UsageError(f"always_include names tools the model call does not have: "
                             f"{missing}; it has {sorted(names)}")
        choices = [tool for tool in tools if tool.name not in self.always_include]
        if not choices:
            return None
        question = next((m for m in reversed(request.messages)
                         if isinstance(m, HumanMessage)), None)
        if question is None:
            raise UsageError("LLMToolSelectorMiddleware chooses tools for the last user "
                             "message, and the conversation has none")
        prompt = self.system_prompt
        if self.max_tools is not None:
            prompt += (f"\nName the tools most useful first: only the first {self.max_tools} "
                       "you name will be used.")
        return _Selection(choices, [SystemMessage(content=prompt), question],
                          self.model or request.model)

    async def _ask(self, selection: _Selection) -> list[str]:
        """The chosen names: asked up to ``1 + max_retries`` times, then the fallback."""
        answer: Any = None
        for _ in range(1 + self.max_retries):
            answer = await _choice(selection)
            if isinstance(answer, dict) and isinstance(answer.get("tools"), list):
                return self._capped(answer["tools"], selection)
        return self._fallback(answer, selection)

    def _capped(self, chosen: list[Any], selection: _Selection) -> list[str]:
        valid = {tool.name for tool in selection.choices}
        wrong = [name for name in chosen if name not in valid]
        if wrong:
            raise ToolSelectionError(f"Model selected invalid tools: {wrong}")
        names: list[str] = []
        for name in chosen:
            if name not in names and (self.max_tools is None or len(names) < self.max_tools):
                names.append(name)
        return names

    def _fallback(self, answer: Any, selection: _Selection) -> list[str]:
        fallback = self.on_parsing_failure
        if fallback == "error":
            raise ToolSelectionError(
                f"LLMToolSelectorMiddleware: selection model returned a malformed response "
                f"after {self.max_retries} retries (expected a dict with a 'tools' list): "
                f"{answer!r}"
            )
        if fallback == "none":
            return []
        if fallback == "all":
            return [tool.name for tool in selection.choices]
        names = list(fallback(answer) if callable(fallback) else fallback)
        valid = {tool.name for tool in selection.choices}
        wrong = [name for name in names if name not in valid]
        if wrong:  # a deliberate choice: not capped by max_tools, but it must exist
            raise ToolSelectionError(f"on_parsing_failure selected invalid tools: {wrong}")
        return names

    def _narrowed(self, request: ModelRequest[Any], selection: _Selection,
                  names: list[str]) -> ModelRequest[Any]:
        kept: list[BaseTool | dict[str, Any]] = [
            tool for tool in selection.choices if tool.name in names]
        kept += [t for t in request.tools
                 if isinstance(t, BaseTool) and t.name in self.always_include]
        kept += [t for t in request.tools if isinstance(t, dict)]
        return request.override(tools=kept)

    def __repr__(self) -> str:
        return f"LLMToolSelectorMiddleware(max_tools={self.max_tools!r})"


async def _choice(selection: _Selection) -> Any:
    """One selection call: the arguments of its ``ToolSelectionResponse`` call, or ``None``."""
    spec = _selection_spec(selection.choices)
    reply = await unreported_reply(selection.model, selection.messages, tools=[spec],
                                   **_forced(selection.model))
    return next((call["args"] for call in reply.tool_calls if call["name"] == SELECTION_TOOL),
                None)


def _forced(model: BaseChatModel) -> dict[str, Any]:
    """The provider's ``tool_choice`` that makes the model call the selection tool."""
    if isinstance(model, ChatAnthropic):
        return {"tool_choice": {"type": "tool", "name": SELECTION_TOOL}}
    if isinstance(model, ChatOpenAI):
        return {"tool_choice": {"type": "function", "function": {"name": SELECTION_TOOL}}}
    return {}  # test models and others: the prompt and the single tool have to do


def _selection_spec(tools: list[BaseTool]) -> dict[str, Any]:
    return {
        "name": SELECTION_TOOL,
        "description": "Use to select relevant tools.",
        "parameters": {
            "type": "object",
            "properties": {"tools": {
                "type": "array",
                "description": "Tools to use. Place the most relevant tools first.",
                "items": {"anyOf": [{"const": tool.name, "type": "string",
                                     "description": tool.description} for tool in tools]},
            }},
            "required": ["tools"],
        },
    }
