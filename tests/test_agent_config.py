"""A run's config as LangChain's: metadata in every event, max_concurrency, LangGraph's default
recursion limit, and a key rxagent cannot honour is an error, never silence."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from langgraph.checkpoint.memory import InMemorySaver as LGInMemorySaver

import rxagent
from rxagent import create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage
from rxagent.testing import ScriptedChatModel
from rxagent.tools import tool

from .test_langgraph_parity import LANGGRAPH, QUESTION, RXAGENT, normalise


def tool_agent(lib: Any, checkpointer: Any = None) -> Any:
    def lookup(city: str) -> str:
        """Look the weather up."""
        return f"Sunny in {city}."

    model = lib.model([[{"name": "lookup", "args": {"city": "SF"}, "id": "r1"}], "Sunny."])
    return lib.create_agent(model, tools=[lib.tool(lookup)], name="weather",
                            checkpointer=checkpointer)


@pytest.mark.parametrize("config", [
    {"metadata": {"user_id": "u1", "ls_provider": "mine", "langgraph_step": 99}},
    {"metadata": {"user_id": "u1"}, "tags": ["t1"]},
    # configurable's thread_id (and a few ids like it) follow the user's metadata, as in
    # LangGraph; other configurable keys do not, and the user's own key wins.
    {"metadata": {"user_id": "u1"}, "configurable": {"thread_id": "t1", "shop": "s"}},
    {"metadata": {"user_id": "u1", "thread_id": "mine"}, "configurable": {"thread_id": "t1"}},
])
def test_config_metadata_reaches_every_event_as_in_langgraph(config: dict[str, Any]) -> None:
    def run(lib: Any, saver: Any) -> list[Any]:
        # On a thread, each library's own saver.
        agent = tool_agent(lib, saver if "configurable" in config else None)
        events = list(agent.stream(QUESTION, config, stream_mode=["messages"]))
        return normalise(events, ["messages"], False)

    ours, theirs = run(RXAGENT, InMemorySaver()), run(LANGGRAPH, LGInMemorySaver())
    assert ours == theirs
    assert all(event[2][1]["user_id"] == "u1" for event in ours)
    thread_id = config.get("metadata", {}).get("thread_id") or \
        config.get("configurable", {}).get("thread_id")
    assert all(event[2][1].get("thread_id") == thread_id for event in ours)
    assert all("shop" not in event[2][1] for event in ours)


def test_max_concurrency_runs_that_many_tool_calls_at_once() -> None:
    def busiest(max_concurrency: int | None) -> int:
        running = 0
        most = 0

        @tool
        async def slow(n: int) -> str:
            """Take a while."""
            nonlocal running, most
            running += 1
            most = max(most, running)
            await anyio.sleep(0.01)
            running -= 1
            return str(n)

        calls = AIMessage(content="", tool_calls=[
            {"name": "slow", "args": {"n": n}, "id": f"c{n}"} for n in range(4)])
        agent = create_agent(ScriptedChatModel([calls, "done"]), [slow])
        config = {} if max_concurrency is None else {"max_concurrency": max_concurrency}
        final = agent.invoke({"messages": [("user", "go")]}, config)
        assert [m.text for m in final["messages"][2:6]] == ["0", "1", "2", "3"]
        return most

    assert busiest(None) == 4
    assert busiest(1) == 1
    assert busiest(2) == 2


def test_the_default_recursion_limit_is_langgraphs() -> None:
    rounds = 40
    script: list[Any] = [AIMessage(content="", tool_calls=[
        {"name": "tick", "args": {}, "id": f"t{n}"}]) for n in range(rounds)]
    agent = create_agent(ScriptedChatModel([*script, "done"]),
                         [tool(name="tick", description="Tick.")(lambda: "ok")])
    final = agent.invoke({"messages": [("user", "go")]})
    assert len(final["messages"]) == 2 + 2 * rounds
    assert rxagent.GraphRecursionError is rxagent.RecursionLimitError


@pytest.mark.parametrize(("config", "match"), [
    ({"callbacks": "handler"}, r"config\['callbacks'\] is a list of callback handlers"),
    ({"recursionlimit": 5}, r"\['recursionlimit'\]"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"metadata": ["user"]}, "metadata"),
])
def test_a_config_key_rxagent_cannot_honour_is_an_error(config: dict[str, Any],
                                                         match: str) -> None:
    agent = create_agent(ScriptedChatModel(["never"]))
    with pytest.raises(rxagent.UsageError, match=match):
        agent.invoke({"messages": [("user", "x")]}, config)
    # Accepted: LangChain's other keys.
    agent.invoke({"messages": [("user", "x")]}, {"run_name": "mine", "run_id": "r1"})


def test_stream_gives_updates_by_default_as_langgraph_does() -> None:
    def run(lib: Any) -> list[Any]:
        return [sorted(update) for update in tool_agent(lib).stream(QUESTION)]

    assert run(RXAGENT) == run(LANGGRAPH) == [["model"], ["tools"], ["model"]]


def test_every_message_of_the_state_has_an_id_as_in_langgraph() -> None:
    """Off a thread too, every message of the state has an id (LangGraph's reducer gives one).
    A step's update shows its messages as the step made them: a tool's answer without an id,
    as the streaming docs print it (LangGraph 1.2's reducer writes the id into the very object
    its update showed, so there it has one)."""

    def shapes(lib: Any, mode: str) -> list[Any]:
        out = []
        for data in tool_agent(lib).stream(QUESTION, stream_mode=mode):
            if mode == "values":
                out.append([bool(m.id) for m in data["messages"]])
            else:
                out.extend((node, [bool(m.id) for m in update["messages"]])
                           for node, update in data.items())
        return out

    ours = shapes(RXAGENT, "values")
    assert ours == shapes(LANGGRAPH, "values")
    assert ours[-1] == [True, True, True, True]
    assert ("tools", [False]) in shapes(RXAGENT, "updates")
