"""text(), reasoning(), tool_calls(), accumulate() and the filters, on real agent runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import reactivex.operators as ops

from rxagent import UsageError, create_agent, get_stream_writer
from rxagent import operators as rxo
from rxagent.messages import AIMessage, AIMessageChunk
from rxagent.testing import FunctionChatModel, ScriptedChatModel

HI = {"messages": ["What is the weather in SF and LA?"]}


def get_weather(city: str) -> str:
    """Get weather for a given city."""
    get_stream_writer()(f"looking up {city}")
    return f"Sunny in {city}."


def two_calls() -> AIMessage:
    return AIMessage(content="Checking.", tool_calls=[
        {"name": "get_weather", "args": {"city": "SF"}, "id": "a"},
        {"name": "get_weather", "args": {"city": "LA"}, "id": "b"},
    ])


def weather_run(**options: Any) -> Any:
    model = ScriptedChatModel([two_calls(), "Both sunny."], **options)
    return create_agent(model, tools=[get_weather]).observe(HI)


def collect(run: Any, *operators: Any) -> list[Any]:
    return list(run.pipe(*operators, ops.to_list()).run())


def test_text_is_every_text_delta_and_nothing_else() -> None:
    assert collect(weather_run(), rxo.text()) == ["Checking.", "Both", " sunny."]


def test_tool_calls_gives_each_call_once_complete() -> None:
    calls = collect(weather_run(), rxo.tool_calls())
    assert [(c["id"], c["name"], c["args"]) for c in calls] == [
        ("a", "get_weather", {"city": "SF"}),
        ("b", "get_weather", {"city": "LA"}),
    ]


def test_tool_calls_works_on_whole_messages_too() -> None:
    calls = collect(weather_run(disable_streaming=True), rxo.tool_calls())
    assert [c["id"] for c in calls] == ["a", "b"]


def test_accumulate_grows_the_message_per_call() -> None:
    pairs = collect(weather_run(), rxo.accumulate())
    texts = [message.text for message, _ in pairs]
    assert texts[-3:] == ["Both", "Both sunny.", "Both sunny."]
    finals = [message for message, _ in pairs if message.chunk_position == "last"]
    assert len(finals) == 2
    assert [c["id"] for c in finals[0].tool_calls] == ["a", "b"]
    assert finals[1].text == "Both sunny." and not finals[1].tool_calls


def test_reasoning_picks_reasoning_blocks_only() -> None:
    def thinking(messages: Any, tools: Any) -> Iterator[AIMessageChunk | str]:
        yield AIMessageChunk(content=[{"type": "reasoning", "reasoning": "The user"}])
        yield AIMessageChunk(content=[{"type": "reasoning", "reasoning": " says hi."}])
        yield "Hello!"

    run = create_agent(FunctionChatModel(thinking)).observe(HI)
    assert collect(run, rxo.reasoning()) == ["The user", " says hi."]
    assert collect(create_agent(FunctionChatModel(thinking)).observe(HI), rxo.text()) == [
        "Hello!"
    ]


def test_from_nodes_keeps_a_nodes_parts_and_the_states() -> None:
    parts = collect(weather_run(), rxo.from_nodes("tools"))
    kinds = {part["type"] for part in parts}
    assert kinds == {"messages", "updates", "custom", "values"}
    assert all(p["data"][1]["langgraph_node"] == "tools" for p in parts
               if p["type"] == "messages")
    assert all("tools" in p["data"] for p in parts if p["type"] == "updates")
    model_only = collect(weather_run(), rxo.from_nodes("model"), rxo.custom())
    assert model_only == []


def test_metadata_filters_drop_other_calls_tokens_and_pass_other_parts() -> None:
    everything = collect(weather_run(), rxo.stream_mode("updates", "custom"))
    for operator in (rxo.from_models("nobody"), rxo.with_tags("nope"), rxo.from_agents("x")):
        parts = collect(weather_run(), operator)
        model_tokens = [p for p in parts if p["type"] == "messages"
                        and isinstance(p["data"][0], AIMessageChunk)]
        assert model_tokens == []
        rest = collect(weather_run(), operator, rxo.stream_mode("updates", "custom"))
        # The two tool calls run in parallel: compare what arrived, not its interleaving.
        assert sorted(mode for mode, _ in rest) == sorted(mode for mode, _ in everything)
    kept = collect(weather_run(), rxo.from_models("scripted"), rxo.text())
    assert kept == ["Checking.", "Both", " sunny."]


def test_tags_and_agent_names_reach_the_filters() -> None:
    agent = create_agent(ScriptedChatModel(["Hi there."] * 2, tags=["fast"]), name="greeter")
    run = agent.observe(HI, {"tags": ["web"]})
    assert collect(run, rxo.with_tags("web"), rxo.text()) == ["Hi", " there."]
    assert collect(agent.observe(HI), rxo.with_tags("fast"), rxo.from_agents("greeter"),
                   rxo.text()) == ["Hi", " there."]


def test_in_namespace_keeps_the_top_level_run() -> None:
    parts = collect(weather_run(), rxo.in_namespace(exact=True))
    assert parts and all(p["ns"] == () for p in parts)
    assert collect(weather_run(), rxo.in_namespace("tools:zzz")) == []


def test_filters_need_names() -> None:
    with pytest.raises(UsageError):
        rxo.from_nodes()
