"""``disable_streaming``: a non-streaming request and the whole JSON reply, over loopback.

The bodies are OpenAI's ``chat.completion`` and Anthropic's ``message`` as their API
references show them, sent in 1-byte pieces. Streaming's own tests are elsewhere; here: the
request (``"stream": false``, no ``stream_options``), the message, tool calls, usage and
metadata the reply makes, errors and retries, and ``"tool_calling"`` deciding per call.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from rxagent import APIStatusError, StreamProtocolError
from rxagent._bridges import to_async_iterator
from rxagent.chat_models import ChatAnthropic, ChatOpenAI, RetryPolicy
from rxagent.messages import AIMessageChunk

from .loopback import Reply, serve, serve_in_thread
from .transcripts import ANTHROPIC_MODEL, OPENAI_TEXT, OPENAI_TEXT_ANSWER

HI = [{"role": "user", "content": "What is the weather in SF?"}]
WEATHER = {
    "name": "get_weather",
    "description": "Get weather for a given city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
FAST = RetryPolicy(initial=0.001, maximum=0.002)

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4.1-2025-04-14",
    "choices": [{
        "index": 0,
        "message": {"role": "assistant", "content": "It's always sunny in SF.",
                    "refusal": None, "annotations": []},
        "logprobs": None,
        "finish_reason": "stop",
    }],
    "usage": {
        "prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_a1102cf978",
}

TOOL_COMPLETION: dict[str, Any] = {
    **COMPLETION,
    "choices": [{
        "index": 0,
        "message": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Boston"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'}},
            ],
            "refusal": None,
        },
        "logprobs": None,
        "finish_reason": "tool_calls",
    }],
}

MESSAGE: dict[str, Any] = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": ANTHROPIC_MODEL,
    "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
         "input": {"city": "San Francisco"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_read_input_tokens": 0,
              "cache_creation_input_tokens": 0},
}


def json_reply(payload: dict[str, Any], status: int = 200) -> Reply:
    return Reply([json.dumps(payload)], status=status, content_type="application/json",
                 piece=1)


def openai(url: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI("gpt-4.1", base_url=url + "/v1", api_key="sk-test", **kwargs)


def anthropic(url: str, **kwargs: Any) -> ChatAnthropic:
    return ChatAnthropic(ANTHROPIC_MODEL, base_url=url, api_key="sk-ant-test", **kwargs)


async def chunks_of(stream: Any) -> list[AIMessageChunk]:
    with anyio.fail_after(10):
        return [chunk async for chunk in to_async_iterator(stream)]


@pytest.mark.anyio
async def test_openai_sends_a_non_streaming_request_and_reads_the_completion() -> None:
    async with serve(json_reply(COMPLETION)) as server:
        model = openai(server.url, disable_streaming=True)
        chunks = await chunks_of(model.stream(HI))
    (request,) = server.requests
    assert request.json["stream"] is False
    assert "stream_options" not in request.json
    assert request.headers["accept"] == "application/json"
    (only,) = chunks
    assert only.text == "It's always sunny in SF." and only.chunk_position == "last"
    assert only.usage_metadata == {
        "input_tokens": 19, "output_tokens": 10, "total_tokens": 29,
        "input_token_details": {"audio": 0, "cache_read": 0},
        "output_token_details": {"audio": 0, "reasoning": 0},
    }
    assert only.response_metadata == {
        "token_usage": COMPLETION["usage"],
        "model_name": "gpt-4.1-2025-04-14",
        "system_fingerprint": "fp_a1102cf978",
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "service_tier": "default",
        "finish_reason": "stop",
        "logprobs": None,
        "model_provider": "openai",
    }


@pytest.mark.anyio
async def test_openai_whole_tool_calls_are_parsed() -> None:
    async with serve(json_reply(TOOL_COMPLETION)) as server:
        reply = await openai(server.url, disable_streaming=True).ainvoke(HI, tools=[WEATHER])
    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Boston"}, "call_1"),
        ("get_weather", {"city": "Tokyo"}, "call_2"),
    ]
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert server.requests[0].json["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.anyio
async def test_anthropic_sends_a_non_streaming_request_and_reads_the_message() -> None:
    async with serve(json_reply(MESSAGE)) as server:
        model = anthropic(server.url, disable_streaming=True)
        reply = await model.ainvoke(HI, tools=[WEATHER])
    assert server.requests[0].json["stream"] is False
    assert reply.text == "Let me check."
    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [
        ("get_weather", {"city": "San Francisco"}, "toolu_01A")
    ]
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 503
    metadata = reply.response_metadata
    assert metadata["id"] == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert metadata["model"] == metadata["model_name"] == ANTHROPIC_MODEL
    assert metadata["stop_reason"] == "tool_use" and metadata["stop_sequence"] is None
    assert metadata["usage"] == MESSAGE["usage"]
    assert metadata["model_provider"] == "anthropic"


def test_a_whole_reply_from_sync_code() -> None:
    with serve_in_thread(json_reply(COMPLETION)) as (server, _):
        reply = openai(server.url, disable_streaming=True).invoke("Hi")
    assert reply.text == "It's always sunny in SF."
    assert server.requests[0].json["stream"] is False


@pytest.mark.anyio
async def test_tool_calling_sends_a_whole_request_only_when_tools_are_bound() -> None:
    async with serve(json_reply(TOOL_COMPLETION), Reply([OPENAI_TEXT])) as server:
        model = openai(server.url, disable_streaming="tool_calling")
        with_tools = await model.ainvoke(HI, tools=[WEATHER])
        without = await chunks_of(model.stream(HI))
    first, second = server.requests
    assert first.json["stream"] is False and with_tools.tool_calls
    assert second.json["stream"] is True and "stream_options" in second.json
    assert len(without) > 2
    assert "".join(chunk.text for chunk in without) == OPENAI_TEXT_ANSWER


@pytest.mark.anyio
@pytest.mark.parametrize("make", [openai, anthropic], ids=["openai", "anthropic"])
async def test_an_http_error_is_the_status_error(make: Any) -> None:
    body = {"error": {"message": "bad model", "type": "invalid_request_error"}}
    async with serve(json_reply(body, status=400)) as server:
        with pytest.raises(APIStatusError) as caught:
            await make(server.url, disable_streaming=True).ainvoke(HI)
    assert caught.value.status_code == 400 and "bad model" in str(caught.value)


@pytest.mark.anyio
async def test_an_error_document_after_200_is_a_protocol_error() -> None:
    body = {"error": {"message": "boom", "type": "invalid_request_error"}}
    async with serve(json_reply(body)) as server:
        with pytest.raises(StreamProtocolError, match="boom"):
            await openai(server.url, disable_streaming=True).ainvoke(HI)


@pytest.mark.anyio
async def test_a_5xx_is_retried_then_the_whole_reply_read() -> None:
    overloaded = json_reply({"error": {"message": "later", "type": "server_error"}}, status=503)
    async with serve(overloaded, json_reply(COMPLETION)) as server:
        model = openai(server.url, disable_streaming=True)
        model.retry_policy = FAST
        reply = await model.ainvoke(HI)
    assert len(server.requests) == 2 and reply.text == "It's always sunny in SF."


@pytest.mark.anyio
async def test_a_stream_sent_for_a_whole_request_is_a_protocol_error() -> None:
    async with serve(Reply([OPENAI_TEXT])) as server:
        with pytest.raises(StreamProtocolError, match="not JSON"):
            await openai(server.url, disable_streaming=True).ainvoke(HI)


@pytest.mark.anyio
async def test_a_reply_larger_than_max_event_size_fails() -> None:
    async with serve(json_reply(COMPLETION)) as server:
        model = openai(server.url, disable_streaming=True, max_event_size=100)
        with pytest.raises(StreamProtocolError, match="max_event_size"):
            await model.ainvoke(HI)
