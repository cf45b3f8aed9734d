"""The seed docs' examples with their model strings, served over HTTP from loopback.

``create_agent(model="gpt-5-nano", ...)`` resolves to ChatOpenAI, which reads OPENAI_BASE_URL
and OPENAI_API_KEY; the Claude example likewise reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY.
The server answers each model turn with a transcript in the provider's wire format and records
what the agent sent back, so the whole loop (tool call, tool result, answer) crosses the wire.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

try:
    from rxagent import create_agent, get_stream_writer
except ImportError:  # pragma: no cover - until the package root exports the agent
    pytest.skip("rxagent.create_agent is not exported yet", allow_module_level=True)

from .loopback import LoopbackServer, Reply, serve_in_thread
from .transcripts import (
    ANTHROPIC_TOOL_USE,
    MESSAGE_STOP,
    USAGE,
    anthropic_events,
    block_start,
    block_stop,
    message_delta,
    message_start,
    openai_call,
    openai_chunk,
    sse,
    text_delta,
)

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in SF?"}]}
ANSWER = "Here's what I got: \"It's always sunny in San Francisco!\""

OPENAI_TOOL_TURN = sse(
    openai_chunk({"role": "assistant", "content": None}),
    openai_chunk({"tool_calls": [openai_call(0, id="call_KTNQIftMrl9vgNwEfAJMVu7r",
                                             name="get_weather", args="")]}),
    *[openai_chunk({"tool_calls": [openai_call(0, args=piece)]})
      for piece in ['{"', "city", '":"', "San", " Francisco", '"}']],
    openai_chunk(finish="tool_calls"),
    openai_chunk(choices=False, usage=USAGE),
)
OPENAI_ANSWER_TURN = sse(
    openai_chunk({"role": "assistant", "content": ""}),
    *[openai_chunk({"content": word}) for word in
      ["Here", "'s", " what", " I", " got", ":", ' "', "It's", " always", " sunny", " in",
       " San", " Francisco", '!"']],
    openai_chunk(finish="stop"),
    openai_chunk(choices=False, usage=USAGE),
)
ANTHROPIC_ANSWER_TURN = anthropic_events(
    message_start(),
    block_start(0, {"type": "text", "text": ""}),
    text_delta(0, "It's always sunny"),
    text_delta(0, " in San Francisco!"),
    block_stop(0),
    message_delta("end_turn", 12),
    MESSAGE_STOP,
)


def get_weather(city: str) -> str:
    """Get weather for a given city."""
    return f"It's always sunny in {city}!"


def get_weather_with_writer(city: str) -> str:
    """Get weather for a given city."""
    writer = get_stream_writer()
    writer(f"Looking up data for city: {city}")
    writer(f"Acquired data for city: {city}")
    return f"It's always sunny in {city}!"


get_weather_with_writer.__name__ = "get_weather"


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    replies = [Reply([OPENAI_TOOL_TURN], piece=7), Reply([OPENAI_ANSWER_TURN], piece=7)]
    with serve_in_thread(*replies) as (server, _):
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-seed-test")
        yield server


def test_agent_progress_over_http(
    openai_server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = create_agent(model="gpt-5-nano", tools=[get_weather])
    for chunk in agent.stream(QUESTION, stream_mode="updates"):
        for step, data in chunk.items():
            print(f"step: {step}")
            print(f"content: {data['messages'][-1].content_blocks}")

    assert capsys.readouterr().out.splitlines() == [
        "step: model",
        "content: [{'type': 'tool_call', 'name': 'get_weather', "
        "'args': {'city': 'San Francisco'}, 'id': 'call_KTNQIftMrl9vgNwEfAJMVu7r'}]",
        "step: tools",
        "content: [{'type': 'text', 'text': \"It's always sunny in San Francisco!\"}]",
        "step: model",
        f"content: [{{'type': 'text', 'text': {ANSWER!r}}}]",
    ]
    first, second = openai_server.requests
    assert first.headers["authorization"] == "Bearer sk-seed-test"
    assert first.json["model"] == "gpt-5-nano"
    assert [tool["function"]["name"] for tool in first.json["tools"]] == ["get_weather"]
    assert second.json["messages"] == [
        {"role": "user", "content": "What is the weather in SF?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_KTNQIftMrl9vgNwEfAJMVu7r", "type": "function",
             "function": {"name": "get_weather",
                          "arguments": json.dumps({"city": "San Francisco"})}}]},
        {"role": "tool", "tool_call_id": "call_KTNQIftMrl9vgNwEfAJMVu7r",
         "content": "It's always sunny in San Francisco!"},
    ]


def test_llm_tokens_over_http(
    openai_server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = create_agent(model="gpt-5-nano", tools=[get_weather])
    for token, metadata in agent.stream(QUESTION, stream_mode="messages"):
        print(f"node: {metadata['langgraph_node']}")
        print(f"content: {token.content_blocks}")

    lines = capsys.readouterr().out.splitlines()
    assert lines[:6] == [
        "node: model",
        "content: [{'type': 'tool_call_chunk', 'id': 'call_KTNQIftMrl9vgNwEfAJMVu7r', "
        "'name': 'get_weather', 'args': '', 'index': 0}]",
        "node: model",
        "content: [{'type': 'tool_call_chunk', 'id': None, 'name': None, 'args': '{\"', "
        "'index': 0}]",
        "node: model",
        "content: [{'type': 'tool_call_chunk', 'id': None, 'name': None, 'args': 'city', "
        "'index': 0}]",
    ]
    assert "content: []" in lines  # each model turn ends with an empty last chunk
    assert "content: [{'type': 'text', 'text': \"It's always sunny in San Francisco!\"}]" in lines
    assert "content: [{'type': 'text', 'text': ' Francisco'}]" in lines


def test_custom_updates_from_a_claude_model_over_http(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    replies = [Reply([ANTHROPIC_TOOL_USE], piece=5), Reply([ANTHROPIC_ANSWER_TURN])]
    with serve_in_thread(*replies) as (server, _):
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-seed-test")
        agent = create_agent(model="claude-sonnet-4-5-20250929", tools=[get_weather_with_writer])
        for chunk in agent.stream(QUESTION, stream_mode="custom"):
            print(chunk)

    assert capsys.readouterr().out.splitlines() == [
        "Looking up data for city: San Francisco",
        "Acquired data for city: San Francisco",
    ]
    first, second = server.requests
    assert first.headers["x-api-key"] == "sk-ant-seed-test"
    assert second.json["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check the weather."},
            {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
             "input": {"city": "San Francisco"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
             "content": "It's always sunny in San Francisco!"},
        ]},
    ]
