"""The seed docs' four examples, unchanged but for imports, with real providers over loopback.

``create_agent(model="gpt-5-nano", ...)`` resolves to ChatOpenAI, which reads OPENAI_BASE_URL
and OPENAI_API_KEY; with ``model="claude-sonnet-4-5-20250929"`` ChatAnthropic reads
ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY. The server answers each model turn with a transcript
in the provider's wire format (a tool call, then the answer, cut into 7-byte pieces) and records
what the agent sent back, so the whole loop (tool call, tool result, answer) crosses the wire.
Each example runs with both model strings and must print the same lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rxagent import create_agent, get_stream_writer

from .loopback import LoopbackServer, Reply, serve_in_thread
from .transcripts import (
    ANTHROPIC_MODEL,
    MESSAGE_STOP,
    OPENAI_MODEL,
    USAGE,
    anthropic_events,
    block_start,
    block_stop,
    json_delta,
    message_delta,
    message_start,
    openai_call,
    openai_chunk,
    sse,
    text_delta,
)

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in SF?"}]}
ARGUMENT_PIECES = ['{"', "city", '":"', "San", " Francisco", '"}']
ANSWER_WORDS = ["Here", "'s", " what", " I", " got", ":", ' "', "It's", " always", " sunny", " in",
                " San", " Francisco", '!"']
ANSWER = "".join(ANSWER_WORDS)

OPENAI_CALL_ID = "call_KTNQIftMrl9vgNwEfAJMVu7r"
OPENAI_TOOL_TURN = sse(  # the role comes with the call's head, as OpenAI sends it
    openai_chunk({"role": "assistant", "content": None,
                  "tool_calls": [openai_call(0, id=OPENAI_CALL_ID, name="get_weather",
                                             args="")]}),
    *[openai_chunk({"tool_calls": [openai_call(0, args=piece)]}) for piece in ARGUMENT_PIECES],
    openai_chunk(finish="tool_calls"),
    openai_chunk(choices=False, usage=USAGE),
)
OPENAI_ANSWER_TURN = sse(
    openai_chunk({"role": "assistant", "content": ""}),
    *[openai_chunk({"content": word}) for word in ANSWER_WORDS],
    openai_chunk(finish="stop"),
    openai_chunk(choices=False, usage=USAGE),
)

ANTHROPIC_CALL_ID = "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
ANTHROPIC_TOOL_TURN = anthropic_events(
    message_start(472),
    block_start(0, {"type": "tool_use", "id": ANTHROPIC_CALL_ID, "name": "get_weather",
                    "input": {}}),
    json_delta(0, ""),
    *[json_delta(0, piece) for piece in ARGUMENT_PIECES],
    block_stop(0),
    message_delta("tool_use", 89),
    MESSAGE_STOP,
)
ANTHROPIC_ANSWER_TURN = anthropic_events(
    message_start(580),
    block_start(0, {"type": "text", "text": ""}),
    *[text_delta(0, word) for word in ANSWER_WORDS],
    block_stop(0),
    message_delta("end_turn", 24),
    MESSAGE_STOP,
)


@dataclass(frozen=True)
class Served:
    """A model string, the server behind it, and what the provider calls things."""

    model: str
    server: LoopbackServer
    call_id: str
    provider: str
    served_model: str


@pytest.fixture(params=["gpt-5-nano", ANTHROPIC_MODEL])
def served(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    model: str = request.param
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    openai = model.startswith("gpt")
    turns = (OPENAI_TOOL_TURN, OPENAI_ANSWER_TURN) if openai else (ANTHROPIC_TOOL_TURN,
                                                                   ANTHROPIC_ANSWER_TURN)
    with serve_in_thread(*[Reply([turn], piece=7) for turn in turns]) as (server, _):
        if openai:
            monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
            monkeypatch.setenv("OPENAI_API_KEY", "sk-seed-test")
            yield Served(model, server, OPENAI_CALL_ID, "openai", OPENAI_MODEL)
        else:
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-seed-test")
            yield Served(model, server, ANTHROPIC_CALL_ID, "anthropic", ANTHROPIC_MODEL)


def get_weather(city: str) -> str:
    """Get weather for a given city."""
    return f"It's always sunny in {city}!"


def get_weather_with_writer(city: str) -> str:
    """Get weather for a given city."""
    writer = get_stream_writer()
    # stream any arbitrary data
    writer(f"Looking up data for city: {city}")
    writer(f"Acquired data for city: {city}")
    return f"It's always sunny in {city}!"


get_weather_with_writer.__name__ = "get_weather"


def check_round_trip(served: Served) -> None:
    """The second model call sent the tool call and its result back, in the provider's format."""
    first, second = served.server.requests
    if served.provider == "openai":
        assert first.path == "/v1/chat/completions"
        assert first.headers["authorization"] == "Bearer sk-seed-test"
        assert first.json["model"] == "gpt-5-nano"
        assert [tool["function"]["name"] for tool in first.json["tools"]] == ["get_weather"]
        assert second.json["messages"] == [
            {"role": "user", "content": "What is the weather in SF?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": OPENAI_CALL_ID, "type": "function",
                 "function": {"name": "get_weather",
                              "arguments": '{"city": "San Francisco"}'}}]},
            {"role": "tool", "tool_call_id": OPENAI_CALL_ID,
             "content": "It's always sunny in San Francisco!"},
        ]
    else:
        assert first.path == "/v1/messages"
        assert first.headers["x-api-key"] == "sk-ant-seed-test"
        assert first.json["model"] == ANTHROPIC_MODEL
        assert [tool["name"] for tool in first.json["tools"]] == ["get_weather"]
        assert second.json["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "What is the weather in SF?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": ANTHROPIC_CALL_ID, "name": "get_weather",
                 "input": {"city": "San Francisco"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": ANTHROPIC_CALL_ID,
                 "content": "It's always sunny in San Francisco!"}]},
        ]


def test_agent_progress(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    agent = create_agent(
        model=served.model,
        tools=[get_weather],
    )
    for chunk in agent.stream(
        {"messages": [{"role": "user", "content": "What is the weather in SF?"}]},
        stream_mode="updates",
    ):
        for step, data in chunk.items():
            print(f"step: {step}")
            print(f"content: {data['messages'][-1].content_blocks}")

    assert capsys.readouterr().out.splitlines() == [
        "step: model",
        "content: [{'type': 'tool_call', 'name': 'get_weather', "
        f"'args': {{'city': 'San Francisco'}}, 'id': '{served.call_id}'}}]",
        "step: tools",
        "content: [{'type': 'text', 'text': \"It's always sunny in San Francisco!\"}]",
        "step: model",
        f"content: [{{'type': 'text', 'text': {ANSWER!r}}}]",
    ]
    check_round_trip(served)


def test_llm_tokens(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    agent = create_agent(
        model=served.model,
        tools=[get_weather],
    )
    for token, metadata in agent.stream(
        {"messages": [{"role": "user", "content": "What is the weather in SF?"}]},
        stream_mode="messages",
    ):
        print(f"node: {metadata['langgraph_node']}")
        print(f"content: {token.content_blocks}")
        print("\n")

    lines = [line for line in capsys.readouterr().out.splitlines() if line]

    def call_chunk(args: str, head: bool = False) -> dict[str, Any]:
        return {"type": "tool_call_chunk", "id": served.call_id if head else None,
                "name": "get_weather" if head else None, "args": args, "index": 0}

    # A reply opens with an empty chunk when its first event holds nothing else: the docs
    # print one before 'Here' (OpenAI's role-only delta), none before the tool call's head
    # (which comes with the role). Anthropic's message_start always opens one, as
    # langchain-anthropic streams it.
    opens_tool_turn = [("model", [])] if served.provider == "anthropic" else []
    expected_blocks: list[tuple[str, list[dict[str, Any]]]] = [
        *opens_tool_turn,
        ("model", [call_chunk("", head=True)]),
        *[("model", [call_chunk(piece)]) for piece in ARGUMENT_PIECES],
        ("model", []),  # each model turn ends with an empty last chunk
        ("tools", [{"type": "text", "text": "It's always sunny in San Francisco!"}]),
        ("model", []),
        *[("model", [{"type": "text", "text": word}]) for word in ANSWER_WORDS],
        ("model", []),
    ]
    expected = []
    for node, blocks in expected_blocks:
        expected += [f"node: {node}", f"content: {blocks}"]
    assert lines == expected
    check_round_trip(served)


def test_custom_updates(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    agent = create_agent(
        model=served.model,
        tools=[get_weather_with_writer],
    )
    for chunk in agent.stream(
        {"messages": [{"role": "user", "content": "What is the weather in SF?"}]},
        stream_mode="custom",
    ):
        print(chunk)

    assert capsys.readouterr().out.splitlines() == [
        "Looking up data for city: San Francisco",
        "Acquired data for city: San Francisco",
    ]
    check_round_trip(served)


def test_stream_multiple_modes(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    agent = create_agent(
        model=served.model,
        tools=[get_weather_with_writer],
    )
    for stream_mode, chunk in agent.stream(
        {"messages": [{"role": "user", "content": "What is the weather in SF?"}]},
        stream_mode=["updates", "custom"],
    ):
        print(f"stream_mode: {stream_mode}")
        print(f"content: {chunk}")
        print("\n")

    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert [line for line in lines if line.startswith("stream_mode:")] == [
        "stream_mode: updates",
        "stream_mode: custom",
        "stream_mode: custom",
        "stream_mode: updates",
        "stream_mode: updates",
    ]
    contents = [line for line in lines if line.startswith("content:")]
    assert contents[0].startswith("content: {'model': {'messages': [AIMessage(content='',")
    assert (
        "tool_calls=[{'name': 'get_weather', 'args': {'city': 'San Francisco'}, "
        f"'id': '{served.call_id}', 'type': 'tool_call'}}]"
    ) in contents[0]
    assert f"'model_provider': '{served.provider}'" in contents[0]
    assert f"'model_name': '{served.served_model}'" in contents[0]
    assert "'finish_reason': 'tool_calls'" in contents[0]
    assert contents[1:3] == [
        "content: Looking up data for city: San Francisco",
        "content: Acquired data for city: San Francisco",
    ]
    assert contents[3] == (
        "content: {'tools': {'messages': [ToolMessage(content=\"It's always sunny in San "
        f"Francisco!\", name='get_weather', tool_call_id='{served.call_id}')]}}}}"
    )
    assert contents[4].startswith(
        f"content: {{'model': {{'messages': [AIMessage(content={ANSWER!r}"
    )
    check_round_trip(served)
