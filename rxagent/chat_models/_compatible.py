"""Providers that speak OpenAI's Chat Completions at a URL of their own, with a key of their
own: the hosted ones LangChain users reach through ``init_chat_model`` (Azure OpenAI's
deployments, Groq, DeepSeek, Together, Fireworks, xAI, Mistral, OpenRouter, Gemini's
OpenAI-compatible endpoint) and the local servers (vLLM, LM Studio, llama.cpp).

Each is :class:`~rxagent.chat_models.ChatOpenAI` with its own provider name (``ls_provider`` in
``messages`` metadata), key variable and base URL. ``OPENAI_API_KEY`` is never read by any of
them: a key must not travel to another company's server. A local server needs no key; pass
``api_key`` when a proxy in front of it wants one. ``base_url`` (or the ``*_BASE_URL``
variable) points any of them elsewhere.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from .._exceptions import MissingAPIKeyError, UsageError
from .._messages import BaseMessage
from ._base import ToolSpec
from ._http import StreamRequest
from ._openai import ChatOpenAI

__all__ = [
    "COMPATIBLE",
    "AzureChatOpenAI",
    "ChatDeepSeek",
    "ChatFireworks",
    "ChatGeminiOpenAI",
    "ChatGroq",
    "ChatLMStudio",
    "ChatLlamaCpp",
    "ChatMistralAI",
    "ChatOpenRouter",
    "ChatTogether",
    "ChatVLLM",
    "ChatXAI",
]


class ChatGroq(ChatOpenAI):
    """Groq's OpenAI-compatible API; the key from ``GROQ_API_KEY``."""

    provider = "groq"
    label = "Groq"
    api_key_env = "GROQ_API_KEY"
    base_url_env = "GROQ_BASE_URL"
    default_base_url = "https://api.groq.com/openai/v1"


class ChatDeepSeek(ChatOpenAI):
    """DeepSeek's API; the key from ``DEEPSEEK_API_KEY``."""

    provider = "deepseek"
    label = "DeepSeek"
    api_key_env = "DEEPSEEK_API_KEY"
    base_url_env = "DEEPSEEK_BASE_URL"
    default_base_url = "https://api.deepseek.com/v1"


class ChatTogether(ChatOpenAI):
    """Together AI's API; the key from ``TOGETHER_API_KEY``."""

    provider = "together"
    label = "Together"
    api_key_env = "TOGETHER_API_KEY"
    base_url_env = "TOGETHER_BASE_URL"
    default_base_url = "https://api.together.xyz/v1"


class ChatFireworks(ChatOpenAI):
    """Fireworks AI's API; the key from ``FIREWORKS_API_KEY``."""

    provider = "fireworks"
    label = "Fireworks"
    api_key_env = "FIREWORKS_API_KEY"
    base_url_env = "FIREWORKS_BASE_URL"
    default_base_url = "https://api.fireworks.ai/inference/v1"


class ChatXAI(ChatOpenAI):
    """xAI's API (Grok); the key from ``XAI_API_KEY``."""

    provider = "xai"
    label = "xAI"
    api_key_env = "XAI_API_KEY"
    base_url_env = "XAI_BASE_URL"
    default_base_url = "https://api.x.ai/v1"


class ChatMistralAI(ChatOpenAI):
    """Mistral's chat completions; the key from ``MISTRAL_API_KEY``."""

    provider = "mistralai"
    label = "Mistral"
    api_key_env = "MISTRAL_API_KEY"
    base_url_env = "MISTRAL_BASE_URL"
    default_base_url = "https://api.mistral.ai/v1"


class ChatOpenRouter(ChatOpenAI):
    """OpenRouter, many providers' models behind one API; the key from ``OPENROUTER_API_KEY``."""

    provider = "openrouter"
    label = "OpenRouter"
    api_key_env = "OPENROUTER_API_KEY"
    base_url_env = "OPENROUTER_BASE_URL"
    default_base_url = "https://openrouter.ai/api/v1"


class ChatGeminiOpenAI(ChatOpenAI):
    """Gemini through Google's OpenAI-compatible endpoint; the key from ``GOOGLE_API_KEY``."""

    provider = "google_genai"
    label = "Gemini"
    api_key_env = "GOOGLE_API_KEY"
    base_url_env = "GOOGLE_GENAI_BASE_URL"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta/openai"


class ChatVLLM(ChatOpenAI):
    """A vLLM server (``vllm serve``); no key, ``http://localhost:8000/v1`` by default."""

    provider = "vllm"
    label = "vLLM"
    api_key_env = None
    base_url_env = "VLLM_BASE_URL"
    default_base_url = "http://localhost:8000/v1"


class ChatLMStudio(ChatOpenAI):
    """LM Studio's local server; no key, ``http://localhost:1234/v1`` by default."""

    provider = "lmstudio"
    label = "LM Studio"
    api_key_env = None
    base_url_env = "LMSTUDIO_BASE_URL"
    default_base_url = "http://localhost:1234/v1"


class ChatLlamaCpp(ChatOpenAI):
    """llama.cpp's ``llama-server``; no key, ``http://localhost:8080/v1`` by default."""

    provider = "llamacpp"
    label = "llama.cpp"
    api_key_env = None
    base_url_env = "LLAMACPP_BASE_URL"
    default_base_url = "http://localhost:8080/v1"


class AzureChatOpenAI(ChatOpenAI):
    """A deployment on Azure OpenAI: OpenAI's Chat Completions at
    ``{azure_endpoint}/openai/deployments/{azure_deployment}/chat/completions?api-version=...``,
    the key in an ``api-key`` header.

    Each setting comes from its argument or its environment variable, as langchain-openai's
    ``AzureChatOpenAI`` reads them: ``azure_endpoint`` (``AZURE_OPENAI_ENDPOINT``, the
    resource's URL such as ``https://my-resource.openai.azure.com``), ``api_version``
    (``OPENAI_API_VERSION``), ``api_key`` (``AZURE_OPENAI_API_KEY``) or ``azure_ad_token``
    (``AZURE_OPENAI_AD_TOKEN``, sent as a bearer token). Unlike there, ``OPENAI_API_KEY`` is
    never read: an OpenAI key must not travel to another company's server. What is missing
    shows when the model is called, never when it is made.

    Example::

        model = AzureChatOpenAI(azure_deployment="gpt-4o", api_version="2024-10-21")

    Args:
        model: the model's name, for metadata; the deployment's name when not given.
        azure_deployment: the deployment to call; ``model`` when not given.
        api_version: the API version (``api-version`` in the URL).
        azure_endpoint: the resource's URL.
        azure_ad_token: a Microsoft Entra ID token, instead of a key.
        **kwargs: as for :class:`~rxagent.chat_models.ChatOpenAI` (``api_key``,
            ``temperature``, ``http_client``...).
    """

    provider = "azure"
    label = "Azure OpenAI"
    api_key_env = "AZURE_OPENAI_API_KEY"
    base_url_env = "AZURE_OPENAI_ENDPOINT"
    default_base_url = ""

    def __init__(
        self,
        model: str | None = None,
        *,
        azure_deployment: str | None = None,
        api_version: str | None = None,
        azure_endpoint: str | None = None,
        azure_ad_token: str | SecretStr | None = None,
        **kwargs: Any,
    ) -> None:
        deployment = azure_deployment or model
        if not deployment:
            raise UsageError("AzureChatOpenAI needs azure_deployment=... (or model=...)")
        kwargs.setdefault("base_url", azure_endpoint)
        super().__init__(model or deployment, **kwargs)
        self.azure_deployment = deployment
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION") or None
        token = azure_ad_token or os.environ.get("AZURE_OPENAI_AD_TOKEN") or None
        self._ad_token = SecretStr(token) if isinstance(token, str) else token

    @property
    def key_required(self) -> bool:
        """A key is always required, unless an Entra ID token is given."""
        return self._ad_token is None

    def _request(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        api_key: str | None,
        kwargs: dict[str, Any],
    ) -> StreamRequest:
        if not self.base_url:
            raise UsageError(
                "AzureChatOpenAI needs the resource's URL: pass azure_endpoint=... or set "
                "AZURE_OPENAI_ENDPOINT"
            )
        if not self.api_version:
            raise UsageError(
                "AzureChatOpenAI needs an API version: pass api_version=... or set "
                "OPENAI_API_VERSION"
            )
        if api_key is None and self._ad_token is None:
            raise MissingAPIKeyError(self._missing_key_message())
        request = super()._request(messages, tools, None, kwargs)
        headers = dict(request.headers)
        if api_key:
            headers["api-key"] = api_key
        else:
            assert self._ad_token is not None
            headers["authorization"] = f"Bearer {self._ad_token.get_secret_value()}"
        url = (
            f"{self.base_url}/openai/deployments/{quote(self.azure_deployment, safe='')}"
            f"/chat/completions?api-version={quote(self.api_version, safe='')}"
        )
        return StreamRequest(url, headers, request.body)

    def __repr__(self) -> str:
        return (
            f"AzureChatOpenAI(azure_deployment={self.azure_deployment!r}, "
            f"base_url={self.base_url!r})"
        )


COMPATIBLE: dict[str, type[ChatOpenAI]] = {
    cls.provider: cls
    for cls in (ChatGroq, ChatDeepSeek, ChatTogether, ChatFireworks, ChatXAI, ChatMistralAI,
                ChatOpenRouter, ChatGeminiOpenAI, ChatVLLM, ChatLMStudio, ChatLlamaCpp)
}
COMPATIBLE["azure_openai"] = AzureChatOpenAI  # LangChain's name for it, not its ls_provider
"""Each provider's model class, by the provider name ``init_chat_model`` takes."""
