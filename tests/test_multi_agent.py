"""Agents as tools of other agents: nested, labelled, cancellable streams."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
import reactivex.operators as ops

from rxagent import UsageError, create_agent, get_stream_writer
from rxagent import operators as rxo
from rxagent.messages import AIMessage, AIMessageChunk, ToolMessage
from rxagent.testing import ScriptedChatModel

QUESTION = {"messages": [{"role": "user", "content": "Write me a weather report for SF."}]}


def ask(*calls: tuple[str, str, str]) -> AIMessage:
    """A supervisor reply calling sub-agents: (agent name, call id, request)."""
    return AIMessage(content="", tool_calls=[
        {"name": name, "args": {"request": request}, "id": call_id}
        for name, call_id, request in calls
    ])


def lookup(city: str) -> str:
    """Look the weather up."""
    get_stream_writer()(f"looking up {city}")
    return f"Sunny in {city}."


def researcher() -> Any:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"city": "SF"},
                                           "id": "r1"}]),
        "It is sunny in SF.",
    ])
    return create_agent(model, tools=[lookup], name="researcher")


def writer_agent() -> Any:
    return create_agent(
        ScriptedChatModel(["A bright day in SF."], disable_streaming=True), name="writer"
    )


def supervisor(*agents: Any, script: list[Any] | None = None) -> Any:
    script = script or [
        ask(("researcher", "c1", "weather in SF?"), ("writer", "c2", "write it up")),
        "Report: sunny.",
    ]
    return create_agent(ScriptedChatModel(script), tools=list(agents), name="supervisor")


def test_sub_agents_answer_as_tools_and_their_tokens_are_labelled() -> None:
    items = list(supervisor(researcher(), writer_agent()).stream(
        QUESTION, stream_mode=["messages", "custom", "updates"], subgraphs=True
    ))
    by_ns: dict[tuple[str, ...], list[Any]] = {}
    for ns, mode, data in items:
        by_ns.setdefault(ns, []).append((mode, data))
    assert set(by_ns) == {(), ("tools:c1",), ("tools:c2",)}

    research_tokens = [(c, m) for mode, (c, m) in
                       [(mode, d) for mode, d in by_ns[("tools:c1",)] if mode == "messages"]
                       if isinstance(c, AIMessageChunk)]
    assert "".join(c.text for c, _ in research_tokens) == "It is sunny in SF."
    assert {m["lc_agent_name"] for _, m in research_tokens} == {"researcher"}
    assert all(m["langgraph_checkpoint_ns"].startswith("tools:c1|model:")
               for _, m in research_tokens)
    assert {m["checkpoint_ns"] for _, m in research_tokens} == {"tools:c1"}, "the outermost"
    assert [d for mode, d in by_ns[("tools:c1",)] if mode == "custom"] == ["looking up SF"]

    writer_messages = [d[0] for mode, d in by_ns[("tools:c2",)] if mode == "messages"]
    assert [type(m) for m in writer_messages] == [AIMessage], "disable_streaming: one whole"
    assert writer_messages[0].text == "A bright day in SF."

    top_updates = [d for mode, d in by_ns[()] if mode == "updates"]
    answers = {m.tool_call_id: m.text for u in top_updates for m in u.get("tools", {}).get(
        "messages", [])}
    assert answers == {"c1": "It is sunny in SF.", "c2": "A bright day in SF."}


def test_nested_steps_show_only_with_subgraphs() -> None:
    plain = list(supervisor(researcher(), writer_agent()).stream(QUESTION,
                                                                 stream_mode="updates"))
    assert [sorted(u) for u in plain] == [["model"], ["tools"], ["tools"], ["model"]]
    nested = list(supervisor(researcher(), writer_agent()).stream(
        QUESTION, stream_mode="updates", subgraphs=True))
    assert len([ns for ns, _ in nested if ns == ("tools:c1",)]) == 3  # model, tools, model
    states = list(supervisor(researcher(), writer_agent()).stream(QUESTION,
                                                                  stream_mode="values"))
    assert all(type(s["messages"][0]).__name__ == "HumanMessage" for s in states)
    assert states[-1]["messages"][-1].text == "Report: sunny."
    custom = list(supervisor(researcher(), writer_agent()).stream(QUESTION,
                                                                  stream_mode="custom"))
    assert custom == ["looking up SF"], "nested custom events are always visible"


def test_two_levels_deep() -> None:
    def top() -> Any:
        middle = create_agent(
            ScriptedChatModel([ask(("researcher", "c2", "look it up")), "Middle says sunny."]),
            tools=[researcher()], name="middle",
        )
        return supervisor(middle, script=[ask(("middle", "c1", "find out")), "Top: sunny."])

    tokens = [(ns, m) for ns, (c, m) in top().stream(QUESTION, stream_mode="messages",
                                                      subgraphs=True)
              if isinstance(c, AIMessageChunk)]
    deepest = [(ns, m) for ns, m in tokens if len(ns) == 2]
    assert deepest and {ns for ns, _ in deepest} == {("tools:c1", "tools:c2")}
    assert all(m["langgraph_checkpoint_ns"].startswith("tools:c1|tools:c2|model:")
               for _, m in deepest)
    assert {m["checkpoint_ns"] for _, m in deepest} == {"tools:c1"}, "the outermost segment"
    assert {m["lc_agent_name"] for _, m in deepest} == {"researcher"}
    only = top().observe(QUESTION).pipe(rxo.from_agents("middle"), rxo.text(), ops.to_list())
    assert "".join(only.run()) == "Middle says sunny."


@pytest.mark.anyio
async def test_parallel_sub_agents_run_concurrently() -> None:
    both_started = [anyio.Event(), anyio.Event()]

    def waiting_agent(name: str, me: int) -> Any:
        async def work() -> str:
            """Waits for the other agent's tool to start."""
            both_started[me].set()
            with anyio.fail_after(10):
                await both_started[1 - me].wait()
            return f"{name} done"

        model = ScriptedChatModel([
            AIMessage(content="", tool_calls=[{"name": "work", "args": {}, "id": f"w{me}"}]),
            f"{name} finished.",
        ])
        return create_agent(model, tools=[work], name=name)

    agent = supervisor(waiting_agent("a", 0), waiting_agent("b", 1),
                       script=[ask(("a", "c1", "go"), ("b", "c2", "go")), "ok"])
    state = await agent.ainvoke(QUESTION)
    results = sorted(m.text for m in state["messages"] if isinstance(m, ToolMessage))
    assert results == ["a finished.", "b finished."]


def test_cancelling_the_parent_cancels_the_nested_run() -> None:
    cancelled = threading.Event()

    async def wait_forever() -> str:
        """Never returns on its own."""
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return "unreachable"

    stuck = create_agent(
        ScriptedChatModel([AIMessage(content="", tool_calls=[
            {"name": "wait_forever", "args": {}, "id": "w"}])]),
        tools=[wait_forever], name="stuck",
    )
    agent = supervisor(stuck, script=[ask(("stuck", "c1", "wait"))])

    def leave() -> None:
        with agent.stream(QUESTION, stream_mode="updates", subgraphs=True) as stream:
            for ns, _ in stream:
                if ns == ("tools:c1",):
                    break  # the nested agent's model step is done; its tool now waits

    # Were the nested run out of the cancellation's reach, closing would wait for it forever.
    thread = threading.Thread(target=leave, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "deadlocked: the stream did not close"
    assert cancelled.is_set()


def test_a_failing_sub_agent_is_an_error_tool_message_after_its_events() -> None:
    # One reply, then the script runs out: the sub-agent fails on its second model call.
    flaky = create_agent(
        ScriptedChatModel([AIMessage(content="Checking.", tool_calls=[
            {"name": "lookup", "args": {"city": "SF"}, "id": "r1"}])]),
        tools=[lookup], name="flaky",
    )
    agent = supervisor(flaky, script=[ask(("flaky", "c1", "try")), "Sorry, no report."])
    items = list(agent.stream(QUESTION, stream_mode=["messages", "custom", "updates"],
                              subgraphs=True))
    nested = [(mode, data) for ns, mode, data in items if ns == ("tools:c1",)]
    assert ("custom", "looking up SF") in nested, "events before the failure are delivered"
    assert "".join(d[0].text for mode, d in nested if mode == "messages"
                   and isinstance(d[0], AIMessageChunk)) == "Checking."
    (result,) = [m for ns, mode, d in items if ns == () and mode == "updates"
                 for m in d.get("tools", {}).get("messages", [])]
    assert result.status == "error" and "ScriptExhaustedError" in result.text
    assert items[-1][2]["model"]["messages"][0].text == "Sorry, no report.", "the parent goes on"


def test_a_nostream_sub_agent_is_left_out_of_messages() -> None:
    quiet = create_agent(ScriptedChatModel(["shh"], tags=["nostream"]), name="quiet")
    agent = supervisor(quiet, script=[ask(("quiet", "c1", "hi")), "done"])
    pairs = list(agent.stream(QUESTION, stream_mode="messages", subgraphs=True))
    assert not [ns for ns, (c, _) in pairs if ns and isinstance(c, AIMessageChunk)]
    answers = [c.text for ns, (c, _) in pairs if isinstance(c, ToolMessage)]
    assert answers == ["shh"], "its answer still reaches the parent"


def test_as_tool_names_and_describes_the_agent() -> None:
    spec = researcher().as_tool(name="research", description="Finds facts.").tool_spec()
    assert spec["name"] == "research" and spec["description"] == "Finds facts."
    assert spec["parameters"]["required"] == ["request"]
    with pytest.raises(UsageError, match="needs a name"):
        create_agent(ScriptedChatModel(["x"])).as_tool()


def test_an_agent_tool_called_directly_runs_on_its_own() -> None:
    reply = researcher().as_tool().invoke({"request": "weather?"})
    assert reply == "It is sunny in SF."
