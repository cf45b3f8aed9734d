"""``ContextEditingMiddleware``: trim what the model is shown, not what the state keeps.

Before each model call the middleware applies its edits to a copy of the conversation; the
built-in :class:`ClearToolUsesEdit` replaces older tool results with a placeholder once the
conversation is over a token count (Anthropic's ``clear_tool_uses`` context editing, done on
the client for any model). The state's messages are left as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, Protocol

from .._exceptions import UsageError
from .._message_utils import count_tokens_approximately
from .._messages import AIMessage, BaseMessage, ToolMessage
from ._types import AgentMiddleware, ModelCallResult, ModelRequest, ModelResponse

__all__ = ["DEFAULT_TOOL_PLACEHOLDER", "ClearToolUsesEdit", "ContextEdit",
           "ContextEditingMiddleware"]

DEFAULT_TOOL_PLACEHOLDER = "[cleared]"

TokenCounter = Callable[[Sequence[BaseMessage]], int]


class ContextEdit(Protocol):
    """An edit of the messages a model call is given: ``apply`` changes the list in place
    (replace its items; the messages themselves are copies, but share their nested values
    with the state's)."""

    def apply(self, messages: list[BaseMessage], *, count_tokens: TokenCounter) -> None:
        """Edit ``messages`` in place."""
        ...


@dataclasses.dataclass(slots=True)
class ClearToolUsesEdit:
    """Replace older tool results with ``placeholder`` once the conversation is over
    ``trigger`` tokens.

    Attributes:
        trigger: the token count over which the edit runs.
        clear_at_least: stop clearing once this many tokens are reclaimed (0: clear them all).
        keep: how many of the latest tool results are never cleared.
        clear_tool_inputs: also empty the arguments of the calls whose results are cleared.
        exclude_tools: names of tools whose results are never cleared.
        placeholder: what a cleared result says.
    """

    trigger: int = 100_000
    clear_at_least: int = 0
    keep: int = 3
    clear_tool_inputs: bool = False
    exclude_tools: Sequence[str] = ()
    placeholder: str = DEFAULT_TOOL_PLACEHOLDER

    def __post_init__(self) -> None:
        for field in ("trigger", "clear_at_least", "keep"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"ClearToolUsesEdit({field}=...) is an int >= 0, got {value!r}")

    def apply(self, messages: list[BaseMessage], *, count_tokens: TokenCounter) -> None:
        """Clear the older tool results of ``messages`` (in place)."""
        before = count_tokens(messages)
        if before <= self.trigger:
            return
        results = [i for i, m in enumerate(messages) if isinstance(m, ToolMessage)]
        older = results[:max(0, len(results) - self.keep)]
        for position in older:
            result = messages[position]
            assert isinstance(result, ToolMessage)
            if result.response_metadata.get("context_editing", {}).get("cleared"):
                continue
            caller = _caller(messages, position, result.tool_call_id)
            if caller is None:
                continue
            at, call = caller
            if (result.name or call["name"]) in self.exclude_tools:
                continue
            messages[position] = result.model_copy(update={
                "content": self.placeholder, "artifact": None,
                "response_metadata": {**result.response_metadata, "context_editing": {
                    "cleared": True, "strategy": "clear_tool_uses"}},
            })
            if self.clear_tool_inputs:
                messages[at] = _without_args(messages[at], result.tool_call_id)
            if self.clear_at_least and before - count_tokens(messages) >= self.clear_at_least:
                return


def _caller(messages: list[BaseMessage], position: int, call_id: str
            ) -> tuple[int, Any] | None:
    """The nearest AI message before ``position`` and its call ``call_id``, if it made it."""
    for at in range(position - 1, -1, -1):
        message = messages[at]
        if isinstance(message, AIMessage):
            call = next((c for c in message.tool_calls if c["id"] == call_id), None)
            return None if call is None else (at, call)
    return None


def _without_args(message: BaseMessage, call_id: str) -> BaseMessage:
    assert isinstance(message, AIMessage)
    calls = [{**call, "args": {}} if call["id"] == call_id else call
             for call in message.tool_calls]
    entry = dict(message.response_metadata.get("context_editing", {}))
    entry["cleared_tool_inputs"] = sorted({*entry.get("cleared_tool_inputs", []), call_id})
    return message.model_copy(update={
        "tool_calls": calls,
        "response_metadata": {**message.response_metadata, "context_editing": entry},
    })


class ContextEditingMiddleware(AgentMiddleware[Any, Any]):
    """Apply context edits to what each model call is shown.

    Args:
        edits: the edits, applied in order; by default one :class:`ClearToolUsesEdit()`.
        token_count_method: ``"approximate"`` (:func:`~rxagent.messages.
            count_tokens_approximately`); LangChain's ``"model"`` (the model's own
            tokenizer) is not supported: pass ``token_counter`` instead.
        token_counter: counts the tokens of a list of messages; wins over
            ``token_count_method``.

    Raises:
        UsageError: ``token_count_method="model"`` without a ``token_counter``, or another
            method.
    """

    def __init__(
        self,
        *,
        edits: Iterable[ContextEdit] | None = None,
        token_count_method: Literal["approximate", "model"] = "approximate",
        token_counter: TokenCounter | None = None,
    ) -> None:
        if token_counter is None and token_count_method != "approximate":
            raise UsageError(
                f"token_count_method={token_count_method!r} is not supported (rxagent's models "
                "have no tokenizer): use 'approximate', or pass token_counter="
            )
        self.edits: list[ContextEdit] = list(edits or (ClearToolUsesEdit(),))
        self.token_count_method = token_count_method
        self.token_counter: TokenCounter = token_counter or count_tokens_approximately

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse],
    ) -> ModelCallResult:
        """Call the model with the edited messages."""
        return handler(self._edited(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse]],
    ) -> ModelCallResult:
        """As :meth:`wrap_model_call`, for the async handler."""
        return await handler(self._edited(request))

    def _edited(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        if not request.messages:
            return request
        # Copies, so an edit that sets a field in place leaves the state's message alone.
        messages = [message.model_copy() for message in request.messages]
        for edit in self.edits:
            edit.apply(messages, count_tokens=self.token_counter)
        return request.override(messages=messages)

    def __repr__(self) -> str:
        return f"ContextEditingMiddleware(edits={self.edits!r})"
