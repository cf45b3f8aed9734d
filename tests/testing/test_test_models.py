"""The test models shipped for users: exact chunk sequences, exhaustion, laziness, dispose."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import reactivex.operators as ops
from hypothesis import given
from hypothesis import strategies as st

from rxagent import ScriptExhaustedError, UsageError, to_async_iterator, to_iterator
from rxagent.messages import AIMessage, AIMessageChunk
from rxagent.testing import FunctionChatModel, ScriptedChatModel
from rxagent.testing._replies import split_arguments, split_text

WEATHER_CALL = AIMessage(
    content="",
    tool_calls=[{"name": "get_weather", "args": {"city": "San Francisco"}, "id": "call_1"}],
)
HI = [{"role": "user", "content": "What is the weather in SF?"}]


def test_scripted_tool_call_streams_like_the_seed() -> None:
    chunks = list(to_iterator(ScriptedChatModel([WEATHER_CALL]).stream(HI)))
    blocks = [chunk.content_blocks for chunk in chunks]
    assert blocks[0] == [{"type": "tool_call_chunk", "id": "call_1", "name": "get_weather",
                          "args": "", "index": 0}]
    assert [b[0]["args"] for b in blocks[1:-1]] == ['{"', "city", '":"', "San", " Francisco",
                                                   '"}']
    assert all(b[0]["id"] is None and b[0]["name"] is None for b in blocks[1:-1])
    last = chunks[-1]
    assert blocks[-1] == [] and last.chunk_position == "last"
    assert last.response_metadata["finish_reason"] == "tool_calls"
    assert last.usage_metadata is not None and last.usage_metadata["output_tokens"] == 7
    assert len({chunk.id for chunk in chunks}) == 1, "one message id per call"
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert merged.to_message().tool_calls == WEATHER_CALL.tool_calls


def test_scripted_text_streams_word_tokens_with_their_leading_space() -> None:
    text = "It's always sunny in San Francisco!\n\n"
    chunks = list(to_iterator(ScriptedChatModel([text]).stream(HI)))
    assert chunks[0].content_blocks == [], "an empty opening chunk, as providers send"
    assert [c.text for c in chunks[1:-1]] == ["It's", " always", " sunny", " in", " San",
                                             " Francisco!\n\n"]
    assert chunks[-1].text == "" and chunks[-1].response_metadata["finish_reason"] == "stop"


def test_script_exhaustion_is_a_clear_error_after_the_replies() -> None:
    model = ScriptedChatModel(["one"])
    assert model.invoke(HI).text == "one"
    with pytest.raises(ScriptExhaustedError, match="called 2 times but its script has 1"):
        model.invoke(HI)
    assert len(model.calls) == 1 and model.calls[0].messages[0].text == HI[0]["content"]


def test_a_script_holds_only_replies() -> None:
    with pytest.raises(UsageError, match="str or AIMessage"):
        ScriptedChatModel([42])  # type: ignore[list-item]


def test_tool_calls_without_ids_get_one() -> None:
    reply = AIMessage(content="", tool_calls=[{"name": "f", "args": {}, "id": None}])
    message = ScriptedChatModel([reply]).invoke(HI)
    assert message.tool_calls[0]["id"]


@pytest.mark.anyio
async def test_disposing_a_model_stream_cancels_the_call() -> None:
    cancelled = anyio.Event()

    async def one_then_wait(messages: Any, tools: Any) -> AsyncIterator[str]:
        try:
            yield "one"
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    seen: list[AIMessageChunk] = []
    first = anyio.Event()

    def on_next(chunk: AIMessageChunk) -> None:
        seen.append(chunk)
        first.set()

    subscription = FunctionChatModel(one_then_wait).stream(HI).subscribe(on_next)
    with anyio.fail_after(10):
        await first.wait()
    subscription.dispose()
    with anyio.fail_after(10):
        await cancelled.wait()  # the call itself was cancelled, not just unsubscribed
    assert [c.text for c in seen] == ["one"], "nothing arrives after dispose"


@pytest.mark.anyio
async def test_function_model_pulls_a_generator_only_on_demand() -> None:
    pulled = 0

    def tokens(messages: Any, tools: Any) -> Iterator[str]:
        nonlocal pulled
        for i in range(200):
            pulled += 1
            yield f"t{i} "

    got = 0
    async for _chunk in to_async_iterator(FunctionChatModel(tokens).stream(HI), max_buffer=8):
        got += 1
        assert pulled - got <= 9, "the generator runs at most a buffer ahead"
    assert got == 201, "200 tokens and the added last chunk"


@pytest.mark.anyio
@pytest.mark.parametrize("reply", ["words", "tool call"])
async def test_scripted_model_waits_for_room_before_each_chunk(reply: str) -> None:
    made = 0

    def count(_: AIMessageChunk) -> None:
        nonlocal made
        made += 1

    script: Any = " ".join(["w"] * 500) if reply == "words" else AIMessage(
        content="", tool_calls=[{"name": "f", "args": {"x": " ".join(["w"] * 500)}, "id": "c1"}]
    )
    stream = ScriptedChatModel([script]).stream(HI).pipe(ops.do_action(on_next=count))
    taken = ahead = 0
    async for _chunk in to_async_iterator(stream, max_buffer=8):
        taken += 1
        ahead = max(ahead, made - taken)
        await anyio.sleep(0)
    assert taken > 500
    assert ahead <= 8 + 1, "the model runs at most a buffer ahead of the consumer"


@pytest.mark.anyio
async def test_function_model_async_generator_and_plain_reply() -> None:
    async def agen(messages: Any, tools: Any) -> AsyncIterator[AIMessageChunk | str]:
        yield "a"
        yield AIMessageChunk(content="b")

    message = await FunctionChatModel(agen).ainvoke(HI)
    assert message.text == "ab"
    echo = FunctionChatModel(lambda messages, tools: f"echo: {messages[-1].text}")
    assert (await echo.ainvoke(HI)).text == f"echo: {HI[0]['content']}"


def test_function_model_rejects_other_results() -> None:
    with pytest.raises(UsageError, match="returns a str, an AIMessage"):
        FunctionChatModel(lambda messages, tools: 42).invoke(HI)


def test_model_stream_is_cold_and_runs_on_the_background_loop() -> None:
    model = ScriptedChatModel(["a b", "c d"])
    source = model.stream(HI).pipe(ops.map(lambda c: c.text), ops.to_list())
    assert source.run() == ["", "a", " b", ""]
    assert source.run() == ["", "c", " d", ""]
    done = threading.Event()
    source.subscribe(on_error=lambda e: done.set())
    assert done.wait(10), "a third call finds the script exhausted"


@given(st.text())
def test_split_text_joins_back(text: str) -> None:
    assert "".join(split_text(text)) == text


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=8))
def test_split_arguments_joins_back(value: Any) -> None:
    encoded = json.dumps({"v": value}, separators=(",", ":"))
    assert "".join(split_arguments(encoded)) == encoded


def test_function_model_streams_a_returned_chunk_with_its_tool_call_fragments() -> None:
    chunk = AIMessageChunk(content="", tool_call_chunks=[
        {"name": "f", "args": '{"x": 1}', "id": "c1", "index": 0}])
    message = FunctionChatModel(lambda messages, tools: chunk).invoke(HI)
    assert message.tool_calls == [{"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}]


@pytest.mark.anyio
async def test_function_model_paces_a_generator_with_delay() -> None:
    def three(messages: Any, tools: Any) -> Iterator[str]:
        yield from ["a", "b", "c"]

    seen: list[str] = []
    subscription = FunctionChatModel(three, delay=3600).stream(HI).subscribe(
        lambda chunk: seen.append(chunk.text)
    )
    with anyio.fail_after(10):
        while not seen:
            await anyio.sleep(0)
    for _ in range(100):  # without the pause, the rest would arrive in these turns
        await anyio.sleep(0)
    subscription.dispose()
    assert seen == ["a"]
