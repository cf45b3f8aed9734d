"""Chat models: a model call is a cold Observable of message chunks.

Providers speak their wire format over an injectable ``httpx.AsyncClient``: :class:`ChatOpenAI`
(OpenAI's Chat Completions, and every server that speaks it), :class:`AzureChatOpenAI` (its
deployments on Azure), :class:`ChatOllama` (the same, pointed at a local Ollama), the same
again with the URL and key variable of Groq, DeepSeek, Together, Fireworks, xAI, Mistral,
OpenRouter, Gemini and the local vLLM, LM Studio and llama.cpp servers (:class:`ChatGroq`...),
and :class:`ChatAnthropic` (Anthropic's Messages API).
:func:`init_chat_model` makes one from a model string such as ``"openai:gpt-4o-mini"``. The
test models live in :mod:`rxagent.testing`.

Writing a provider for another API takes only names from here (``docs/providers.md`` walks
through one):

- :class:`BaseChatModel`: implement ``_produce``, which pushes the reply's chunks and consults
  the :class:`Demand` before each read;
- :class:`HTTPChatModel`: for an HTTP streaming API, implement ``_request`` (a
  :class:`StreamRequest`) and ``_parser`` (a :class:`WireParser`), and ``_decoder`` (an
  :class:`EventDecoder`) when the body is not server-sent events (:class:`SSEDecoder`,
  :class:`ServerSentEvent`); retries (:class:`RetryPolicy`), :class:`Timeouts`, keys, errors,
  the demand and cancellation come with it;
- :func:`make_chunk`: the chunks of a reply, built fast.
"""

from .._chunks import make_chunk
from .._demand import Demand
from ._anthropic import ChatAnthropic
from ._base import BaseChatModel, DisableStreaming, ToolSpec
from ._compatible import (
    AzureChatOpenAI,
    ChatDeepSeek,
    ChatFireworks,
    ChatGeminiOpenAI,
    ChatGroq,
    ChatLlamaCpp,
    ChatLMStudio,
    ChatMistralAI,
    ChatOpenRouter,
    ChatTogether,
    ChatVLLM,
    ChatXAI,
)
from ._configurable import ConfigurableChatModel
from ._http import EventDecoder, HTTPChatModel, StreamRequest, Timeouts, WireParser
from ._init import init_chat_model
from ._openai import ChatOllama, ChatOpenAI
from ._retry import RetryPolicy
from ._sse import ServerSentEvent, SSEDecoder
from ._wrappers import BoundChatModel, FallbackChatModel, RetryChatModel

__all__ = [
    "AzureChatOpenAI",
    "BaseChatModel",
    "BoundChatModel",
    "ChatAnthropic",
    "ChatDeepSeek",
    "ChatFireworks",
    "ChatGeminiOpenAI",
    "ChatGroq",
    "ChatLMStudio",
    "ChatLlamaCpp",
    "ChatMistralAI",
    "ChatOllama",
    "ChatOpenAI",
    "ChatOpenRouter",
    "ChatTogether",
    "ChatVLLM",
    "ChatXAI",
    "ConfigurableChatModel",
    "Demand",
    "DisableStreaming",
    "EventDecoder",
    "FallbackChatModel",
    "HTTPChatModel",
    "RetryChatModel",
    "RetryPolicy",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamRequest",
    "Timeouts",
    "ToolSpec",
    "WireParser",
    "init_chat_model",
    "make_chunk",
]
