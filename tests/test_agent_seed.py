"""The seed docs' four streaming examples, run with only their imports changed.

Each test is the seed's code with ``from rxagent import ...`` and a ScriptedChatModel in place
of the model string, and checks that it prints what the seed shows (tool-call ids aside: the
scripted model uses the ids its script gives).
"""

from __future__ import annotations

import pytest

from rxagent import create_agent, get_stream_writer
from rxagent.messages import AIMessage
from rxagent.testing import ScriptedChatModel

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in SF?"}]}


def weather_model() -> ScriptedChatModel:
    return ScriptedChatModel(
        [
            AIMessage(
                content="",
                tool_calls=[
                    {"name": "get_weather", "args": {"city": "San Francisco"}, "id": "call_1"}
                ],
            ),
            "Here's what I got: \"It's always sunny in San Francisco!\"\n\n",
        ]
    )


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


def test_agent_progress_updates(capsys: pytest.CaptureFixture[str]) -> None:
    agent = create_agent(model=weather_model(), tools=[get_weather])
    for chunk in agent.stream(QUESTION, stream_mode="updates"):
        for step, data in chunk.items():
            print(f"step: {step}")
            print(f"content: {data['messages'][-1].content_blocks}")

    assert capsys.readouterr().out.splitlines() == [
        "step: model",
        "content: [{'type': 'tool_call', 'name': 'get_weather', "
        "'args': {'city': 'San Francisco'}, 'id': 'call_1'}]",
        "step: tools",
        "content: [{'type': 'text', 'text': \"It's always sunny in San Francisco!\"}]",
        "step: model",
        "content: [{'type': 'text', 'text': 'Here\\'s what I got: \"It\\'s always sunny in "
        "San Francisco!\"\\n\\n'}]",
    ]


def test_llm_tokens_messages(capsys: pytest.CaptureFixture[str]) -> None:
    agent = create_agent(model=weather_model(), tools=[get_weather])
    for token, metadata in agent.stream(QUESTION, stream_mode="messages"):
        print(f"node: {metadata['langgraph_node']}")
        print(f"content: {token.content_blocks}")
        print("\n")

    blocks = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(("node:", "content:"))
    ]
    pairs = list(zip(blocks[::2], blocks[1::2], strict=True))

    def chunk(args: str, *, head: bool = False) -> str:
        ident, name = ("'call_1'", "'get_weather'") if head else ("None", "None")
        return (
            f"content: [{{'type': 'tool_call_chunk', 'id': {ident}, 'name': {name}, "
            f"'args': {args!r}, 'index': 0}}]"
        )

    words = ["Here's", " what", " I", " got:", ' "It\'s', " always", " sunny", " in", " San",
             ' Francisco!"\n\n']
    expected = (
        [("node: model", chunk("", head=True))]
        + [("node: model", chunk(a)) for a in ['{"', "city", '":"', "San", " Francisco", '"}']]
        + [("node: model", "content: []")]
        + [("node: tools",
            "content: [{'type': 'text', 'text': \"It's always sunny in San Francisco!\"}]")]
        + [("node: model", "content: []")]
        + [("node: model", f"content: {[{'type': 'text', 'text': w}]}") for w in words]
        + [("node: model", "content: []")]
    )
    assert pairs == expected


def test_custom_updates(capsys: pytest.CaptureFixture[str]) -> None:
    agent = create_agent(model=weather_model(), tools=[get_weather_with_writer])
    for chunk in agent.stream(QUESTION, stream_mode="custom"):
        print(chunk)

    assert capsys.readouterr().out.splitlines() == [
        "Looking up data for city: San Francisco",
        "Acquired data for city: San Francisco",
    ]


def test_stream_multiple_modes(capsys: pytest.CaptureFixture[str]) -> None:
    agent = create_agent(model=weather_model(), tools=[get_weather_with_writer])
    for stream_mode, chunk in agent.stream(QUESTION, stream_mode=["updates", "custom"]):
        print(f"stream_mode: {stream_mode}")
        print(f"content: {chunk}")
        print("\n")

    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    modes = [line for line in lines if line.startswith("stream_mode:")]
    contents = [line for line in lines if line.startswith("content:")]
    assert modes == [
        "stream_mode: updates",
        "stream_mode: custom",
        "stream_mode: custom",
        "stream_mode: updates",
        "stream_mode: updates",
    ]
    assert contents[0].startswith("content: {'model': {'messages': [AIMessage(content='',")
    assert "tool_calls=[{'name': 'get_weather', 'args': {'city': 'San Francisco'}, " \
           "'id': 'call_1', 'type': 'tool_call'}]" in contents[0]
    assert contents[1] == "content: Looking up data for city: San Francisco"
    assert contents[2] == "content: Acquired data for city: San Francisco"
    assert contents[3] == (
        "content: {'tools': {'messages': [ToolMessage(content=\"It's always sunny in San "
        "Francisco!\", name='get_weather', tool_call_id='call_1')]}}"
    )
    assert contents[4].startswith(
        "content: {'model': {'messages': [AIMessage(content='Here\\'s what I got:"
    )
