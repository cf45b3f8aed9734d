"""What a run streams through the server equals what the agent streams locally."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client
from langgraph_sdk.client import SyncLangGraphClient

from rxagent.checkpoint import InMemorySaver
from rxagent.server._sse import jsonable

from .agents import nested_agent, weather_agent

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in SF?"}]}
# Ids differ between two runs (messages, runs, checkpoints, tasks): each is replaced by its
# order of first appearance, so two streams with the same shape compare equal.
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|call_\d+")
THREAD = {"configurable": {"thread_id": "local"}}
_SERVER_KEYS = ("thread_id", "run_id", "graph_id", "assistant_id")


def without_run_ids(event: str, data: Any) -> Any:
    """An event's data without the ids a run on a thread, or on the server, adds to a message's
    metadata (they differ between the local run and the served one)."""
    if event != "messages":
        return data
    return [data[0], {k: v for k, v in data[1].items() if k not in _SERVER_KEYS}]


def normalized(events: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    seen: dict[str, str] = {}
    text = _ID.sub(lambda m: seen.setdefault(m.group(), f"<id{len(seen)}>"),
                   json.dumps(events))
    return [tuple(pair) for pair in json.loads(text)]  # type: ignore[misc]


def local_events(modes: list[str], subgraphs: bool = False) -> list[tuple[str, Any]]:
    """The local agent's stream, named as the server names its events, after a JSON trip."""
    events: list[tuple[str, Any]] = []
    agent = weather_agent().with_checkpointer(InMemorySaver())  # as the server runs it
    for part in agent.stream(QUESTION, THREAD, stream_mode=modes, subgraphs=subgraphs,
                             version="v2"):
        events.append((part["type"], without_run_ids(part["type"], jsonable(part["data"]))))
    return json.loads(json.dumps(events))  # type: ignore[no-any-return]


def served_events(parts: Any) -> tuple[Any, list[tuple[str, Any]]]:
    parts = list(parts)
    first, rest = parts[0], parts[1:]
    events = []
    for part in rest:
        events.append((part.event, without_run_ids(part.event, part.data)))
    return first, events


@pytest.mark.parametrize("modes", [
    ["values"], ["updates"], ["custom"], ["values", "updates", "custom"],
])
def test_a_stream_equals_the_local_one(client: SyncLangGraphClient, modes: list[str]) -> None:
    first, events = served_events(client.runs.stream(
        None, "weather", input=QUESTION, stream_mode=modes))
    assert first.event == "metadata"
    assert set(first.data) == {"run_id", "attempt"} and first.data["attempt"] == 1
    assert normalized(events) == normalized(local_events(modes))
    assert events  # a stream that says nothing would compare equal to nothing


def test_messages_tuple_carries_the_tokens_and_the_run_s_ids(client: SyncLangGraphClient) -> None:
    thread = client.threads.create()
    parts = list(client.runs.stream(thread["thread_id"], "weather", input=QUESTION,
                                    stream_mode=["messages-tuple", "updates"]))
    run_id = parts[0].data["run_id"]
    messages = [part.data for part in parts if part.event == "messages"]
    assert messages
    for _message, metadata in messages:
        assert metadata["thread_id"] == thread["thread_id"]
        assert metadata["run_id"] == run_id
        assert metadata["graph_id"] == "weather"
    _, events = served_events(parts)
    expected = [("messages" if name == "messages" else name, data)
                for name, data in local_events(["messages", "updates"])]
    assert normalized(events) == normalized(expected)


def test_legacy_messages_mode(client: SyncLangGraphClient) -> None:
    parts = list(client.runs.stream(None, "weather", input=QUESTION, stream_mode="messages"))
    names = [part.event for part in parts]
    # Per message: its metadata once, then the partial message as it grows (a reply), or the
    # complete message (the tool's result).
    ids = [next(iter(part.data)) for part in parts if part.event == "messages/metadata"]
    assert len(ids) == len(set(ids)) == 3
    partial_texts = [part.data[0]["content"] for part in parts
                     if part.event == "messages/partial" and part.data[0]["id"] == ids[2]]
    local_tokens = [chunk.text for chunk, _ in weather_agent().stream(
        QUESTION, stream_mode="messages") if chunk.type == "AIMessageChunk"]
    # The last reply's partial messages are its tokens added up, one event per token.
    final = "".join(local_tokens[-len(partial_texts):])
    assert partial_texts[-1] == final == "The weather: It's always sunny in SF!"
    assert all(part.data[0]["type"] == "ai" for part in parts
               if part.event == "messages/partial")
    complete = [part.data[0] for part in parts if part.event == "messages/complete"]
    assert [m["type"] for m in complete] == ["tool"]
    assert names.index("messages/complete") > names.index("messages/metadata")


def test_subgraph_events_are_named_with_their_namespace(client: SyncLangGraphClient) -> None:
    modes = ["updates", "messages-tuple"]
    parts = list(client.runs.stream(None, "nested", input=QUESTION, stream_mode=modes,
                                    stream_subgraphs=True))
    agent = nested_agent().with_checkpointer(InMemorySaver())
    expected = [
        (("messages" if part["type"] == "messages" else part["type"])
         + "".join("|" + step for step in part["ns"]))
        for part in agent.stream(QUESTION, THREAD, stream_mode=["updates", "messages"],
                                 subgraphs=True, version="v2")
    ]
    names = [part.event for part in parts[1:]]
    assert normalized([(name, None) for name in names]) == normalized(
        [(name, None) for name in expected])
    assert any(name.startswith("updates|tools:") for name in names)
    # Without stream_subgraphs the nested run's steps are left out, and names stay plain.
    plain = list(client.runs.stream(None, "nested", input=QUESTION, stream_mode="updates"))
    assert {part.event for part in plain} == {"metadata", "updates"}
    assert len(plain) < len([n for n in names if n.startswith("updates")]) + 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the SDK's async client is asyncio only


@pytest.mark.anyio
async def test_the_async_client_streams_the_same(url: str) -> None:
    async with get_client(url=url) as client:
        parts = [part async for part in client.runs.stream(
            None, "weather", input=QUESTION, stream_mode=["values", "updates", "custom"])]
    _, events = served_events(parts)
    assert normalized(events) == normalized(local_events(["values", "updates", "custom"]))


def test_runs_wait_gives_the_final_state(client: SyncLangGraphClient) -> None:
    result = client.runs.wait(None, "weather", input=QUESTION)
    agent = weather_agent().with_checkpointer(InMemorySaver())
    expected = jsonable(agent.invoke(QUESTION, THREAD))
    assert normalized([("values", result)]) == normalized([("values", expected)])


def test_remote_graph_streams_and_invokes_as_the_local_agent(
    client: SyncLangGraphClient,
) -> None:
    remote = RemoteGraph("weather", sync_client=client)
    served = [("values", jsonable(state)) for state in remote.stream(
        QUESTION, THREAD, stream_mode="values")]
    assert normalized(served) == normalized(local_events(["values"]))
    final = remote.invoke(QUESTION)
    agent = weather_agent().with_checkpointer(InMemorySaver())
    expected = jsonable(agent.invoke(QUESTION, THREAD))
    assert normalized([("values", final)]) == normalized([("values", expected)])
