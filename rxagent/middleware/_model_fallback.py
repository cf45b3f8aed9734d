"""``ModelFallbackMiddleware``: when the agent's model fails, call other models in turn.

Each attempt streams its tokens to ``messages`` mode as they come, the failed one's too, so a
fallback is visible; cancelling the run during an attempt stops it there, and no later model
is called.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .._exceptions import UsageError
from .._messages import AIMessage
from ..chat_models._base import BaseChatModel
from ..chat_models._init import init_chat_model
from ._retry import CONTROL_FLOW, wait_unless_cancelled
from ._types import AgentMiddleware, ModelRequest, ModelResponse

__all__ = ["ModelFallbackMiddleware"]


def _chat_model(model: Any) -> BaseChatModel:
    if isinstance(model, BaseChatModel):
        return model
    if isinstance(model, str):
        return init_chat_model(model)
    raise UsageError(f"a fallback model is a chat model or a model string such as "
                     f"'openai:gpt-4o-mini', got {model!r}")


class ModelFallbackMiddleware(AgentMiddleware[Any, Any]):
    """Call other models in turn when the agent's model fails.

    The agent's own model is called first; if it fails, ``first_model``, then each of
    ``additional_models``, with the same request, until one answers. When all fail, the last
    failure is raised. An interrupt is never taken for a failure.

    Args:
        first_model: the first fallback: a chat model, or a model string for
            :func:`~rxagent.chat_models.init_chat_model`.
        *additional_models: the next fallbacks, in order.

    Raises:
        ModelSpecError: a model string no provider resolves.
        UsageError: a fallback that is neither a chat model nor a string.
    """

    def __init__(self, first_model: str | BaseChatModel,
                 *additional_models: str | BaseChatModel) -> None:
        self.models: list[BaseChatModel] = [
            _chat_model(model) for model in (first_model, *additional_models)]

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse],
    ) -> ModelResponse | AIMessage:
        """The first answer of the agent's model and then each fallback."""
        try:
            return handler(request)
        except CONTROL_FLOW:
            raise
        except Exception as exc:
            failure = exc
        for model in self.models:
            if not wait_unless_cancelled(0):
                break  # the run was cancelled: what this returns is dropped anyway
            try:
                return handler(request.override(model=model))
            except CONTROL_FLOW:
                raise
            except Exception as exc:
                failure = exc
        raise failure

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse]],
    ) -> ModelResponse | AIMessage:
        """As :meth:`wrap_model_call`, for the async handler."""
        try:
            return await handler(request)
        except CONTROL_FLOW:
            raise
        except Exception as exc:
            failure = exc
        for model in self.models:
            try:
                return await handler(request.override(model=model))
            except CONTROL_FLOW:
                raise
            except Exception as exc:
                failure = exc
        raise failure

    def __repr__(self) -> str:
        return f"ModelFallbackMiddleware({', '.join(repr(m) for m in self.models)})"
