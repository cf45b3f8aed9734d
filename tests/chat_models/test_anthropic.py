"""ChatAnthropic against a real HTTP server on loopback: events, thinking, usage, requests.

What both providers must do alike (retries, failures, timeouts, the secret key, backpressure)
is in test_both_providers.py.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxagent import StreamProtocolError, to_async_iterator
from rxagent.chat_models import ChatAnthropic, SSEDecoder

# Private on purpose: the parser and the request conversion are tested as units here.
from rxagent.chat_models._anthropic import AnthropicStreamParser, to_anthropic_messages
from rxagent.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from .loopback import STALL, Reply, serve
from .transcripts import (
    ANTHROPIC_MODEL,
    ANTHROPIC_TOOL_USE,
    MESSAGE_STOP,
    PING,
    anthropic_events,
    block_delta,
    block_start,
    block_stop,
    json_delta,
    merge,
    message_delta,
    message_start,
    text_delta,
)

KEY = "sk-ant-test-SECRET-0123456789"
HI = [{"role": "user", "content": "What is the weather in SF?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get weather for a given city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]},
}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[1, 5, None], ids=["1-byte", "5-bytes", "whole"])
def piece(request: pytest.FixtureRequest) -> int | None:
    return request.param  # type: ignore[no-any-return]


def model_for(url: str, **kwargs: Any) -> ChatAnthropic:
    kwargs.setdefault("api_key", KEY)
    return ChatAnthropic(ANTHROPIC_MODEL, base_url=url, **kwargs)


def after_opening(chunks: list[AIMessageChunk]) -> list[AIMessageChunk]:
    """The chunks after the empty one ``message_start`` opens the reply with (as
    langchain-anthropic streams it); none when nothing came."""
    if not chunks:
        return chunks
    opening = chunks[0]
    assert opening.content == "" and opening.chunk_position is None, opening
    assert opening.response_metadata == {"model_provider": "anthropic"}, opening
    return chunks[1:]


async def collect(model: ChatAnthropic, messages: Any = HI, **kwargs: Any) -> list[AIMessageChunk]:
    with anyio.fail_after(10):
        chunks = [chunk async for chunk in to_async_iterator(model.stream(messages, **kwargs))]
    return after_opening(chunks)


async def collect_until_error(
    model: ChatAnthropic, messages: Any = HI
) -> tuple[list[AIMessageChunk], Exception]:
    chunks: list[AIMessageChunk] = []
    with anyio.fail_after(10):
        try:
            async for chunk in to_async_iterator(model.stream(messages)):
                chunks.append(chunk)
        except Exception as error:
            return after_opening(chunks), error
    raise AssertionError("the stream did not fail")


@pytest.mark.anyio
async def test_text_then_tool_use_like_the_seed(piece: int | None) -> None:
    async with serve(Reply([ANTHROPIC_TOOL_USE], piece=piece)) as server:
        chunks = await collect(model_for(server.url), tools=[WEATHER_TOOL])
    assert [c.content for c in chunks[:2]] == ["Let me check", " the weather."]
    assert chunks[2].content_blocks == [
        {"type": "tool_call_chunk", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
         "name": "get_weather", "args": "", "index": 1}
    ]
    assert [c.tool_call_chunks[0]["args"] for c in chunks[3:5]] == ['{"city": "San',
                                                                    ' Francisco"}']
    assert len({c.id for c in chunks}) == 1
    last = chunks[-1]
    assert last.chunk_position == "last" and last.content == ""
    assert last.response_metadata == {
        "finish_reason": "tool_calls",
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "model_name": ANTHROPIC_MODEL,
        "model_provider": "anthropic",
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
        # Both names of the model and the usage as counted, as langchain-anthropic gives them.
        "model": ANTHROPIC_MODEL,
        "usage": {"input_tokens": 472, "output_tokens": 89},
    }
    assert last.usage_metadata == {"input_tokens": 472, "output_tokens": 89,
                                   "total_tokens": 561}
    message = merge(chunks).to_message()
    assert message.text == "Let me check the weather."
    assert message.tool_calls == [{"name": "get_weather", "args": {"city": "San Francisco"},
                                   "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "tool_call"}]
    (request,) = server.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.json == {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 4096,
        "messages": [{"role": "user",
                      "content": [{"type": "text", "text": "What is the weather in SF?"}]}],
        "stream": True,
        "tools": [{"name": "get_weather", "description": "Get weather for a given city.",
                   "input_schema": WEATHER_TOOL["parameters"]}],
    }


THINKING = anthropic_events(
    message_start(),
    block_start(0, {"type": "thinking", "thinking": ""}),
    block_delta(0, {"type": "thinking_delta", "thinking": "The user wants"}),
    PING,
    block_delta(0, {"type": "thinking_delta", "thinking": " the weather."}),
    block_delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}),
    block_stop(0),
    block_start(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}),
    block_stop(1),
    block_start(2, {"type": "text", "text": ""}),
    text_delta(2, "Sunny."),
    block_stop(2),
    message_delta("end_turn", 42),
    MESSAGE_STOP,
)


@pytest.mark.anyio
async def test_thinking_streams_and_goes_back_with_its_signature(piece: int | None) -> None:
    async with serve(Reply([THINKING], piece=piece), Reply([THINKING])) as server:
        model = model_for(server.url, thinking={"type": "enabled", "budget_tokens": 1024})
        chunks = await collect(model)
        reply = merge(chunks).to_message()
        await collect(model, [*HI, reply, {"role": "user", "content": "And in Paris?"}])
    assert chunks[0].content == [{"type": "thinking", "thinking": "The user wants", "index": 0}]
    assert reply.content == [
        {"type": "thinking", "thinking": "The user wants the weather.", "index": 0,
         "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix", "index": 1},
        {"type": "text", "text": "Sunny."},
    ]
    assert reply.text == "Sunny."
    assert reply.content_blocks[0] == {"type": "reasoning",
                                       "reasoning": "The user wants the weather.", "index": 0,
                                       "extras": {"signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}}
    assert reply.response_metadata["finish_reason"] == "stop"
    first, second = server.requests
    assert first.json["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert second.json["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "The user wants the weather.",
             "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "Sunny."},
        ]},
        {"role": "user", "content": [{"type": "text", "text": "And in Paris?"}]},
    ]


@pytest.mark.anyio
async def test_usage_counts_cache_tokens_and_message_delta_is_cumulative(
    piece: int | None,
) -> None:
    body = anthropic_events(
        message_start(5, cache_read_input_tokens=100, cache_creation_input_tokens=20),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "Hi"),
        message_delta("max_tokens", 10),
        # Newer servers repeat the input counts in message_delta, cumulatively.
        message_delta("max_tokens", 30, input_tokens=5, cache_read_input_tokens=100),
        MESSAGE_STOP,
    )
    async with serve(Reply([body], piece=piece)) as server:
        chunks = await collect(model_for(server.url))
    assert chunks[-1].usage_metadata == {
        "input_tokens": 125,
        "output_tokens": 30,
        "total_tokens": 155,
        "input_token_details": {"cache_read": 100, "cache_creation": 20},
    }
    assert chunks[-1].response_metadata["finish_reason"] == "length"
    assert chunks[-1].response_metadata["stop_reason"] == "max_tokens"


@pytest.mark.anyio
async def test_parallel_tool_use_and_a_tool_without_arguments(piece: int | None) -> None:
    body = anthropic_events(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_a", "name": "get_weather",
                        "input": {}}),
        json_delta(0, '{"city": "Rome"}'),
        block_stop(0),
        block_start(1, {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}),
        block_stop(1),
        message_delta("tool_use", 12),
        MESSAGE_STOP,
    )
    async with serve(Reply([body], piece=piece)) as server:
        message = merge(await collect(model_for(server.url))).to_message()
    assert message.tool_calls == [
        {"name": "get_weather", "args": {"city": "Rome"}, "id": "toolu_a", "type": "tool_call"},
        {"name": "get_time", "args": {}, "id": "toolu_b", "type": "tool_call"},
    ]


@pytest.mark.anyio
async def test_an_error_event_after_tokens_carries_the_partial(piece: int | None) -> None:
    body = anthropic_events(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "It's always"),
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    async with serve(Reply([body], piece=piece)) as server:
        chunks, error = await collect_until_error(model_for(server.url))
    assert isinstance(error, StreamProtocolError)
    assert "overloaded_error: Overloaded" in str(error)
    assert [c.content for c in chunks] == ["It's always"]
    assert error.partial is not None and error.partial.text == "It's always"
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_a_close_delimited_stream_without_message_stop_still_completes(
    piece: int | None,
) -> None:
    body = anthropic_events(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "Hi"),
        block_stop(0),
        message_delta("stop_sequence", 3),
    )
    async with serve(Reply([body], chunked=False, piece=piece)) as server:
        chunks = await collect(model_for(server.url))
    assert merge(chunks).text == "Hi"
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
    assert chunks[-1].response_metadata["stop_reason"] == "stop_sequence"
    assert chunks[-1].usage_metadata == {"input_tokens": 25, "output_tokens": 3,
                                         "total_tokens": 28}


@pytest.mark.anyio
async def test_leaving_early_closes_the_connection() -> None:
    body = [anthropic_events(message_start(), block_start(0, {"type": "text", "text": ""}),
                             text_delta(0, "It's")), STALL]
    async with serve(Reply(body)) as server:
        iterator = to_async_iterator(model_for(server.url).stream(HI))
        with anyio.fail_after(10):
            assert after_opening([await iterator.__anext__()]) == []
            assert (await iterator.__anext__()).content == "It's"
            await iterator.aclose()
            await server.wait_disconnects(1)


# -- requests -------------------------------------------------------------------------------------


def test_the_agent_conversation_in_messages_api_format() -> None:
    conversation = [
        SystemMessage(content="You are terse."),
        HumanMessage(content="Weather in SF and Paris?"),
        AIMessage(
            content="Checking.",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "San Francisco"}, "id": "toolu_1"},
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "toolu_2"},
            ],
            invalid_tool_calls=[{"name": "get_weather", "args": '{"ci', "id": "toolu_3",
                                 "error": "bad JSON"}],
        ),
        ToolMessage(content="It's always sunny in San Francisco!", tool_call_id="toolu_1"),
        ToolMessage(content="Error: no such city", tool_call_id="toolu_2", status="error"),
        ToolMessage(content="Error: bad JSON", tool_call_id="toolu_3", status="error"),
        HumanMessage(content=["Also:", {"type": "image", "base64": "iVBOR",
                                        "mime_type": "image/png"}]),
        SystemMessage(content="Answer in one line."),
        AIMessage(content=""),  # an empty turn the API would refuse: left out
    ]
    system, turns = to_anthropic_messages(conversation)
    assert system == "You are terse.\n\nAnswer in one line."
    assert turns == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in SF and Paris?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            # The invalid call's text, which its input ({}, below) cannot carry.
            {"type": "text", "text": '(the arguments of call toolu_3, not valid JSON: {"ci)'},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "San Francisco"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_3", "name": "get_weather", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": "It's always sunny in San Francisco!"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "Error: no such city",
             "is_error": True},
            {"type": "tool_result", "tool_use_id": "toolu_3", "content": "Error: bad JSON",
             "is_error": True},
            {"type": "text", "text": "Also:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBOR"}},
        ]},
    ]


def test_unsigned_reasoning_is_not_sent_back_and_system_blocks_stay_blocks() -> None:
    system, turns = to_anthropic_messages([
        SystemMessage(content=[{"type": "text", "text": "Be brief.",
                                "cache_control": {"type": "ephemeral"}}]),
        HumanMessage(content="Hi"),
        AIMessage(content=[{"type": "reasoning", "reasoning": "unsigned"},
                           {"type": "reasoning", "reasoning": "signed", "signature": "s1"},
                           {"type": "reasoning", "reasoning": "standard",
                            "extras": {"signature": "s2"}},
                           "Hello"]),
    ])
    assert system == [{"type": "text", "text": "Be brief.",
                       "cache_control": {"type": "ephemeral"}}]
    assert turns[1] == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "signed", "signature": "s1"},
        {"type": "thinking", "thinking": "standard", "signature": "s2"},
        {"type": "text", "text": "Hello"},
    ]}


# -- any split of a transcript assembles the same message ---------------------------------------


def assemble(pieces: list[bytes]) -> AIMessageChunk:
    decoder = SSEDecoder()
    parser = AnthropicStreamParser("msg", model_name="m", provider="anthropic",
                                   label="Anthropic")
    chunks: list[AIMessageChunk] = []
    for piece in [*pieces, None]:
        events = decoder.flush() if piece is None else decoder.feed(piece)
        for event in events:
            chunk = parser.on_event(event)
            if chunk is not None:
                chunks.append(chunk)
    chunks.append(parser.last_chunk())
    return merge(chunks)


@given(st.sets(st.integers(0, len(THINKING.encode()) + len(ANTHROPIC_TOOL_USE.encode())),
               max_size=30))
def test_any_split_of_a_transcript_assembles_the_same_message(cuts: set[int]) -> None:
    for raw in (THINKING.encode(), ANTHROPIC_TOOL_USE.encode()):
        points = sorted(c for c in cuts if c <= len(raw))
        pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
        assert assemble(pieces) == assemble([raw])
