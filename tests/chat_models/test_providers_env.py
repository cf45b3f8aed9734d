"""Every provider the issue lists, resolved by ``init_chat_model`` from its model string and
configured by its environment variables only, calls a real server on loopback with its own
key; Azure OpenAI's deployments, API version and ``api-key`` header."""

from __future__ import annotations

import pytest

from rxagent import MissingAPIKeyError, UsageError
from rxagent.chat_models import AzureChatOpenAI, init_chat_model
from rxagent.chat_models._compatible import COMPATIBLE

from .loopback import Reply, serve_in_thread
from .transcripts import OPENAI_TEXT, OPENAI_TEXT_ANSWER

# provider -> (key variable or None, base-URL variable, what the URL variable holds after the
# server's address)
PROVIDERS = {
    "groq": ("GROQ_API_KEY", "GROQ_BASE_URL", "/v1"),
    "deepseek": ("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "/v1"),
    "together": ("TOGETHER_API_KEY", "TOGETHER_BASE_URL", "/v1"),
    "fireworks": ("FIREWORKS_API_KEY", "FIREWORKS_BASE_URL", "/v1"),
    "openrouter": ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "/v1"),
    "xai": ("XAI_API_KEY", "XAI_BASE_URL", "/v1"),
    "mistralai": ("MISTRAL_API_KEY", "MISTRAL_BASE_URL", "/v1"),
    "google_genai": ("GOOGLE_API_KEY", "GOOGLE_GENAI_BASE_URL", "/v1"),
    "vllm": (None, "VLLM_BASE_URL", "/v1"),
    "lmstudio": (None, "LMSTUDIO_BASE_URL", "/v1"),
    "llamacpp": (None, "LLAMACPP_BASE_URL", "/v1"),
    "ollama": (None, "OLLAMA_BASE_URL", ""),  # a bare host gets /v1
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"),
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, url, _ in PROVIDERS.values():
        for name in (key, url):
            if name:
                monkeypatch.delenv(name, raising=False)
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION",
                 "AZURE_OPENAI_AD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_each_provider_resolves_and_calls_with_its_environment(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_variable, url_variable, path = PROVIDERS[provider]
    if provider != "openai":
        monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-stay-home")
    if key_variable:
        monkeypatch.setenv(key_variable, f"key-of-{provider}")
    with serve_in_thread(Reply([OPENAI_TEXT])) as (server, _):
        monkeypatch.setenv(url_variable, server.url + path)
        model = init_chat_model(f"{provider}:some-model")
        reply = model.invoke("Hi")
    assert reply.text == OPENAI_TEXT_ANSWER
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.json["model"] == "some-model"
    sent = request.headers.get("authorization")
    assert sent == (f"Bearer key-of-{provider}" if key_variable else None)


def test_the_providers_of_the_issue_are_all_known() -> None:
    known = {*COMPATIBLE, "openai", "anthropic", "ollama"}
    assert set(PROVIDERS) | {"azure_openai", "anthropic"} <= known


def test_azure_calls_its_deployment_with_the_api_version_and_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-stay-home")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    with serve_in_thread(Reply([OPENAI_TEXT])) as (server, _):
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url + "/")
        model = init_chat_model("azure_openai:gpt-4o", azure_deployment="prod 4o")
        assert isinstance(model, AzureChatOpenAI)
        reply = model.invoke("Hi")
    assert reply.text == OPENAI_TEXT_ANSWER
    (request,) = server.requests
    assert request.path == "/openai/deployments/prod%204o/chat/completions?api-version=2024-10-21"
    assert request.headers["api-key"] == "azure-key"
    assert "authorization" not in request.headers
    assert model.model_name == "gpt-4o"


def test_azure_takes_its_arguments_and_an_entra_token() -> None:
    with serve_in_thread(Reply([OPENAI_TEXT])) as (server, _):
        model = AzureChatOpenAI(azure_deployment="d1", api_version="2025-01-01",
                                azure_endpoint=server.url, azure_ad_token="entra-token")
        model.invoke("Hi")
    (request,) = server.requests
    assert request.path == "/openai/deployments/d1/chat/completions?api-version=2025-01-01"
    assert request.headers["authorization"] == "Bearer entra-token"
    assert model.model_name == "d1"  # the deployment, when no model is named


def test_azure_names_what_is_missing_when_called() -> None:
    no_endpoint = AzureChatOpenAI(azure_deployment="d", api_key="k", api_version="v")
    with pytest.raises(UsageError, match="AZURE_OPENAI_ENDPOINT"):
        no_endpoint.invoke("Hi")
    no_version = AzureChatOpenAI(azure_deployment="d", api_key="k",
                                 azure_endpoint="http://127.0.0.1:9")
    with pytest.raises(UsageError, match="OPENAI_API_VERSION"):
        no_version.invoke("Hi")
    no_key = AzureChatOpenAI(azure_deployment="d", api_version="v",
                             azure_endpoint="http://127.0.0.1:9")
    with pytest.raises(MissingAPIKeyError, match="AZURE_OPENAI_API_KEY"):
        no_key.invoke("Hi")
    with pytest.raises(UsageError, match="azure_deployment"):
        AzureChatOpenAI()


@pytest.mark.parametrize("option", ["openai_proxy",
                                    "output_version"])
def test_a_langchain_option_rxagent_lacks_is_named_not_sent(option: str) -> None:
    with pytest.raises(UsageError, match=option):
        init_chat_model("openai:gpt-5-nano", **{option: object()})


def test_model_kwargs_are_sent_and_streaming_is_taken() -> None:
    with serve_in_thread(Reply([OPENAI_TEXT])) as (server, _):
        model = init_chat_model("openai:gpt-5-nano", base_url=server.url + "/v1",
                                api_key="k", streaming=True, model_kwargs={"seed": 7})
        model.invoke("Hi")
    body = server.requests[0].json
    assert body["seed"] == 7 and "streaming" not in body and "model_kwargs" not in body
