"""ChatOpenAI against a real HTTP server on loopback: streaming, quirks, requests, cancellation.

Every reply is served chunked or close-delimited and cut into pieces of 1 byte, a few bytes,
or whole; the assembled message must be the same whatever the cut. What both providers must do
alike (retries, failures, timeouts, the secret key, backpressure) is in test_both_providers.py.
"""

from __future__ import annotations

import json
import traceback
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxagent import (
    APIConnectionError,
    APIStatusError,
    ModelCallError,
    RateLimitError,
    StreamProtocolError,
    to_async_iterator,
    to_iterator,
)
from rxagent.chat_models import ChatOpenAI, SSEDecoder, Timeouts, init_chat_model

# Private on purpose: the parser is tested as a unit here.
from rxagent.chat_models._openai import OpenAIStreamParser
from rxagent.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage

from .loopback import HANGUP, STALL, Reply, closed_port, serve, serve_in_thread
from .transcripts import (
    OPENAI_ID,
    OPENAI_MODEL,
    OPENAI_TEXT,
    OPENAI_TEXT_ANSWER,
    USAGE,
    merge,
    openai_call,
    openai_chunk,
    sse,
)

KEY = "sk-test-0123456789abcdef-SECRET"
HI = [{"role": "user", "content": "What is the weather in SF?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get weather for a given city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
PIECES = [1, 5, None]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=PIECES, ids=["1-byte", "5-bytes", "whole"])
def piece(request: pytest.FixtureRequest) -> int | None:
    return request.param  # type: ignore[no-any-return]


def model_for(url: str, **kwargs: Any) -> ChatOpenAI:
    kwargs.setdefault("api_key", KEY)
    return ChatOpenAI("gpt-5-nano", base_url=url + "/v1", **kwargs)


async def collect(
    model: ChatOpenAI, messages: Any = HI, **kwargs: Any
) -> list[AIMessageChunk]:
    with anyio.fail_after(10):
        return [chunk async for chunk in to_async_iterator(model.stream(messages, **kwargs))]


async def collect_until_error(
    model: ChatOpenAI, messages: Any = HI, **kwargs: Any
) -> tuple[list[AIMessageChunk], Exception]:
    chunks: list[AIMessageChunk] = []
    with anyio.fail_after(10):
        try:
            async for chunk in to_async_iterator(model.stream(messages, **kwargs)):
                chunks.append(chunk)
        except Exception as error:
            return chunks, error
    raise AssertionError("the stream did not fail")


# -- the happy path -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_text_reply_streams_token_by_token(piece: int | None) -> None:
    async with serve(Reply([OPENAI_TEXT], piece=piece)) as server:
        chunks = await collect(model_for(server.url))
    # The role-only first event opens the reply with an empty chunk, as langchain-openai's.
    assert [c.content for c in chunks] == ["", "It's", " always sunny", " in San Francisco! ☀️",
                                           ""]
    assert chunks[0].response_metadata == {"model_provider": "openai"}
    assert len({c.id for c in chunks}) == 1 and chunks[0].id is not None
    assert chunks[0].id.startswith("lc_run--")
    assert [c.chunk_position for c in chunks] == [None, None, None, None, "last"]
    last = chunks[-1]
    assert last.response_metadata == {
        "finish_reason": "stop",
        "model_name": OPENAI_MODEL,
        "model_provider": "openai",
        "id": OPENAI_ID,
        "service_tier": "default",
        # The usage as sent, as langchain-openai gives it.
        "token_usage": {"prompt_tokens": 168, "completion_tokens": 764, "total_tokens": 932,
                        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                        "completion_tokens_details": {"reasoning_tokens": 704,
                                                      "audio_tokens": 0,
                                                      "accepted_prediction_tokens": 0,
                                                      "rejected_prediction_tokens": 0}},
    }
    assert last.usage_metadata == {
        "input_tokens": 168,
        "output_tokens": 764,
        "total_tokens": 932,
        "input_token_details": {"audio": 0, "cache_read": 0},
        "output_token_details": {"audio": 0, "reasoning": 704},
    }
    assert merge(chunks).to_message().text == OPENAI_TEXT_ANSWER
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json == {
        "model": "gpt-5-nano",
        "messages": [{"role": "user", "content": "What is the weather in SF?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.anyio
async def test_close_delimited_body_without_done_still_completes(piece: int | None) -> None:
    body = sse(openai_chunk({"content": "Hi"}), openai_chunk(finish="stop"), done=False)
    async with serve(Reply([body], chunked=False, piece=piece)) as server:
        chunks = await collect(model_for(server.url))
    assert merge(chunks).to_message().text == "Hi"
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
    assert chunks[-1].usage_metadata is None


@pytest.mark.anyio
async def test_ainvoke_returns_the_whole_message() -> None:
    async with serve(Reply([OPENAI_TEXT])) as server:
        message = await model_for(server.url).ainvoke(HI)
    assert isinstance(message, AIMessage)
    assert message.content == OPENAI_TEXT_ANSWER
    assert message.response_metadata["finish_reason"] == "stop"
    assert message.usage_metadata is not None and message.usage_metadata["total_tokens"] == 932


@pytest.mark.anyio
async def test_parallel_tool_calls_stream_like_the_seed(piece: int | None) -> None:
    # The role comes with the first call's head, as OpenAI sends it (so no empty chunk opens
    # the reply: the seed docs print the head first).
    body = sse(
        openai_chunk({"role": "assistant", "content": None,
                      "tool_calls": [openai_call(0, id="call_1", name="get_weather", args="")]}),
        openai_chunk({"tool_calls": [openai_call(0, args='{"')]}),
        openai_chunk({"tool_calls": [openai_call(0, args="city")]}),
        openai_chunk({"tool_calls": [openai_call(0, args='":"')]}),
        openai_chunk({"tool_calls": [openai_call(0, args="San")]}),
        openai_chunk({"tool_calls": [openai_call(0, args=" Francisco")]}),
        openai_chunk({"tool_calls": [openai_call(0, args='"}')]}),
        openai_chunk({"tool_calls": [openai_call(1, id="call_2", name="get_weather",
                                                 args='{"city": "Paris"}')]}),
        openai_chunk(finish="tool_calls"),
        openai_chunk(choices=False, usage=USAGE),
    )
    async with serve(Reply([body], piece=piece)) as server:
        chunks = await collect(model_for(server.url), tools=[WEATHER_TOOL])
    assert chunks[0].content_blocks == [
        {"type": "tool_call_chunk", "id": "call_1", "name": "get_weather", "args": "",
         "index": 0}
    ]
    assert chunks[1].content_blocks == [
        {"type": "tool_call_chunk", "id": None, "name": None, "args": '{"', "index": 0}
    ]
    assert chunks[-1].content_blocks == [] and chunks[-1].chunk_position == "last"
    message = merge(chunks).to_message()
    assert message.tool_calls == [
        {"name": "get_weather", "args": {"city": "San Francisco"}, "id": "call_1",
         "type": "tool_call"},
        {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_2", "type": "tool_call"},
    ]
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert message.usage_metadata == {"input_tokens": 132, "output_tokens": 280,
                                      "total_tokens": 412}
    assert server.requests[0].json["tools"] == [
        {"type": "function", "function": WEATHER_TOOL}
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("spec", ["openai:qwen3", "ollama:qwen3"])
async def test_a_compatible_server_through_a_base_url_needs_no_key(
    spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OLLAMA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    async with serve(Reply([OPENAI_TEXT], piece=5)) as server:
        # Ollama's base URL is given without /v1, the way its docs write it.
        base_url = server.url + "/v1" if spec.startswith("openai") else server.url
        model = init_chat_model(spec, base_url=base_url, temperature=0)
        chunks = await collect(model)  # type: ignore[arg-type]
    assert merge(chunks).text == OPENAI_TEXT_ANSWER
    assert chunks[-1].response_metadata["model_provider"] == spec.partition(":")[0]
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert "authorization" not in request.headers
    assert request.json["model"] == "qwen3" and request.json["temperature"] == 0


# -- quirks of real servers -----------------------------------------------------------------


@pytest.mark.anyio
async def test_azure_prompt_filter_chunk_and_openrouter_comments(piece: int | None) -> None:
    azure_first = {
        "id": "", "object": "", "created": 0, "model": "", "choices": [],
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    }
    body = (
        ": OPENROUTER PROCESSING\r\n\r\n"
        + sse(azure_first, openai_chunk({"content": "Hel"}), end="\r\n", done=False)
        + ": keep-alive\r\n\r\n"
        + "data:" + json.dumps(openai_chunk({"content": "lo"})) + "\r\n\r\n"
        + sse(openai_chunk(finish="stop"), openai_chunk(choices=False, usage=USAGE), end="\r\n")
    )
    async with serve(Reply([body], piece=piece)) as server:
        chunks = await collect(model_for(server.url))
    assert [c.content for c in chunks] == ["Hel", "lo", ""]
    assert chunks[-1].response_metadata["model_name"] == OPENAI_MODEL
    assert chunks[-1].response_metadata["id"] == OPENAI_ID
    assert chunks[-1].usage_metadata is not None
    assert chunks[-1].usage_metadata["total_tokens"] == 412


@pytest.mark.anyio
async def test_tool_calls_without_index_whole_arguments_and_a_reused_index(
    piece: int | None,
) -> None:
    body = sse(
        # Arguments whole in one chunk, no index (some gateways).
        openai_chunk({"tool_calls": [openai_call(None, id="call_a", name="get_weather",
                                                 args='{"city": "Rome"}')]}),
        # A second call without index: a new id opens the next call.
        openai_chunk({"tool_calls": [openai_call(None, id="call_b", name="get_weather",
                                                 args='{"city":')]}),
        # No index and no id: continues the latest call.
        openai_chunk({"tool_calls": [openai_call(None, args=' "Oslo"}')]}),
        done=False,
    ) + sse(
        # Ollama reuses index 0 for every call of a batch, telling them apart by id.
        openai_chunk({"tool_calls": [openai_call(0, id="call_c", name="get_weather",
                                                 args='{"city": "Lima"}')]}),
        openai_chunk({"tool_calls": [openai_call(0, id="call_d", name="get_weather",
                                                 args='{"city": "Kyiv"}')]}),
        # LM Studio and Kimi send a fresh id with every fragment of one call.
        openai_chunk({"tool_calls": [openai_call(1, id="call_e", name="get_weather",
                                                 args="")]}),
        openai_chunk({"tool_calls": [openai_call(1, id="call_e2", args='{"city": ')]}),
        openai_chunk({"tool_calls": [openai_call(1, id="call_e3", args='"Quito"}')]}),
        openai_chunk(finish="tool_calls"),
    )
    async with serve(Reply([body], piece=piece)) as server:
        message = merge(await collect(model_for(server.url))).to_message()
    assert [(c["id"], c["args"]["city"]) for c in message.tool_calls] == [
        ("call_a", "Rome"), ("call_b", "Oslo"), ("call_c", "Lima"), ("call_d", "Kyiv"),
        ("call_e", "Quito"),
    ]
    assert message.invalid_tool_calls == []


@pytest.mark.anyio
async def test_reasoning_content_becomes_reasoning_blocks(piece: int | None) -> None:
    body = sse(
        openai_chunk({"role": "assistant", "content": None, "reasoning_content": "The user"}),
        openai_chunk({"reasoning_content": " asks about SF."}),
        openai_chunk({"reasoning": " (OpenRouter's key)"}),
        openai_chunk({"content": "Sunny."}),
        openai_chunk(finish="stop"),
    )
    async with serve(Reply([body], piece=piece)) as server:
        chunks = await collect(model_for(server.url))
    assert chunks[0].content == [{"type": "reasoning", "reasoning": "The user"}]
    message = merge(chunks).to_message()
    assert message.content == [
        {"type": "reasoning", "reasoning": "The user asks about SF. (OpenRouter's key)"},
        {"type": "text", "text": "Sunny."},
    ]
    assert message.text == "Sunny."
    assert message.content_blocks[0]["type"] == "reasoning"


@pytest.mark.anyio
async def test_refusal_is_text_and_metadata(piece: int | None) -> None:
    body = sse(
        openai_chunk({"role": "assistant", "content": None, "refusal": ""}),
        openai_chunk({"refusal": "I can't"}),
        openai_chunk({"refusal": " help with that."}),
        openai_chunk(finish="stop"),
    )
    async with serve(Reply([body], piece=piece)) as server:
        message = merge(await collect(model_for(server.url))).to_message()
    assert message.text == "I can't help with that."
    assert message.response_metadata["refusal"] == "I can't help with that."


@pytest.mark.anyio
async def test_length_cut_arguments_make_an_invalid_tool_call_not_a_crash(
    piece: int | None,
) -> None:
    body = sse(
        openai_chunk({"tool_calls": [openai_call(0, id="call_1", name="get_weather", args="")]}),
        openai_chunk({"tool_calls": [openai_call(0, args='{"city": "San Fr')]}),
        openai_chunk(finish="length"),
    )
    async with serve(Reply([body], piece=piece)) as server:
        message = merge(await collect(model_for(server.url))).to_message()
    assert message.tool_calls == []
    (bad,) = message.invalid_tool_calls
    assert (bad["id"], bad["name"], bad["args"]) == ("call_1", "get_weather", '{"city": "San Fr')
    assert message.response_metadata["finish_reason"] == "length"


@pytest.mark.anyio
async def test_error_object_mid_stream_carries_the_partial_message(piece: int | None) -> None:
    body = sse(
        openai_chunk({"content": "Hello"}),
        openai_chunk({"content": " wor"}),
        {"error": {"message": "The server had an error while processing your request.",
                   "type": "server_error", "code": None}},
        done=False,
    )
    async with serve(Reply([body], piece=piece)) as server:
        chunks, error = await collect_until_error(model_for(server.url))
    assert isinstance(error, StreamProtocolError)
    assert "server_error: The server had an error" in str(error)
    assert [c.content for c in chunks] == ["Hello", " wor"]
    assert error.partial is not None and error.partial.text == "Hello wor"
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_a_stream_that_is_not_json_is_a_protocol_error() -> None:
    async with serve(Reply([sse("{not json", done=False)])) as server:
        _, error = await collect_until_error(model_for(server.url, max_retries=0))
    assert isinstance(error, StreamProtocolError)
    assert "not JSON" in str(error)


# -- retries and HTTP errors ------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_retry_after_longer_than_a_minute_fails_at_once() -> None:
    limited = Reply(["{}"], status=429, headers={"retry-after": "3600"},
                    content_type="application/json")
    async with serve(limited, Reply([OPENAI_TEXT])) as server:
        _, error = await collect_until_error(model_for(server.url))
    assert isinstance(error, RateLimitError) and error.status_code == 429
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_a_hangup_after_done_is_no_failure() -> None:
    async with serve(Reply([OPENAI_TEXT, HANGUP])) as server:
        chunks = await collect(model_for(server.url))
    assert merge(chunks).text == OPENAI_TEXT_ANSWER
    assert chunks[-1].chunk_position == "last"


@pytest.mark.anyio
async def test_a_close_delimited_stream_cut_short_is_a_connection_error() -> None:
    body = sse(openai_chunk({"content": "It's"}), done=False)
    async with serve(Reply([body], chunked=False)) as server:
        _, error = await collect_until_error(model_for(server.url))
    assert isinstance(error, APIConnectionError)
    assert "ended before the reply was complete" in str(error)
    assert error.partial is not None and error.partial.text == "It's"


@pytest.mark.anyio
async def test_connection_refused_is_an_api_connection_error() -> None:
    port = await closed_port()
    model = ChatOpenAI("gpt-5-nano", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY,
                       max_retries=0)
    _, error = await collect_until_error(model)
    assert isinstance(error, APIConnectionError)
    assert "could not connect" in str(error)
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert KEY not in "".join(traceback.format_exception(error))


# -- cancellation and backpressure reach the socket -----------------------------------------------


@pytest.mark.anyio
async def test_leaving_the_async_iterator_early_closes_the_connection() -> None:
    body = [sse(openai_chunk({"content": "It's"}), done=False), STALL]
    async with serve(Reply(body)) as server:
        iterator = to_async_iterator(model_for(server.url).stream(HI))
        with anyio.fail_after(10):
            first = await iterator.__anext__()
            await iterator.aclose()
            await server.wait_disconnects(1)
    assert first.content == "It's"


@pytest.mark.anyio
async def test_a_cancelled_call_gives_its_pool_slot_back() -> None:
    stalled = [sse(openai_chunk({"content": "It's"}), done=False), STALL]
    limits = httpx.Limits(max_connections=1)
    async with serve(Reply(stalled), Reply([OPENAI_TEXT])) as server, httpx.AsyncClient(
        limits=limits
    ) as client:
        model = model_for(server.url, http_client=client, timeout=Timeouts(first_token=5))
        iterator = to_async_iterator(model.stream(HI))
        with anyio.fail_after(10):
            await iterator.__anext__()
            await iterator.aclose()
            await server.wait_disconnects(1)
            # With one connection allowed, this call only starts if the first gave it back.
            assert (await model.ainvoke(HI)).text == OPENAI_TEXT_ANSWER
    assert server.connections == 2


@pytest.mark.anyio
async def test_disposing_the_subscription_closes_the_connection() -> None:
    body = [sse(openai_chunk({"content": "It's"}), done=False), STALL]
    async with serve(Reply(body)) as server:
        arrived = anyio.Event()
        seen: list[AIMessageChunk] = []

        def on_next(chunk: AIMessageChunk) -> None:
            seen.append(chunk)
            arrived.set()

        subscription = model_for(server.url).stream(HI).subscribe(on_next)
        with anyio.fail_after(10):
            await arrived.wait()
            subscription.dispose()
            await server.wait_disconnects(1)
    assert [c.content for c in seen] == ["It's"]


def test_breaking_out_of_a_sync_loop_closes_the_connection() -> None:
    body = [sse(openai_chunk({"content": "It's"}), done=False), STALL]
    with serve_in_thread(Reply(body)) as (server, portal):
        for chunk in to_iterator(model_for(server.url).stream(HI)):
            assert chunk.content == "It's"
            break
        portal.call(server.wait_disconnects, 1)


def test_sync_invoke() -> None:
    with serve_in_thread(Reply([OPENAI_TEXT])) as (server, _):
        message = model_for(server.url).invoke(HI)
    assert message.text == OPENAI_TEXT_ANSWER


@pytest.mark.anyio
async def test_an_injected_client_is_used_kept_open_and_reuses_its_connection() -> None:
    replies = [Reply([OPENAI_TEXT]), Reply([OPENAI_TEXT])]
    async with serve(*replies) as server, httpx.AsyncClient() as client:
        model = model_for(server.url, http_client=client)
        for _ in range(2):
            assert (await model.ainvoke(HI)).text == OPENAI_TEXT_ANSWER
        assert not client.is_closed
    assert len(server.requests) == 2
    assert server.connections == 1


# -- requests: every conversation the agent builds goes back --------------------------------------


@pytest.mark.anyio
async def test_the_agent_conversation_is_sent_in_chat_completions_format() -> None:
    conversation = [
        SystemMessage(content="You are terse."),
        HumanMessage(content="What is the weather in SF and Paris?"),
        AIMessage(
            content="",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "San Francisco"}, "id": "call_1"},
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_2"},
            ],
        ),
        ToolMessage(content="It's always sunny in San Francisco!", tool_call_id="call_1",
                    name="get_weather"),
        ToolMessage(content="Error: boom", tool_call_id="call_2", status="error"),
        AIMessage(content=[{"type": "reasoning", "reasoning": "hmm"},
                           {"type": "text", "text": "Sunny, and"}, " unknown."]),
        HumanMessage(content=["Look:", {"type": "image", "url": "https://x/cat.png"}]),
    ]
    async with serve(Reply([OPENAI_TEXT])) as server:
        await collect(model_for(server.url, temperature=0), conversation, tools=[WEATHER_TOOL])
    sent = server.requests[0].json
    assert sent["temperature"] == 0
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the weather in SF and Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "San Francisco"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1",
         "content": "It's always sunny in San Francisco!"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Error: boom"},
        {"role": "assistant", "content": "Sunny, and unknown."},
        {"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
        ]},
    ]


@pytest.mark.anyio
async def test_a_streamed_reply_goes_back_on_the_next_turn() -> None:
    body = sse(
        openai_chunk({"tool_calls": [openai_call(0, id="call_1", name="get_weather", args="")]}),
        openai_chunk({"tool_calls": [openai_call(0, args='{"city": "San Fr')]}),
        openai_chunk(finish="length"),
    )
    async with serve(Reply([body]), Reply([OPENAI_TEXT])) as server:
        model = model_for(server.url)
        reply = await model.ainvoke(HI)
        # The agent answers an invalid call with an error result; both must go back.
        answer = ToolMessage(content="Error: the arguments are not valid JSON",
                             tool_call_id="call_1", status="error")
        await model.ainvoke([*HI, reply, answer])
    assert server.requests[1].json["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "San Fr'}}]},
        {"role": "tool", "tool_call_id": "call_1",
         "content": "Error: the arguments are not valid JSON"},
    ]


# -- disabled streaming, the exception tree ------------------------------------------------------


# disable_streaming=True: tests/chat_models/test_whole_replies.py


def test_model_call_error_is_the_root_of_call_failures() -> None:
    for kind in (APIConnectionError, APIStatusError, StreamProtocolError):
        assert issubclass(kind, ModelCallError)


# -- each shape of delta real servers send ------------------------------------------------------

REASONING = {"type": "reasoning", "reasoning": "hmm"}


@pytest.mark.parametrize(
    ("delta", "content"),
    [
        ({"content": "Hi"}, "Hi"),  # OpenAI
        ({"role": "assistant", "content": "Hi"}, "Hi"),  # Ollama, LM Studio: the role every time
        ({"content": "Hi", "reasoning_content": None}, "Hi"),  # DeepSeek
        ({"content": "Hi", "refusal": None, "tool_calls": []}, "Hi"),
        ({"content": "", "reasoning": "hmm"}, [REASONING]),  # Ollama: reasoning, empty text
        ({"content": "Hi", "reasoning_content": "hmm"}, [REASONING, {"type": "text",
                                                                     "text": "Hi"}]),
        ({"content": [{"type": "text", "text": "Hi"}]}, "Hi"),  # text in parts
        ({"content": "", "refusal": "No"}, "No"),
        ({"content": ""}, None),
        ({"role": "assistant", "content": ""}, None),
        ({"content": None}, None),
        ({"role": "assistant", "content": None, "reasoning_content": ""}, None),
    ],
)
def test_each_kind_of_delta_makes_the_chunk_it_should(delta: dict[str, Any], content: Any) -> None:
    # The usual text token takes a shorter path than the rest: they must agree.
    parser = OpenAIStreamParser("msg", model_name="m", provider="openai", label="OpenAI")
    (event,) = SSEDecoder().feed(sse(openai_chunk(delta), done=False).encode())
    chunk = parser.on_event(event)
    if content is None:
        assert chunk is None
    else:
        assert chunk == AIMessageChunk(content=content, id="msg")


FRAGMENT = {"name": None, "args": 'ty": "Z', "id": None, "index": 0, "type": "tool_call_chunk"}


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        # The usual piece of a call that has begun: the short path.
        ({"index": 0, "function": {"arguments": 'ty": "Z'}}, FRAGMENT),
        # The rest go through _fragments.
        ({"index": 0, "id": None, "function": {"arguments": 'ty": "Z'}},
         FRAGMENT),  # a null id, as some servers send
        ({"index": 0, "function": {"name": None, "arguments": 'ty": "Z'}}, FRAGMENT),
        ({"function": {"arguments": 'ty": "Z'}}, FRAGMENT),  # no index: the last call's
        ({"index": 1, "function": {"arguments": "{}"}},  # a call with no opening fragment
         {**FRAGMENT, "args": "{}", "index": 1}),
        ({"index": 0, "function": {"arguments": {"city": "Z"}}},  # the object itself
         {**FRAGMENT, "args": '{"city": "Z"}'}),
    ],
)
def test_each_kind_of_arguments_fragment_makes_the_chunk_it_should(
    call: dict[str, Any], fragment: dict[str, Any]
) -> None:
    # A further piece of a begun call takes a shorter path than the rest: they must agree,
    # down to the fields counted as set.
    parser = OpenAIStreamParser("msg", model_name="m", provider="openai", label="OpenAI")
    opening = openai_chunk({"tool_calls": [openai_call(0, id="call_1", name="get_weather",
                                                       args='{"ci')]})
    piece = openai_chunk({"tool_calls": [call]})
    events = SSEDecoder().feed(sse(opening, piece, done=False).encode())
    parser.on_event(events[0])
    chunk = parser.on_event(events[1])
    expected = AIMessageChunk(id="msg", tool_call_chunks=[fragment])  # (content left empty)
    assert chunk == expected
    assert chunk is not None and chunk.model_fields_set == expected.model_fields_set


# -- any split of a transcript assembles the same message ---------------------------------------

TOOL_TRANSCRIPT = sse(
    openai_chunk({"role": "assistant", "content": None, "reasoning_content": "Think ✓"}),
    openai_chunk({"content": "Checking "}),
    openai_chunk({"tool_calls": [openai_call(0, id="call_1", name="get_weather", args='{"ci')]}),
    openai_chunk({"tool_calls": [openai_call(0, args='ty": "Zürich"}')]}),
    openai_chunk({"tool_calls": [openai_call(1, id="call_2", name="get_weather",
                                             args='{"city": "東京"}')]}),
    openai_chunk(finish="tool_calls"),
    openai_chunk(choices=False, usage=USAGE),
    end="\r\n",
)


def assemble(pieces: list[bytes]) -> AIMessageChunk:
    decoder = SSEDecoder()
    parser = OpenAIStreamParser("msg", model_name="m", provider="openai", label="OpenAI")
    chunks: list[AIMessageChunk] = []
    for piece in [*pieces, None]:
        events = decoder.flush() if piece is None else decoder.feed(piece)
        for event in events:
            chunk = parser.on_event(event)
            if chunk is not None:
                chunks.append(chunk)
    chunks.append(parser.last_chunk())
    return merge(chunks)


@given(st.sets(st.integers(0, len(TOOL_TRANSCRIPT.encode())), max_size=30))
def test_any_split_of_a_transcript_assembles_the_same_message(cuts: set[int]) -> None:
    for raw in (OPENAI_TEXT.encode(), TOOL_TRANSCRIPT.encode()):
        points = sorted(c for c in cuts if c <= len(raw))
        pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
        whole = assemble([raw])
        assert assemble(pieces) == whole
    assert [call["args"]["city"] for call in whole.tool_calls] == ["Zürich", "東京"]
