"""Both stream parsers fed JSON of every shape: only errors from rxagent's tree come out.

A chunk can be valid JSON and still the wrong shape (a string where the delta belongs, a number
for the choices). The parser must then end the call with a :class:`StreamProtocolError`, never
a raw ``AttributeError``/``TypeError``/``KeyError``; what it does deliver must be chunks that
merge, so that the reply (or the partial reply on the error) can still be assembled. The events
are generated whole (recursive JSON) and as real events from ``transcripts.py`` with one field
replaced by a value of another shape.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxagent import RxAgentError, StreamProtocolError
from rxagent.chat_models import ChatAnthropic, ChatOpenAI, SSEDecoder

# Private on purpose: the parsers are fuzzed as units here.
from rxagent.chat_models._anthropic import AnthropicStreamParser
from rxagent.chat_models._openai import OpenAIStreamParser
from rxagent.chat_models._sse import ServerSentEvent
from rxagent.messages import AIMessageChunk, ChunkAccumulator

from .loopback import Reply, serve
from .transcripts import (
    ANTHROPIC_TOOL_USE,
    MESSAGE_STOP,
    OPENAI_TEXT,
    USAGE,
    anthropic_events,
    block_delta,
    block_start,
    json_delta,
    message_delta,
    message_start,
    openai_call,
    openai_chunk,
    sse,
    text_delta,
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "type", "text_delta", "tool_use", "message_stop", "[DONE]"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["choices", "delta", "content", "tool_calls", "function", "index", "id", "name",
             "arguments", "usage", "type", "text", "message", "content_block", "input",
             "partial_json", "thinking", "signature", "stop_reason", "model", "x_groq", "x"]
        )
        | st.text(max_size=4),
        inner,
        max_size=5,
    ),
    max_leaves=20,
)


def _events_of(body: str) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    events = list(decoder.feed(body.encode())) + list(decoder.flush())
    return [json.loads(e.data) for e in events if e.data != "[DONE]"]


OPENAI_EVENTS = [
    *_events_of(OPENAI_TEXT),
    openai_chunk({"tool_calls": [openai_call(0, id="call_1", name="f", args='{"a"')]}),
    openai_chunk({"tool_calls": [openai_call(None, args=": 1}")]}),
    openai_chunk({"reasoning_content": "hmm", "refusal": "no"}, finish="tool_calls"),
    openai_chunk(choices=False, usage=USAGE),
]
ANTHROPIC_EVENTS = [
    *_events_of(ANTHROPIC_TOOL_USE),
    block_start(2, {"type": "thinking", "thinking": "", "signature": "sig"}),
    block_delta(2, {"type": "thinking_delta", "thinking": "hmm"}),
    block_delta(2, {"type": "signature_delta", "signature": "abc"}),
    block_start(3, {"type": "redacted_thinking", "data": "xyz"}),
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    # Every place in a JSON value that a mutation may replace (the root excluded).
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A real event with one field (at any depth) replaced by a value of any shape."""
    event = copy.deepcopy(draw(st.sampled_from(events)))
    path = draw(st.sampled_from(_paths(event)))
    target = event
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = draw(JSON)
    return event


def _stream(real: list[dict[str, Any]]) -> st.SearchStrategy[list[Any]]:
    # Real events, mutated ones and generated ones, in any order.
    return st.lists(st.sampled_from(real) | mutated(real) | JSON, min_size=1, max_size=12)


def _run(parser: Any, payloads: list[Any], names: list[str] | None = None) -> None:
    """Feed the events, then close the reply; assemble whatever came out."""
    accumulator = ChunkAccumulator()
    try:
        for i, payload in enumerate(payloads):
            name = names[i] if names else "message"
            chunk = parser.on_event(ServerSentEvent(name, json.dumps(payload)))
            if chunk is not None:
                assert isinstance(chunk, AIMessageChunk)
                accumulator.add(chunk)
            if parser.finished:
                break
        accumulator.add(parser.last_chunk())
    except RxAgentError:
        pass
    # What was delivered must merge into a reply, as the partial on an error is built.
    if not accumulator.empty:
        accumulator.snapshot()
        accumulator.to_message()


def _openai() -> OpenAIStreamParser:
    return OpenAIStreamParser("run-1", model_name="m", provider="openai", label="OpenAI")


def _anthropic() -> AnthropicStreamParser:
    return AnthropicStreamParser("run-1", model_name="m", provider="anthropic", label="Anthropic")


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(_stream(OPENAI_EVENTS))
def test_openai_parser_lets_out_only_tree_errors(payloads: list[Any]) -> None:
    _run(_openai(), payloads)


@FUZZ
@given(_stream(ANTHROPIC_EVENTS), st.data())
def test_anthropic_parser_lets_out_only_tree_errors(payloads: list[Any], data: Any) -> None:
    # Anthropic's parser reads the type from the payload, else from the event's name.
    names = [
        data.draw(st.sampled_from(["message", "content_block_delta", "content_block_start",
                                   "message_start", "message_delta", "message_stop", "error"]))
        for _ in payloads
    ]
    _run(_anthropic(), payloads, names)


@pytest.mark.parametrize(
    "payload",
    [
        {"choices": ["oops"]},
        {"choices": 7},
        {"choices": [{"delta": "oops"}]},
        {"choices": [{"delta": {"tool_calls": ["x"]}}]},
        {"choices": [{"delta": {"tool_calls": [{"function": "f"}]}}]},
    ],
)
def test_a_wrong_shape_from_openai_is_a_protocol_error_naming_the_event(payload: Any) -> None:
    parser = _openai()
    assert parser.on_event(ServerSentEvent("message", json.dumps(openai_chunk({"content": "Hi"}))))
    with pytest.raises(StreamProtocolError, match="OpenAI sent an event of the wrong") as info:
        parser.on_event(ServerSentEvent("message", json.dumps(payload)))
    assert json.dumps(payload)[:20] in str(info.value)
    assert isinstance(info.value.__cause__, (AttributeError, TypeError, KeyError, IndexError))


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "content_block_delta", "index": 0, "delta": "oops"},
        {"type": "content_block_start", "index": 0, "content_block": ["text"]},
        {"type": "message_start", "message": 3},
        {"type": "message_delta", "delta": [1]},
    ],
)
def test_a_wrong_shape_from_anthropic_is_a_protocol_error(payload: Any) -> None:
    parser = _anthropic()
    with pytest.raises(StreamProtocolError, match="Anthropic sent an event of the wrong shape"):
        parser.on_event(ServerSentEvent(payload["type"], json.dumps(payload)))


def test_wrong_types_in_usage_fail_the_last_chunk_inside_the_tree() -> None:
    parser = _openai()
    parser.on_event(ServerSentEvent("message", json.dumps(
        openai_chunk(choices=False, usage={"prompt_tokens": "many"}))))
    parser.on_event(ServerSentEvent("message", "[DONE]"))
    with pytest.raises(StreamProtocolError):
        parser.last_chunk()
    anthropic = _anthropic()
    bad_usage = {**message_delta("end_turn", 3), "usage": {"output_tokens": 1e999}}
    anthropic.on_event(ServerSentEvent("x", json.dumps(bad_usage)))
    with pytest.raises(StreamProtocolError, match="usage of the wrong shape"):
        anthropic.last_chunk()


# -- over HTTP: the call ends with the tree's error, the tokens delivered kept in it -----------


@pytest.mark.anyio
@pytest.mark.parametrize("bad", ['{"choices": ["oops"]}', '{"choices": [{"delta": "oops"}]}'])
async def test_openai_wrong_shape_mid_reply_keeps_the_partial(bad: str) -> None:
    body = sse(openai_chunk({"content": "Hello"}), openai_chunk({"content": " world"}), bad)
    async with serve(Reply([body])) as server:
        model = ChatOpenAI("m", api_key="k", base_url=server.url + "/v1", max_retries=0)
        with pytest.raises(StreamProtocolError) as info:
            await model.ainvoke("hi")
    assert info.value.partial is not None
    assert info.value.partial.content == "Hello world"


@pytest.mark.anyio
async def test_anthropic_wrong_shape_mid_reply_keeps_the_partial() -> None:
    body = anthropic_events(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "Hello"),
        {"type": "content_block_delta", "index": 0, "delta": "oops"},
        json_delta(0, "x"),
        MESSAGE_STOP,
    )
    async with serve(Reply([body])) as server:
        model = ChatAnthropic("m", api_key="k", base_url=server.url + "/v1", max_retries=0)
        with pytest.raises(StreamProtocolError) as info:
            await model.ainvoke("hi")
    assert info.value.partial is not None
    assert info.value.partial.content == "Hello"
