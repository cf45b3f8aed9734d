"""Model strings, keys, retries and error mapping: small unit tests on httpx.MockTransport."""

from __future__ import annotations

import email.utils
import inspect
import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

import rxagent.chat_models as chat_models
from rxagent import (
    APIConnectionError,
    APIStatusError,
    MissingAPIKeyError,
    ModelSpecError,
    ServerError,
    StreamProtocolError,
    UsageError,
    to_async_iterator,
)
from rxagent.chat_models import (
    ChatAnthropic,
    ChatOllama,
    ChatOpenAI,
    RetryPolicy,
    Timeouts,
    init_chat_model,
)

# Private on purpose: the retry helpers are tested as units here.
from rxagent.chat_models._retry import is_transient_error, retry_delay
from rxagent.messages import AIMessageChunk

from .transcripts import OPENAI_TEXT, OPENAI_TEXT_ANSWER

HI = [{"role": "user", "content": "Hi"}]
FAST = RetryPolicy(initial=0.001, maximum=0.002)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                 "OLLAMA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request to {request.url}")


async def run(model: Any) -> tuple[list[AIMessageChunk], Exception | None]:
    chunks: list[AIMessageChunk] = []
    with anyio.fail_after(10):
        try:
            async for chunk in to_async_iterator(model.stream(HI)):
                chunks.append(chunk)
        except Exception as error:
            return chunks, error
    return chunks, None


# -- model strings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kind", "provider", "name"),
    [
        ("openai:gpt-4o-mini", ChatOpenAI, "openai", "gpt-4o-mini"),
        ("gpt-5-nano", ChatOpenAI, "openai", "gpt-5-nano"),
        ("o1", ChatOpenAI, "openai", "o1"),
        ("o3-mini", ChatOpenAI, "openai", "o3-mini"),
        ("o4-mini", ChatOpenAI, "openai", "o4-mini"),
        ("chatgpt-4o-latest", ChatOpenAI, "openai", "chatgpt-4o-latest"),
        ("anthropic:claude-sonnet-4-5-20250929", ChatAnthropic, "anthropic",
         "claude-sonnet-4-5-20250929"),
        ("claude-sonnet-4-5-20250929", ChatAnthropic, "anthropic",
         "claude-sonnet-4-5-20250929"),
        ("ollama:llama3.2:1b", ChatOllama, "ollama", "llama3.2:1b"),
        ("OpenAI:gpt-4o", ChatOpenAI, "openai", "gpt-4o"),
    ],
)
def test_model_strings(spec: str, kind: type[Any], provider: str, name: str) -> None:
    model = init_chat_model(spec)
    assert type(model) is kind
    assert (model.provider, model.model_name) == (provider, name)


def test_model_strings_need_no_key_and_no_network() -> None:
    model = init_chat_model("gpt-5-nano", temperature=0, http_client=client_for(no_network))
    assert isinstance(model, ChatOpenAI) and model.params == {"temperature": 0}
    assert model.base_url == "https://api.openai.com/v1" and model.key_required


def test_model_provider_names_the_provider_of_a_bare_name() -> None:
    model = init_chat_model("qwen3", model_provider="ollama")
    assert isinstance(model, ChatOllama) and model.model_name == "qwen3"
    with pytest.raises(ModelSpecError, match="names the provider"):
        init_chat_model("openai:gpt-4o", model_provider="anthropic")


@pytest.mark.parametrize("spec", ["falcon-40b", "llama3.2:1b", "gemini:gemini-2.5", "",
                                  "openai:", "   "])
def test_unknown_model_strings_name_the_supported_forms(spec: str) -> None:
    with pytest.raises(ModelSpecError) as caught:
        init_chat_model(spec)
    assert "'openai:<model>'" in str(caught.value) and "'claude-...'" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_ollama_base_url_from_the_environment_gets_v1(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ChatOllama("qwen3").base_url == "http://localhost:11434/v1"
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://gpu-box:11434")
    assert ChatOllama("qwen3").base_url == "http://gpu-box:11434/v1"
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://gpu-box:11434/proxy/v1/")
    assert ChatOllama("qwen3").base_url == "http://gpu-box:11434/proxy/v1"


def test_base_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    openai = ChatOpenAI("gpt-4o")
    assert openai.base_url == "http://127.0.0.1:9/v1" and not openai.key_required
    assert ChatAnthropic("claude-3-5-haiku-latest").base_url == "http://127.0.0.1:9"
    assert ChatOpenAI("gpt-4o", base_url="http://other/v1").base_url == "http://other/v1"


def test_the_public_names_are_exported_and_sorted() -> None:
    assert chat_models.__all__ == sorted(chat_models.__all__)
    for name in ("ChatAnthropic", "ChatOllama", "ChatOpenAI", "Timeouts", "init_chat_model"):
        assert name in chat_models.__all__ and hasattr(chat_models, name)


PROVIDER_API = ["BaseChatModel", "Demand", "EventDecoder", "HTTPChatModel", "RetryPolicy",
                "SSEDecoder", "ServerSentEvent", "StreamRequest", "Timeouts", "WireParser",
                "make_chunk"]


def test_a_provider_author_finds_the_extension_api_public_and_documented() -> None:
    for name in PROVIDER_API:
        assert name in chat_models.__all__
        exported = getattr(chat_models, name)
        assert exported.__doc__, name
        if not inspect.isclass(exported):
            continue
        assert "__doc__" in vars(exported), f"{name} has no docstring of its own"
        for attribute, value in vars(exported).items():
            function = value.fget if isinstance(value, property) else value
            function = getattr(function, "__func__", function)
            if not attribute.startswith("_") and callable(function):
                assert function.__doc__, f"{name}.{attribute}"
    hooks = [(chat_models.BaseChatModel, "_produce"), (chat_models.HTTPChatModel, "_request"),
             (chat_models.HTTPChatModel, "_parser"), (chat_models.HTTPChatModel, "_decoder")]
    for owner, hook in hooks:
        assert vars(owner)[hook].__doc__, f"{owner.__name__}.{hook}"


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        ChatOpenAI("gpt-4o", max_retries=-1)
    with pytest.raises(UsageError):
        ChatOpenAI("gpt-4o", timeout=-1)
    with pytest.raises(UsageError):
        ChatOpenAI("")
    with pytest.raises(UsageError):
        ChatOpenAI("gpt-4o", http_client=object())  # type: ignore[arg-type]


def test_timeouts_read_from_a_number_or_none() -> None:
    assert Timeouts.of(5) == Timeouts(connect=10.0, first_token=5.0, idle=5.0)
    assert Timeouts.of(None) == Timeouts(None, None, None)
    custom = Timeouts(connect=1, first_token=2, idle=3)
    assert Timeouts.of(custom) is custom
    assert ChatOpenAI("gpt-4o").timeouts == Timeouts()


# -- keys ----------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("make", "variable"),
    [(lambda client: ChatOpenAI("gpt-4o", http_client=client), "OPENAI_API_KEY"),
     (lambda client: ChatAnthropic("claude-sonnet-4-5", http_client=client),
      "ANTHROPIC_API_KEY")],
    ids=["openai", "anthropic"],
)
async def test_a_missing_key_fails_the_call_clearly_without_a_request(
    make: Callable[[httpx.AsyncClient], Any], variable: str
) -> None:
    model = make(client_for(no_network))
    chunks, error = await run(model)
    assert chunks == [] and isinstance(error, MissingAPIKeyError)
    assert variable in str(error) and "api_key=" in str(error)
    assert "rxagent.testing.ScriptedChatModel" in str(error)


@pytest.mark.anyio
async def test_a_key_set_after_the_model_was_made_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=OPENAI_TEXT.encode())

    model = ChatOpenAI("gpt-4o", http_client=client_for(handler))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-later")
    chunks, error = await run(model)
    assert error is None and "".join(str(c.content) for c in chunks) == OPENAI_TEXT_ANSWER
    assert seen == ["Bearer sk-later"]


@pytest.mark.anyio
async def test_ollama_never_sends_the_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-stay-home")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=OPENAI_TEXT.encode())

    model = init_chat_model("ollama:qwen3", http_client=client_for(handler))
    chunks, error = await run(model)
    assert error is None
    assert chunks[-1].response_metadata["model_provider"] == "ollama"
    (request,) = seen
    assert str(request.url) == "http://localhost:11434/v1/chat/completions"
    assert "authorization" not in request.headers


def test_the_key_is_not_in_the_repr() -> None:
    model = ChatOpenAI("gpt-4o", api_key="sk-hidden-123")
    assert "sk-hidden-123" not in repr(model) + str(vars(model))
    assert repr(model) == "ChatOpenAI(model_name='gpt-4o', base_url='https://api.openai.com/v1')"


# -- retries and error mapping -------------------------------------------------------------------


def test_retry_delay_honours_the_server_then_backs_off() -> None:
    assert retry_delay({"retry-after-ms": "250", "retry-after": "9"}, 0) == 0.25
    assert retry_delay({"retry-after": "2"}, 0) == 2.0
    now = 1_700_000_000.0
    later = email.utils.formatdate(now + 3, usegmt=True)
    assert retry_delay({"retry-after": later}, 0, now=lambda: now) == pytest.approx(3.0)
    assert retry_delay({"retry-after": "-5"}, 0) == 0.0
    assert retry_delay({"retry-after": "3600"}, 0) is None  # too long: give up
    policy = RetryPolicy(initial=0.5, maximum=8.0, jitter=0.25)
    assert retry_delay({"retry-after": "soon"}, 0, rng=lambda: 0.0) == 0.5
    assert [policy.backoff(n, rng=lambda: 0.0) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]
    assert policy.backoff(2, rng=lambda: 1.0) == 1.5  # jitter takes up to a quarter off


@pytest.mark.parametrize(
    ("payload", "transient"),
    [
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, True),
        ({"type": "error", "error": {"type": "api_error", "message": "Internal"}}, True),
        ({"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}, False),
        ({"error": {"message": "boom", "type": "server_error", "code": None}}, True),
        ({"error": {"message": "Provider returned error", "code": 502}}, True),  # OpenRouter
        ({"error": {"message": "slow down", "code": 429}}, True),
        ({"error": {"message": "bad", "type": "invalid_request_error", "code": 400}}, False),
        ({"error": {"message": "odd", "code": True}}, False),
        ({"error": "plain text"}, False),
        ([], False),
    ],
)
def test_which_error_events_a_retry_may_cure(payload: Any, transient: bool) -> None:
    assert is_transient_error(payload) is transient


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "should_retry", "requests"),
    [(500, "false", 1), (400, "true", 3), (408, None, 3), (404, None, 1)],
)
async def test_x_should_retry_and_the_retryable_statuses(
    status: int, should_retry: str | None, requests: int
) -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        headers = {"x-should-retry": should_retry} if should_retry else {}
        return httpx.Response(status, headers=headers, json={"error": {"message": "nope"}})

    model = ChatOpenAI("gpt-4o", api_key="k", http_client=client_for(handler))
    model.retry_policy = FAST
    _, error = await run(model)
    assert isinstance(error, APIStatusError) and error.status_code == status
    assert isinstance(error, ServerError) == (status >= 500)
    assert count == requests


@pytest.mark.anyio
async def test_a_connect_timeout_is_a_connection_error_and_is_retried() -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        raise httpx.ConnectTimeout("timed out", request=request)

    model = ChatAnthropic("claude-sonnet-4-5", api_key="k", http_client=client_for(handler),
                          max_retries=1)
    model.retry_policy = FAST
    _, error = await run(model)
    assert isinstance(error, APIConnectionError)
    assert "timed out connecting" in str(error) and "before the reply started" in str(error)
    assert count == 2


@pytest.mark.anyio
async def test_json_instead_of_an_event_stream_is_a_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": {"message": "stream not supported"}})

    model = ChatOpenAI("gpt-4o", api_key="k", http_client=client_for(handler))
    _, error = await run(model)
    assert isinstance(error, StreamProtocolError)
    assert "stream not supported" in str(error)


@pytest.mark.anyio
async def test_per_call_parameters_override_the_model_s() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=OPENAI_TEXT.encode())

    model = ChatOpenAI("gpt-4o", api_key="k", http_client=client_for(handler), temperature=0,
                       stream_usage=False, default_headers={"x-team": "a"})
    with anyio.fail_after(10):
        await model.ainvoke(HI, temperature=1, max_completion_tokens=5)
    body = json.loads(seen[0].content)
    assert body["temperature"] == 1 and body["max_completion_tokens"] == 5
    assert "stream_options" not in body
    assert seen[0].headers["x-team"] == "a"
