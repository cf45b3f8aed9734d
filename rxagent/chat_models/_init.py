"""Model strings: ``"openai:gpt-4o-mini"``, ``"claude-sonnet-4-5-20250929"``, ``"ollama:qwen3"``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

from .._exceptions import ModelSpecError, UsageError
from ._anthropic import ChatAnthropic
from ._base import BaseChatModel
from ._compatible import COMPATIBLE
from ._configurable import ConfigurableChatModel
from ._http import HTTPChatModel
from ._openai import ChatOllama, ChatOpenAI

__all__ = ["SUPPORTED_FORMS", "infer_provider", "init_chat_model"]

_PROVIDERS: dict[str, type[HTTPChatModel]] = {
    "openai": ChatOpenAI,
    "anthropic": ChatAnthropic,
    "ollama": ChatOllama,
    **COMPATIBLE,
}

# Bare names, the way the LangChain docs write them: prefix -> provider.
_PREFIXES = (
    (("gpt-", "o1", "o3", "o4", "chatgpt-"), "openai"),
    (("claude",), "anthropic"),
    (("mistral", "codestral", "magistral"), "mistralai"),
    (("deepseek",), "deepseek"),
    (("grok",), "xai"),
    (("gemini",), "google_genai"),
)

SUPPORTED_FORMS = (
    "'<provider>:<model>' with provider one of "
    + ", ".join(repr(name) for name in ("openai", "anthropic", "ollama", *COMPATIBLE))
    + "; a bare OpenAI name ('gpt-...', 'o1...', 'o3...', 'o4...', 'chatgpt-...'), Anthropic "
    "name ('claude-...'), Mistral, DeepSeek, Grok or Gemini name; any OpenAI-compatible "
    "server as 'openai:<model>' with base_url=... (or OPENAI_BASE_URL)"
)
"""The model strings :func:`init_chat_model` understands, as its errors list them."""


def infer_provider(model: str) -> str | None:
    """The provider of a bare model name (``"gpt-5-nano"`` is OpenAI's), or ``None``."""
    name = model.strip().lower()
    for prefixes, provider in _PREFIXES:
        if name.startswith(prefixes):
            return provider
    return None


def init_chat_model(
    model: str | None = None,
    *,
    model_provider: str | None = None,
    configurable_fields: Literal["any"] | Sequence[str] | None = None,
    config_prefix: str | None = None,
    **kwargs: Any,
) -> BaseChatModel:
    """A chat model from a model string.

    ``"provider:model"`` names the provider: ``openai``, ``anthropic``, ``ollama``, or a
    server that speaks OpenAI's wire format with its own URL and key (``groq``, ``deepseek``,
    ``together``, ``fireworks``, ``xai``, ``mistralai``, ``openrouter``, ``google_genai``,
    and the local ``vllm``, ``lmstudio``, ``llamacpp``). A bare name is matched by its prefix
    (``gpt-``, ``o1``, ``o3``, ``o4``, ``chatgpt-`` for OpenAI, ``claude`` for Anthropic,
    ``mistral``, ``deepseek``, ``grok``, ``gemini``), or ``model_provider`` says which. Each
    reads its own key variable (``GROQ_API_KEY``...), never ``OPENAI_API_KEY``. Nothing
    touches the network and no key is needed yet: a missing key shows when the model is
    called.

    Without a model, or with ``configurable_fields``, the result is a
    :class:`~rxagent.chat_models.ConfigurableChatModel`: each call chooses its model (and the
    other fields) from ``config["configurable"]``, as LangChain's configurable models do.

    Example::

        model = init_chat_model("gpt-5-nano")                      # ChatOpenAI
        model = init_chat_model("anthropic:claude-sonnet-4-5-20250929", max_tokens=1024)
        model = init_chat_model("ollama:llama3.2")                 # localhost:11434, no key
        model = init_chat_model("openai:qwen3", base_url="http://gpu-box:8000/v1")
        model = init_chat_model(temperature=0)  # config={"configurable": {"model": ...}}

    Args:
        model: the model string; without one, each call chooses it.
        model_provider: the provider, for a bare name that does not tell.
        configurable_fields: the parameters a call's config may set (``"any"``: all, the
            API key and base URL too, so never with configs from users); by default
            ``("model", "model_provider")`` without a model, and none with one.
        config_prefix: the prefix of their keys in ``configurable`` (``"first"`` reads
            ``first_model``...), for a program with several configurable models.
        **kwargs: passed to the model's constructor (``temperature``, ``api_key``,
            ``base_url``, ``http_client``, ``timeout``, ``rate_limiter``...).

    Raises:
        ModelSpecError: no supported provider matches; the message lists the supported forms.
    """
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ModelSpecError(f"a model string is needed, got {model!r}; use {SUPPORTED_FORMS}")
    if not model and not configurable_fields:
        configurable_fields = ("model", "model_provider")
    if config_prefix is not None and not isinstance(config_prefix, str):
        raise UsageError(f"config_prefix is a str, got {config_prefix!r}")
    if config_prefix and not configurable_fields:
        warnings.warn(f"config_prefix={config_prefix!r} is set but no field is configurable: "
                      "set configurable_fields=(...)", stacklevel=2)
    if model:  # (a configurable model's default too: a bad one fails now, not at a call)
        provider, name = _provider_and_name(model, model_provider)
        if not name:
            raise ModelSpecError(f"{model!r} names no model; use {SUPPORTED_FORMS}")
        if not configurable_fields:
            return _PROVIDERS[provider](name, **kwargs)
        kwargs["model"] = model
    if model_provider:
        kwargs["model_provider"] = model_provider
    return ConfigurableChatModel(defaults=kwargs, configurable_fields=configurable_fields or (),
                                 config_prefix=config_prefix or "")


def _provider_and_name(model: str, model_provider: str | None) -> tuple[str, str]:
    # "provider:name" names it; else model_provider does, else the name's prefix.
    provider = model_provider.lower() if model_provider else None
    name = model.strip()
    prefix, colon, rest = name.partition(":")
    if colon and prefix.lower() in _PROVIDERS:
        if provider is not None and provider != prefix.lower():
            raise ModelSpecError(
                f"{model!r} names the provider {prefix!r} but model_provider={model_provider!r}"
            )
        provider, name = prefix.lower(), rest.strip()
    elif provider is None and not colon:  # "who:model" with an unknown "who" is not guessed
        provider = infer_provider(name)
    if provider is None or provider not in _PROVIDERS:
        what = f"the provider {model_provider!r}" if model_provider else f"the model {model!r}"
        raise ModelSpecError(f"cannot tell who serves {what}; use {SUPPORTED_FORMS}")
    return provider, name


ConfigurableChatModel._init_chat_model = staticmethod(init_chat_model)
