"""Sub-agents invoked inside tools, as LangChain's multi-agent docs write them.

``subagent.invoke(...)`` (or ``ainvoke``, ``stream``, ``astream``) inside a tool joins the
caller's run: the sub-agent's events go into the caller's stream under the namespace of the
tool call, shown with ``subgraphs=True`` as LangGraph shows them; the caller's slow consumer
holds the sub-agent back; closing the caller's stream stops it. ``tests/test_langgraph_parity.py``
compares the same programs event for event with LangGraph itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rxagent import RunCancelledError, create_agent, get_stream_writer
from rxagent.messages import AIMessage, AIMessageChunk, ToolMessage
from rxagent.testing import FunctionChatModel, ScriptedChatModel
from rxagent.tools import tool

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in SF?"}]}


def lookup(city: str) -> str:
    """Look the weather up."""
    get_stream_writer()(f"looking up {city}")
    return f"Sunny in {city}."


def research_agent(**model_options: Any) -> Any:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"city": "SF"},
                                           "id": "r1"}]),
        "It is sunny in SF.",
    ], **model_options)
    return create_agent(model, tools=[lookup], name="researcher")


def researcher_tool(subagent: Any, how: str) -> Any:
    """The docs' tool, in one of the four ways to run the sub-agent."""
    question = "weather in SF?"

    def ask() -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": question}]}

    if how == "invoke":
        @tool("researcher", description="Ask the research agent.")
        def call_researcher(query: str) -> str:
            result = subagent.invoke(ask())
            return str(result["messages"][-1].content)
    elif how == "stream":
        @tool("researcher", description="Ask the research agent.")
        def call_researcher(query: str) -> str:
            last: dict[str, Any] = {}
            for state in subagent.stream(ask(), stream_mode="values"):
                last = state
            return str(last["messages"][-1].content)
    elif how == "ainvoke":
        @tool("researcher", description="Ask the research agent.")
        async def call_researcher(query: str) -> str:
            result = await subagent.ainvoke(ask())
            return str(result["messages"][-1].content)
    else:
        @tool("researcher", description="Ask the research agent.")
        async def call_researcher(query: str) -> str:
            last: dict[str, Any] = {}
            async for state in subagent.astream(ask(), stream_mode="values"):
                last = state
            return str(last["messages"][-1].content)
    return call_researcher


def supervisor(*tools: Any, final: str = "Report: sunny.") -> Any:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "researcher", "args": {"query": "SF"},
                                           "id": "c1"}]),
        final,
    ])
    return create_agent(model, tools=list(tools), name="supervisor")


HOW = ["invoke", "stream", "ainvoke", "astream"]


def shape(event: tuple[Any, ...]) -> tuple[Any, ...]:
    """An event with its payload reduced to what can be compared across runs."""
    *head, payload = event
    if head[-1] == "messages":
        message, _ = payload
        return (*head, type(message).__name__, message.text)
    if head[-1] == "updates":
        return (*head, tuple((node, tuple(m.text for m in update["messages"]))
                             for node, update in payload.items()))
    return (*head, payload)


@pytest.mark.parametrize("how", HOW)
def test_without_subgraphs_the_caller_streams_only_its_own_events(how: str) -> None:
    joined = supervisor(researcher_tool(research_agent(), how))

    @tool("researcher", description="Ask the research agent.")
    def plain(query: str) -> str:
        return "It is sunny in SF."

    modes = ["updates", "messages", "custom"]
    seen = [shape(e) for e in joined.stream(QUESTION, stream_mode=modes)]
    expected = [shape(e) for e in supervisor(plain).stream(QUESTION, stream_mode=modes)]
    assert seen == expected


@pytest.mark.parametrize("how", HOW)
def test_with_subgraphs_the_sub_agent_streams_under_its_tool_calls_namespace(how: str) -> None:
    events = list(supervisor(researcher_tool(research_agent(), how)).stream(
        QUESTION, stream_mode=["updates", "messages", "custom"], subgraphs=True))
    namespaces = {ns for ns, _, _ in events}
    assert len(namespaces) == 2 and () in namespaces
    (nested,) = namespaces - {()}
    tool_message, tool_metadata = next(
        data for ns, mode, data in events if mode == "messages" and isinstance(data[0], ToolMessage)
        and ns == ())
    assert nested == (tool_metadata["langgraph_checkpoint_ns"],), "the tool call's task"
    assert tool_message.text == "It is sunny in SF.", "the sub-agent's answer, unchanged"

    inside = [(mode, data) for ns, mode, data in events if ns == nested]
    tokens = [(c, m) for mode, (c, m) in [(mo, d) for mo, d in inside if mo == "messages"]
              if isinstance(c, AIMessageChunk)]
    assert "".join(c.text for c, _ in tokens) == "It is sunny in SF."
    assert {m["lc_agent_name"] for _, m in tokens} == {"researcher"}
    assert {m["checkpoint_ns"] for _, m in tokens} == {nested[0]}
    assert all(m["langgraph_checkpoint_ns"].startswith(f"{nested[0]}|model:") for _, m in tokens)
    assert [sorted(d) for mo, d in inside if mo == "updates"] == [["model"], ["tools"], ["model"]]
    assert [d for mo, d in inside if mo == "custom"] == ["looking up SF"]
    # All of it before the caller's tool update, in the order it happened.
    tool_update = next(i for i, (ns, mode, data) in enumerate(events)
                       if ns == () and mode == "updates" and "tools" in data)
    assert max(i for i, (ns, _, _) in enumerate(events) if ns == nested) < tool_update


def test_the_sub_agent_sees_its_own_stream_as_its_root() -> None:
    own: list[tuple[Any, ...]] = []

    @tool("researcher", description="Ask the research agent.")
    def call_researcher(query: str) -> str:
        for ns, update in research_agent().stream(QUESTION, stream_mode="updates",
                                                  subgraphs=True):
            own.append((ns, sorted(update)))
        return "done"

    list(supervisor(call_researcher).stream(QUESTION, subgraphs=True))
    assert own == [((), ["model"]), ((), ["tools"]), ((), ["model"])]


def test_a_sub_agent_whose_model_does_not_stream_contributes_whole_messages() -> None:
    agent = supervisor(researcher_tool(research_agent(disable_streaming=True), "invoke"))
    nested = [(type(c).__name__, c.text) for ns, (c, _) in agent.stream(
        QUESTION, stream_mode="messages", subgraphs=True) if ns]
    assert nested == [("AIMessage", ""), ("ToolMessage", "Sunny in SF."),
                      ("AIMessage", "It is sunny in SF.")]


@pytest.mark.anyio
async def test_two_levels_deep_from_async_tools() -> None:
    inner = research_agent()
    middle = create_agent(ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "researcher", "args": {"query": "SF"},
                                           "id": "m1"}]),
        "Middle: sunny.",
    ]), tools=[researcher_tool(inner, "ainvoke")], name="middle")

    @tool("researcher", description="Ask the middle agent.")
    async def ask_middle(query: str) -> str:
        result = await middle.ainvoke({"messages": [{"role": "user", "content": query}]})
        return str(result["messages"][-1].content)

    top = supervisor(ask_middle, final="Top: sunny.")
    events = [e async for e in top.astream(QUESTION, stream_mode=["updates", "messages"],
                                             subgraphs=True)]
    depths = {len(ns) for ns, _, _ in events}
    assert depths == {0, 1, 2}
    deepest = [(ns, d) for ns, mode, d in events if len(ns) == 2 and mode == "messages"
               and isinstance(d[0], AIMessageChunk)]
    assert "".join(c.text for _, (c, _) in deepest) == "It is sunny in SF."
    (ns,) = {ns for ns, _ in deepest}
    assert {m["langgraph_checkpoint_ns"].rsplit("|", 1)[0] for _, (_, m) in deepest} == {
        "|".join(ns)}
    assert {m["checkpoint_ns"] for _, (_, m) in deepest} == {ns[0]}, "the outermost segment"
    middle_answer = [d for n, mode, d in events if n == ns[:1] and mode == "updates"
                     and "tools" in d]
    assert middle_answer[0]["tools"]["messages"][0].text == "It is sunny in SF."


# -- flow control and cancellation ---------------------------------------------------------


def endless_agent(produced: list[int], stopped: threading.Event) -> Any:
    def reply(messages: Any, tools: Any) -> Iterator[str]:
        try:
            for i in range(100_000):
                produced.append(i)
                yield f"t{i} "
        finally:
            stopped.set()

    return create_agent(FunctionChatModel(reply), name="endless")


def sub_agent_tool(subagent: Any, how: str, outcome: list[BaseException]) -> Any:
    run = researcher_tool(subagent, how)
    call: Callable[..., Any] = run.func

    if run.is_async:
        @tool("researcher", description="Ask the research agent.")
        async def call_researcher(query: str) -> str:
            try:
                return str(await call(query))
            except BaseException as error:
                outcome.append(error)
                raise
    else:
        @tool("researcher", description="Ask the research agent.")
        def call_researcher(query: str) -> str:
            try:
                return str(call(query))
            except BaseException as error:
                outcome.append(error)
                raise
    return call_researcher


@pytest.mark.parametrize("how", HOW)
def test_a_slow_consumer_holds_the_sub_agent_back_and_closing_stops_it(how: str) -> None:
    produced: list[int] = []
    stopped = threading.Event()
    outcome: list[BaseException] = []
    agent = supervisor(sub_agent_tool(endless_agent(produced, stopped), how, outcome))
    ahead: list[int] = []

    def consume() -> None:
        stream = agent.stream(QUESTION, stream_mode="messages", subgraphs=True, max_buffer=8)
        taken = 0
        for ns, (chunk, _) in stream:
            if ns and chunk.text:
                taken += 1
                if taken == 20:
                    break
        for _ in range(50):  # give a runaway producer the chance to show itself
            threading.Event().wait(0.01)
        ahead.append(len(produced))
        stream.close()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(60)
    assert not consumer.is_alive(), "closing the caller's stream hung"
    # The consumer stopped at 20 sub-agent tokens: the sub-agent may run a bounded way ahead,
    # not on through its 100,000 tokens. On the caller's loop (an async tool) that is the
    # caller's buffer; from a sync tool's thread, the queue that hands parts over to the
    # caller's loop, which holds at most 1,024 (the loop runs only while the caller waits).
    assert ahead[0] < (1_024 + 100 if how in ("invoke", "stream") else 100)
    assert stopped.wait(30), "closing the caller's stream stops the sub-agent's model"
    if how in ("invoke", "stream"):  # a sync tool: its call of the sub-agent is ended
        assert outcome and isinstance(outcome[0], RunCancelledError)
    else:  # an async tool is cancelled with the caller's run
        assert outcome and isinstance(outcome[0], asyncio.CancelledError)


def test_a_sync_invoke_of_a_sub_agent_in_an_async_tool_is_a_usage_error() -> None:
    subagent = research_agent()

    @tool("researcher", description="Ask the research agent.")
    async def call_researcher(query: str) -> str:
        # Sync invoke() on the run's own loop would block it; the sub-agent, joined to the
        # run, would then wait for that loop in turn.
        result = subagent.invoke({"messages": [{"role": "user", "content": query}]})
        return str(result["messages"][-1].content)

    updates: list[Any] = []
    runner = threading.Thread(target=lambda: updates.extend(
        supervisor(call_researcher).stream(QUESTION, stream_mode="updates")), daemon=True)
    runner.start()
    runner.join(60)
    assert not runner.is_alive(), "the run deadlocked on its own blocked loop"
    (answer,) = [m for u in updates for m in u.get("tools", {}).get("messages", [])]
    assert answer.status == "error" and "UsageError" in answer.text
    assert "await agent.ainvoke(...)" in answer.text
