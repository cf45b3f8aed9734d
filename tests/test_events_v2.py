"""``astream_events(version="v2")``, ``stream_events`` and ``observe_events``: LangChain's events.

The same programs run under rxagent and LangGraph; the events must match in order, event
name, run name, run structure (``run_id`` and ``parent_ids`` numbered in order of
appearance), tags, the keys of ``data`` and of ``metadata``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from reactivex import operators as ops

import rxagent
from rxagent.testing import ScriptedChatModel

from .test_callbacks import LC, RX, weather_reporter
from .test_langgraph_parity import QUESTION, docs_supervisor, research_agent

CONFIG = {"tags": ["t1"], "metadata": {"user": "u1"}}


def shape(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    numbers: dict[str, int] = {}

    def number(run_id: str) -> int:
        return numbers.setdefault(run_id, len(numbers))

    shaped = []
    for event in events:
        kind = event["event"]
        name = "<model>" if kind.startswith("on_chat_model") else event["name"]
        metadata = sorted(k for k in event["metadata"] if k != "lc_versions")
        shaped.append((kind, name, number(event["run_id"]),
                       tuple(number(p) for p in event["parent_ids"]), tuple(event["tags"]),
                       sorted(event["data"]) if kind != "on_custom_event" else event["data"],
                       metadata))
    return shaped


async def events_of(lib: Any, program: Any, **kwargs: Any) -> list[dict[str, Any]]:
    agent = program(lib)
    return [event async for event in agent.astream_events(QUESTION, CONFIG, version="v2",
                                                          **kwargs)]


def supervisor(lib: Any) -> Any:
    return docs_supervisor(lib, is_async=True)


@pytest.mark.parametrize("program", [research_agent, weather_reporter, supervisor],
                         ids=["named agent", "custom event", "sub-agent in a tool"])
@pytest.mark.anyio
async def test_the_events_are_langgraphs(program: Any) -> None:
    # LangGraph runs on asyncio only: under trio too, its events come from a thread of its own.
    theirs = shape(await anyio.to_thread.run_sync(
        lambda: asyncio.run(events_of(LC, program))))
    ours = shape(await events_of(RX, program))
    assert ours == theirs


@pytest.mark.anyio
async def test_what_the_events_carry() -> None:
    events = await events_of(RX, weather_reporter)
    by_kind = {}
    for event in events:
        by_kind.setdefault(event["event"], []).append(event)
    assert by_kind["on_chain_start"][0]["data"] == {"input": QUESTION}
    assert [e["data"]["chunk"].content for e in by_kind["on_chat_model_stream"][2:5]] == [
        "It ", "is ", "sunny "]
    assert by_kind["on_tool_start"][0]["data"] == {"input": {"city": "SF"}}
    assert by_kind["on_tool_end"][0]["data"]["output"].content == "Sunny in SF."
    (custom,) = by_kind["on_custom_event"]
    assert (custom["name"], custom["data"]) == ("progress", {"city": "SF"})
    model_node = by_kind["on_chain_start"][1]
    assert model_node["metadata"]["langgraph_node"] == "model"
    assert model_node["metadata"]["langgraph_step"] == 1
    assert model_node["metadata"]["user"] == "u1"
    final = events[-1]
    assert final["event"] == "on_chain_end" and final["parent_ids"] == []
    assert final["data"]["output"]["messages"][-1].text == "It is sunny in SF today."


def test_sync_stream_events_and_observe_events_give_the_same() -> None:
    synced = shape(list(weather_reporter(RX).stream_events(QUESTION, CONFIG)))
    observed = weather_reporter(RX).observe_events(QUESTION, CONFIG).pipe(ops.to_list()).run()
    assert shape(observed) == synced
    assert [e[0] for e in synced[:2]] == ["on_chain_start"] * 2


def test_observe_events_is_cold() -> None:
    agent = rxagent.create_agent(ScriptedChatModel(["one", "two"]))
    events = agent.observe_events({"messages": [("user", "hi")]})
    answers = [events.pipe(ops.last()).run()["data"]["output"]["messages"][-1].text
               for _ in range(2)]
    assert answers == ["one", "two"]  # each subscription one run


@pytest.mark.anyio
async def test_filters_pick_events() -> None:
    picked = await events_of(RX, weather_reporter, include_types=["chat_model"])
    assert {e["event"] for e in picked} == {
        "on_chat_model_start", "on_chat_model_stream", "on_chat_model_end"}
    left = await events_of(RX, weather_reporter, exclude_names=["model", "tools"],
                           exclude_types=["chat_model"])
    assert {e["name"] for e in left} == {"LangGraph", "lookup", "progress"}


def test_versions() -> None:
    agent = rxagent.create_agent(ScriptedChatModel(["hi"]))
    with pytest.raises(rxagent.UsageError, match="v2"):
        agent.stream_events(QUESTION, version="v1")  # type: ignore[call-overload]
    with pytest.raises(rxagent.UsageError, match="'v2'"):
        agent.observe_events(QUESTION, version="v4")  # type: ignore[arg-type]
    assert isinstance(agent.stream_events(QUESTION, version="v3"), rxagent._run_stream.RunStream)


def test_an_error_ends_the_events_after_what_came_before() -> None:
    agent = rxagent.create_agent(ScriptedChatModel([]))
    seen: list[str] = []
    with pytest.raises(rxagent.ScriptExhaustedError):
        for event in agent.stream_events(QUESTION):
            seen.append(event["event"])
    assert seen[:3] == ["on_chain_start", "on_chain_start", "on_chat_model_start"]

