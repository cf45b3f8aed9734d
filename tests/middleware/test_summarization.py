"""SummarizationMiddleware: as LangChain's on the same program, and its own errors."""

from __future__ import annotations

from typing import Any

import pytest

import rxagent
import rxagent.middleware as rx_middleware
from rxagent.messages import AIMessage, HumanMessage, RemoveMessage, ToolMessage
from rxagent.middleware._summarization import as_xml
from rxagent.testing import FunctionChatModel, ScriptedChatModel

from .test_parity import LIBS, TOOL_THEN_TEXT, Ids, model, prompts, stream, weather

HISTORY = {"messages": [
    {"role": "user", "content": "Hi, I am Ann."},
    {"role": "assistant", "content": "Hello Ann."},
    {"role": "user", "content": "Weather in Paris?"},
]}
PROMPT = "Summarize:\n{messages}"


def summarized(name: str) -> tuple[Any, Any, Any]:
    """Summarised before the first model call (3 messages) and again before the second,
    where the cut falls on a tool result and moves back to its call."""
    lib = LIBS[name]
    summarizer = model(name, ["Ann said hi.", "Ann asked about Paris."])
    fake = model(name, TOOL_THEN_TEXT)
    agent = lib.agents.create_agent(
        fake, tools=[lib.base.tool(weather)],
        middleware=[lib.mw.SummarizationMiddleware(
            summarizer, trigger=("messages", 3), keep=("messages", 1), summary_prompt=PROMPT)])
    return agent, fake, summarizer


@pytest.mark.parametrize("modes", [["updates", "values"], ["updates", "messages"]])
def test_summarization_streams_as_in_langchain(modes: list[str]) -> None:
    results = {}
    for name in LIBS:
        agent, fake, summarizer = summarized(name)
        number = Ids()
        results[name] = (stream(agent, HISTORY, modes, number), prompts(fake.seen, number),
                         prompts(summarizer.seen, number))
    ours, theirs = results["rxagent"], results["langchain"]
    # The summary call's tokens stream in neither (LangChain tags it nostream); the summary
    # message itself shows under the hook's step in both, after the removal of the history.
    assert any(e[0] == "messages"
               and e[1][1]["langgraph_node"] == "SummarizationMiddleware.before_model"
               for e in ours[0]) == ("messages" in modes)
    assert ours == theirs


def test_messages_as_xml_as_in_langchain() -> None:
    from langchain_core.messages import AIMessage as LcAI
    from langchain_core.messages import HumanMessage as LcHuman
    from langchain_core.messages import ToolMessage as LcTool
    from langchain_core.messages.utils import get_buffer_string

    call = {"name": "w", "args": {"q": "<é>"}, "id": "c1"}
    ours = [HumanMessage(content="a < b & \"c\""), AIMessage(content="x", tool_calls=[call]),
            ToolMessage(content="done", tool_call_id="c1"), AIMessage(content="")]
    theirs = [LcHuman(content="a < b & \"c\""), LcAI(content="x", tool_calls=[call]),
              LcTool(content="done", tool_call_id="c1"), LcAI(content="")]
    assert as_xml(ours) == get_buffer_string(theirs, format="xml")


def test_below_the_trigger_nothing_changes() -> None:
    summarizer = ScriptedChatModel([])
    middleware = rx_middleware.SummarizationMiddleware(summarizer, trigger=("tokens", 10_000))
    assert middleware.before_model({"messages": [HumanMessage(content="hi")]}, None) is None  # type: ignore[arg-type]


def test_a_dict_trigger_needs_all_its_thresholds_and_keep_tokens_cuts_by_tokens() -> None:
    summarizer = ScriptedChatModel(["short"])
    middleware = rx_middleware.SummarizationMiddleware(
        summarizer, trigger=[{"messages": 3, "tokens": 10_000}, {"messages": 4, "tokens": 5}],
        keep=("tokens", 12))
    three = [HumanMessage(content="one two", id="1"), AIMessage(content="three", id="2"),
             HumanMessage(content="four", id="3")]
    assert middleware.before_model({"messages": three}, None) is None  # type: ignore[arg-type]
    four = [*three, AIMessage(content="five", id="4")]
    update = middleware.before_model({"messages": four}, None)  # type: ignore[arg-type]
    assert update is not None
    removal, note, *kept = update["messages"]
    assert isinstance(removal, RemoveMessage)
    assert note.content.endswith("\n\nshort")
    assert [m.id for m in kept] == ["3", "4"]
    assert "one two" in summarizer.calls[0].messages[0].content


def test_a_failing_summary_call_is_tried_three_times_then_raised() -> None:
    calls = []

    def failing(messages: Any, tools: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("flaky")
        return "fine"

    middleware = rx_middleware.SummarizationMiddleware(
        FunctionChatModel(failing), trigger=("messages", 2), keep=("messages", 1))
    two = [HumanMessage(content="a", id="1"), AIMessage(content="b", id="2")]
    update = middleware.before_model({"messages": two}, None)  # type: ignore[arg-type]
    assert update is not None and update["messages"][1].content.endswith("fine")
    assert len(calls) == 3

    def down(messages: Any, tools: Any) -> str:
        raise RuntimeError("down")

    always = rx_middleware.SummarizationMiddleware(
        FunctionChatModel(down),
        trigger=("messages", 2), keep=("messages", 1))
    with pytest.raises(RuntimeError, match="down"):
        always.before_model({"messages": two}, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs, match", [
    ({"trigger": ("tokens", 0)}, "positive"),
    ({"trigger": ("fraction", 1.5)}, "fraction"),
    ({"trigger": ("pages", 3)}, "kind"),
    ({"trigger": {"messages": True}}, "number"),
    ({"trigger": [{}]}, "trigger is"),
    ({"keep": ("messages", 2.5)}, "positive int"),
    ({"keep": ("fraction", 0.5)}, "max_input_tokens"),
])
def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(rxagent.UsageError, match=match):
        rx_middleware.SummarizationMiddleware(ScriptedChatModel([]), **kwargs)


def test_a_summarizer_function_writes_the_summary() -> None:
    seen = []

    def summarize(messages: list[Any]) -> str:
        seen.append([m.content for m in messages])
        return "  by hand  "

    middleware = rx_middleware.SummarizationMiddleware(
        ScriptedChatModel([]), trigger=("messages", 2), keep=("messages", 1),
        summarizer=summarize)
    two = [HumanMessage(content="a", id="1"), AIMessage(content="b", id="2")]
    update = middleware.before_model({"messages": two}, None)  # type: ignore[arg-type]
    assert update is not None and update["messages"][1].content.endswith("\n\nby hand")
    assert seen == [["a"]]


@pytest.mark.anyio
async def test_async_runs_summarize_with_the_async_hook() -> None:
    async def summarize(messages: list[Any]) -> str:
        return f"{len(messages)} earlier"

    agent = rxagent.create_agent(
        ScriptedChatModel(["Hello."]),
        middleware=[rx_middleware.SummarizationMiddleware(
            ScriptedChatModel([]), trigger=("messages", 3), keep=("messages", 1),
            summarizer=summarize)])
    updates = [u async for u in agent.astream(HISTORY, stream_mode="updates")]
    step = updates[0]["SummarizationMiddleware.before_model"]
    assert step["messages"][1].content.endswith("2 earlier")
    assert [m.type for m in updates[-1]["model"]["messages"]] == ["ai"]


@pytest.mark.anyio
async def test_async_summary_by_a_model() -> None:
    summary_model = ScriptedChatModel(["Ann greeted us."])
    agent = rxagent.create_agent(
        ScriptedChatModel(["Hello."]),
        middleware=[rx_middleware.SummarizationMiddleware(
            summary_model, trigger=("messages", 3), keep=("messages", 1))])
    final = [values async for values in agent.astream(HISTORY, stream_mode="values")][-1]
    assert [m.type for m in final["messages"]] == ["human", "human", "ai"]
    assert final["messages"][0].content.endswith("Ann greeted us.")
    assert "Hi, I am Ann." in summary_model.calls[0].messages[0].content


def test_summaries_on_a_thread_as_in_langchain() -> None:
    """Two turns on one thread: the second summarises a history that holds the first
    summary; the thread's state and history end the same."""
    from .test_parity import CONFIG, message_shape

    results = {}
    for name, lib in LIBS.items():
        summarizer = model(name, ["First turn.", "Both turns."])
        fake = model(name, [*TOOL_THEN_TEXT, "Still sunny."])
        agent = lib.agents.create_agent(
            fake, tools=[lib.base.tool(weather)], checkpointer=lib.saver(),
            middleware=[lib.mw.SummarizationMiddleware(
                summarizer, trigger={"messages": 4}, keep=("messages", 2),
                summary_prompt=PROMPT)])
        number = Ids()
        first = stream(agent, HISTORY, ["updates"], number, CONFIG)
        second = stream(agent, {"messages": [{"role": "user", "content": "And now?"}]},
                        ["updates", "values"], number, CONFIG)
        state = [message_shape(m, number) for m in agent.get_state(CONFIG).values["messages"]]
        results[name] = (first, second, state, prompts(summarizer.seen, number),
                         prompts(fake.seen, number))
    assert results["rxagent"] == results["langchain"]


def test_a_status_another_attempt_cannot_cure_is_raised_at_once() -> None:
    calls = []

    def refused(messages: Any, tools: Any) -> str:
        calls.append(1)
        raise rxagent.APIStatusError("bad request", status_code=400)

    middleware = rx_middleware.SummarizationMiddleware(
        FunctionChatModel(refused), trigger=("messages", 2), keep=("messages", 1))
    two = [HumanMessage(content="a", id="1"), AIMessage(content="b", id="2")]
    with pytest.raises(rxagent.APIStatusError):
        middleware.before_model({"messages": two}, None)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_a_fraction_of_the_models_window() -> None:
    summary_model = ScriptedChatModel(["short"])
    summary_model.profile = {"max_input_tokens": 100}  # type: ignore[attr-defined]
    middleware = rx_middleware.SummarizationMiddleware(
        summary_model, trigger=("fraction", 0.5), keep=("fraction", 0.2))
    small = [HumanMessage(content="word " * 10, id="1")]
    assert middleware.before_model({"messages": small}, None) is None  # type: ignore[arg-type]
    big = [HumanMessage(content="word " * 40, id=str(i)) for i in range(4)]
    update = middleware.before_model({"messages": big}, None)  # type: ignore[arg-type]
    assert update is not None
    # None fits in 20 tokens; the last is kept all the same, as LangChain keeps it.
    assert [m.id for m in update["messages"][2:]] == ["3"]


def test_the_reported_usage_of_the_same_provider_triggers() -> None:
    middleware = rx_middleware.SummarizationMiddleware(
        ScriptedChatModel(["short"]), trigger=("tokens", 1000), keep=("messages", 1))
    usage = {"input_tokens": 1500, "output_tokens": 5, "total_tokens": 1505}
    reply = AIMessage(content="hi", id="2", usage_metadata=usage,
                      response_metadata={"model_provider": "scripted"})
    other = reply.model_copy(update={"response_metadata": {"model_provider": "openai"}})
    question = HumanMessage(content="q", id="1")
    assert middleware.before_model({"messages": [question, other]}, None) is None  # type: ignore[arg-type]
    update = middleware.before_model({"messages": [question, reply]}, None)  # type: ignore[arg-type]
    assert update is not None and [m.id for m in update["messages"][2:]] == ["2"]
