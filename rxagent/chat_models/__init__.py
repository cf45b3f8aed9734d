"""Chat models: a model call is a cold Observable of message chunks.

Providers speak their wire format over an injectable ``httpx.AsyncClient``: :class:`ChatOpenAI`
(OpenAI's Chat Completions, and every server that speaks it), :class:`ChatOllama` (the same,
pointed at a local Ollama) and :class:`ChatAnthropic` (Anthropic's Messages API).
:func:`init_chat_model` makes one from a model string such as ``"openai:gpt-4o-mini"``. The
test models live in :mod:`rxagent.testing`.
"""

from ._anthropic import ChatAnthropic
from ._base import BaseChatModel, DisableStreaming, ToolSpec
from ._http import Timeouts
from ._init import init_chat_model
from ._openai import ChatOllama, ChatOpenAI

__all__ = [
    "BaseChatModel",
    "ChatAnthropic",
    "ChatOllama",
    "ChatOpenAI",
    "DisableStreaming",
    "Timeouts",
    "ToolSpec",
    "init_chat_model",
]
