"""Providers that speak OpenAI's wire format with a URL and a key of their own: each resolves
from its model string, reads its own key variable (never OPENAI_API_KEY), and streams from a
real server on loopback with its own key in the request and its name in the chunks."""

from __future__ import annotations

from typing import Any

import pytest

from rxagent import MissingAPIKeyError
from rxagent.chat_models import (
    ChatDeepSeek,
    ChatGeminiOpenAI,
    ChatGroq,
    ChatLlamaCpp,
    ChatLMStudio,
    ChatMistralAI,
    ChatOpenRouter,
    ChatTogether,
    ChatVLLM,
    ChatXAI,
    init_chat_model,
)
from rxagent.chat_models._compatible import COMPATIBLE

from .loopback import Reply, serve
from .transcripts import OPENAI_TEXT

HOSTED = {  # provider -> (class, key variable, URL of its own)
    "groq": (ChatGroq, "GROQ_API_KEY", "https://api.groq.com/openai/v1"),
    "deepseek": (ChatDeepSeek, "DEEPSEEK_API_KEY", "https://api.deepseek.com/v1"),
    "together": (ChatTogether, "TOGETHER_API_KEY", "https://api.together.xyz/v1"),
    "xai": (ChatXAI, "XAI_API_KEY", "https://api.x.ai/v1"),
    "mistralai": (ChatMistralAI, "MISTRAL_API_KEY", "https://api.mistral.ai/v1"),
    "openrouter": (ChatOpenRouter, "OPENROUTER_API_KEY", "https://openrouter.ai/api/v1"),
    "google_genai": (ChatGeminiOpenAI, "GOOGLE_API_KEY",
                     "https://generativelanguage.googleapis.com/v1beta/openai"),
}
LOCAL = {"vllm": (ChatVLLM, 8000), "lmstudio": (ChatLMStudio, 1234),
         "llamacpp": (ChatLlamaCpp, 8080)}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in COMPATIBLE.values():
        for name in (cls.api_key_env, cls.base_url_env):
            if name:
                monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-stay-home")


@pytest.mark.parametrize("provider", sorted(HOSTED))
def test_a_hosted_provider_from_its_model_string(provider: str) -> None:
    cls, _, url = HOSTED[provider]
    model = init_chat_model(f"{provider}:some-model")
    assert type(model) is cls and model.base_url == url and model.provider == provider
    assert model.model_name == "some-model"


@pytest.mark.parametrize("provider", sorted(LOCAL))
def test_a_local_server_needs_no_key(provider: str) -> None:
    cls, port = LOCAL[provider]
    model = init_chat_model(f"{provider}:qwen3")
    assert type(model) is cls and model.base_url == f"http://localhost:{port}/v1"
    assert cls.api_key_env is None


@pytest.mark.parametrize(("name", "provider"), [
    ("mistral-large-latest", "mistralai"), ("deepseek-chat", "deepseek"),
    ("grok-4", "xai"), ("gemini-2.5-flash", "google_genai"),
])
def test_bare_names_are_told_by_their_prefix(name: str, provider: str) -> None:
    assert init_chat_model(name).provider == provider


@pytest.mark.anyio
@pytest.mark.parametrize("provider", sorted(HOSTED))
async def test_it_streams_with_its_own_key_never_openais(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls, key_env, _ = HOSTED[provider]
    monkeypatch.setenv(key_env, f"key-of-{provider}")
    async with serve(Reply([OPENAI_TEXT], piece=7)) as server:
        monkeypatch.setenv(cls.base_url_env or "", server.url + "/v1")
        model = init_chat_model(f"{provider}:m")
        chunks: list[Any] = [c async for c in model.astream([{"role": "user",
                                                               "content": "Hi"}])]
    assert "".join(c.text for c in chunks) == "It's always sunny in San Francisco! ☀️"
    assert chunks[-1].response_metadata["model_provider"] == provider
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer key-of-{provider}"


@pytest.mark.anyio
async def test_a_hosted_provider_without_its_key_fails_clearly() -> None:
    model = init_chat_model("groq:m")
    with pytest.raises(MissingAPIKeyError, match="GROQ_API_KEY"):
        async for _ in model.astream([{"role": "user", "content": "Hi"}]):
            pass
