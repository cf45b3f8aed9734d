"""Providers that speak OpenAI's Chat Completions at a URL of their own, with a key of their
own: the hosted ones LangChain users reach through ``init_chat_model`` (Groq, DeepSeek,
Together, Fireworks, xAI, Mistral, OpenRouter, Gemini's OpenAI-compatible endpoint) and the
local servers (vLLM, LM Studio, llama.cpp).

Each is :class:`~rxagent.chat_models.ChatOpenAI` with its own provider name (``ls_provider`` in
``messages`` metadata), key variable and base URL. ``OPENAI_API_KEY`` is never read by any of
them: a key must not travel to another company's server. A local server needs no key; pass
``api_key`` when a proxy in front of it wants one. ``base_url`` (or the ``*_BASE_URL``
variable) points any of them elsewhere.
"""

from __future__ import annotations

from ._openai import ChatOpenAI

__all__ = [
    "COMPATIBLE",
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


COMPATIBLE: dict[str, type[ChatOpenAI]] = {
    cls.provider: cls
    for cls in (ChatGroq, ChatDeepSeek, ChatTogether, ChatFireworks, ChatXAI, ChatMistralAI,
                ChatOpenRouter, ChatGeminiOpenAI, ChatVLLM, ChatLMStudio, ChatLlamaCpp)
}
"""Each provider's model class, by the provider name ``init_chat_model`` takes."""
