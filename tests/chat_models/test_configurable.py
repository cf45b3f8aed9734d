"""Configurable models: the Models page's examples run with only their imports changed, against
an OpenAI and an Anthropic server on loopback; then the same model in an agent's run, in a
tool, under trio, and what it refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

from rxagent import UsageError, create_agent
from rxagent.chat_models import ChatAnthropic, ChatOpenAI, ConfigurableChatModel, init_chat_model
from rxagent.messages import AIMessage
from rxagent.testing import ScriptedChatModel

from .loopback import LoopbackServer, Reply, serve, serve_in_thread
from .transcripts import (
    MESSAGE_STOP,
    OPENAI_TEXT,
    OPENAI_TEXT_ANSWER,
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

CLAUDE_TEXT = anthropic_events(
    message_start(), block_start(0, {"type": "text", "text": ""}), text_delta(0, "I'm Claude."),
    block_stop(0), message_delta("end_turn", 4), MESSAGE_STOP,
)


def openai_population_calls() -> str:
    calls = [("call_1", "Los Angeles, CA"), ("call_2", "New York, NY")]
    return sse(
        openai_chunk({"role": "assistant", "content": None}),
        *[openai_chunk({"tool_calls": [openai_call(i, id=id_, name="GetPopulation",
                                                   args=json.dumps({"location": where}))]})
          for i, (id_, where) in enumerate(calls)],
        openai_chunk(finish="tool_calls"),
    )


def claude_population_call() -> str:
    return anthropic_events(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "GetPopulation",
                        "input": {}}),
        json_delta(0, '{"location": "Los Angeles, CA"}'), block_stop(0),
        message_delta("tool_use", 9), MESSAGE_STOP,
    )


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    """An OpenAI server and an Anthropic one, where the page's model names lead."""
    with serve_in_thread() as (openai, _), serve_in_thread() as (anthropic, _):
        monkeypatch.setenv("OPENAI_BASE_URL", openai.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        yield openai, anthropic


def test_configurable_models(servers: tuple[LoopbackServer, LoopbackServer]) -> None:
    openai, anthropic = servers
    openai.add(Reply([OPENAI_TEXT]))
    anthropic.add(Reply([CLAUDE_TEXT]))

    configurable_model = init_chat_model(temperature=0)

    gpt = configurable_model.invoke(
        "what's your name",
        config={"configurable": {"model": "gpt-5-nano"}},  # Run with GPT-5-Nano
    )
    claude = configurable_model.invoke(
        "what's your name",
        config={"configurable": {"model": "claude-sonnet-4-6"}},  # Run with Claude
    )
    assert (gpt.text, claude.text) == (OPENAI_TEXT_ANSWER, "I'm Claude.")
    assert [openai.requests[0].json[k] for k in ("model", "temperature")] == ["gpt-5-nano", 0]
    assert [anthropic.requests[0].json[k] for k in ("model", "temperature")] == [
        "claude-sonnet-4-6", 0]
    assert isinstance(configurable_model, ConfigurableChatModel)


def test_configurable_model_with_default_values(
    servers: tuple[LoopbackServer, LoopbackServer],
) -> None:
    openai, anthropic = servers
    openai.add(Reply([OPENAI_TEXT]))
    anthropic.add(Reply([CLAUDE_TEXT]))

    first_model = init_chat_model(
            model="gpt-5.4-mini",
            temperature=0,
            configurable_fields=("model", "model_provider", "temperature", "max_tokens"),
            config_prefix="first",  # Useful when you have a chain with multiple models
    )

    first_model.invoke("what's your name")

    first_model.invoke(
        "what's your name",
        config={
            "configurable": {
                "first_model": "claude-sonnet-4-6",
                "first_temperature": 0.5,
                "first_max_tokens": 100,
            }
        },
    )
    sent = openai.requests[0].json
    assert (sent["model"], sent["temperature"]) == ("gpt-5.4-mini", 0)
    sent = anthropic.requests[0].json
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == (
        "claude-sonnet-4-6", 0.5, 100)


def test_using_a_configurable_model_declaratively(
    servers: tuple[LoopbackServer, LoopbackServer],
) -> None:
    openai, anthropic = servers
    openai.add(Reply([openai_population_calls()], piece=11))
    anthropic.add(Reply([claude_population_call()], piece=11))

    class GetWeather(BaseModel):
        """Get the current weather in a given location"""

        location: str = Field(description="The city and state, e.g. San Francisco, CA")

    class GetPopulation(BaseModel):
        """Get the current population in a given location"""

        location: str = Field(description="The city and state, e.g. San Francisco, CA")

    model = init_chat_model(temperature=0)
    model_with_tools = model.bind_tools([GetWeather, GetPopulation])

    gpt_calls = model_with_tools.invoke(
        "what's bigger in 2024 LA or NYC", config={"configurable": {"model": "gpt-5.4-mini"}}
    ).tool_calls
    claude_calls = model_with_tools.invoke(
        "what's bigger in 2024 LA or NYC",
        config={"configurable": {"model": "claude-sonnet-4-6"}},
    ).tool_calls
    assert [(c["name"], c["args"]) for c in gpt_calls] == [
        ("GetPopulation", {"location": "Los Angeles, CA"}),
        ("GetPopulation", {"location": "New York, NY"}),
    ]
    assert [(c["name"], c["args"], c["id"]) for c in claude_calls] == [
        ("GetPopulation", {"location": "Los Angeles, CA"}, "toolu_1")]
    assert [t["function"]["name"] for t in openai.requests[0].json["tools"]] == [
        "GetWeather", "GetPopulation"]
    assert [t["name"] for t in anthropic.requests[0].json["tools"]] == [
        "GetWeather", "GetPopulation"]


def test_one_choice_keeps_one_model_and_so_one_pooled_client() -> None:
    model = init_chat_model(temperature=0)
    assert isinstance(model, ConfigurableChatModel)
    nano = {"configurable": {"model": "gpt-5-nano"}}
    chosen = model.chosen(nano)
    assert isinstance(chosen, ChatOpenAI) and chosen.params["temperature"] == 0
    assert model.chosen(nano) is chosen
    assert model.chosen({"configurable": {"model": "gpt-5-nano", "temperature": 1}}) is chosen
    claude = model.chosen({"configurable": {"model": "claude-sonnet-4-6"}})
    assert isinstance(claude, ChatAnthropic)


def test_only_the_configurable_fields_are_read() -> None:
    model = init_chat_model("gpt-5-nano", configurable_fields=("temperature",))
    assert isinstance(model, ConfigurableChatModel)
    chosen = model.chosen({"configurable": {"model": "claude-sonnet-4-6", "temperature": 0.2}})
    assert isinstance(chosen, ChatOpenAI) and chosen.model_name == "gpt-5-nano"
    assert chosen.params["temperature"] == 0.2
    # Fixed by with_config, as a call's config would set it.
    fixed = model.with_config(configurable={"temperature": 0.7})
    assert fixed.chosen().params["temperature"] == 0.7


def test_a_model_string_alone_is_no_configurable_model() -> None:
    assert isinstance(init_chat_model("gpt-5-nano"), ChatOpenAI)
    with pytest.warns(UserWarning, match="config_prefix"):
        assert isinstance(init_chat_model("gpt-5-nano", config_prefix="x"), ChatOpenAI)


def test_a_call_that_chooses_no_model_is_refused_naming_the_key() -> None:
    model = init_chat_model(config_prefix="writer", configurable_fields=("model",))
    with pytest.raises(UsageError, match="'writer_model'"):
        model.invoke("hi")
    with pytest.raises(UsageError, match="configurable_fields"):
        init_chat_model(configurable_fields="model")
    with pytest.raises(UsageError, match="configurable"):
        ChatOpenAI("gpt-5-nano", configurable_fields=("model",))


def test_an_agents_run_config_chooses_its_model_step_by_step(
    servers: tuple[LoopbackServer, LoopbackServer],
) -> None:
    openai, anthropic = servers
    openai.add(Reply([OPENAI_TEXT], piece=5))
    anthropic.add(Reply([CLAUDE_TEXT], piece=5))
    agent = create_agent(init_chat_model(temperature=0), tools=[])
    seen: list[tuple[str, str]] = []
    for model_name in ("gpt-5-nano", "claude-sonnet-4-6"):
        for _chunk, metadata in agent.stream(
            {"messages": ["what's your name"]}, stream_mode="messages",
            config={"configurable": {"model": model_name}},
        ):
            seen.append((metadata["ls_provider"], metadata["ls_model_name"]))
    assert sorted(set(seen)) == [("anthropic", "claude-sonnet-4-6"), ("openai", "gpt-5-nano")]
    assert openai.requests[0].json["model"] == "gpt-5-nano"
    assert anthropic.requests[0].json["model"] == "claude-sonnet-4-6"


def test_a_model_called_in_a_tool_is_chosen_by_the_runs_config(
    servers: tuple[LoopbackServer, LoopbackServer],
) -> None:
    openai, _ = servers
    openai.add(Reply([OPENAI_TEXT]))
    writer = init_chat_model(temperature=0)

    def write(topic: str) -> str:
        """Write about a topic."""
        return writer.invoke(f"write about {topic}").text

    call = {"name": "write", "args": {"topic": "fog"}, "id": "call_1"}
    agent = create_agent(ScriptedChatModel([AIMessage(content="", tool_calls=[call]), "done"]),
                         tools=[write])
    result = agent.invoke({"messages": ["go"]},
                          config={"configurable": {"model": "gpt-5.4-mini"}})
    assert result["messages"][2].content == OPENAI_TEXT_ANSWER
    assert openai.requests[0].json["model"] == "gpt-5.4-mini"


@pytest.mark.anyio
async def test_a_configurable_model_streams_under_either_loop() -> None:
    async with serve(Reply([OPENAI_TEXT], piece=3)) as server:
        model = init_chat_model(base_url=server.url + "/v1", api_key="k",
                                configurable_fields=("model",))
        config: dict[str, Any] = {"configurable": {"model": "openai:gpt-5-nano"}}
        text = "".join([chunk.text async for chunk in model.astream("hi", config)])
    assert text == OPENAI_TEXT_ANSWER
    assert server.requests[0].json["model"] == "gpt-5-nano"
