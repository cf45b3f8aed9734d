"""ContextEditingMiddleware: as LangChain's on the same programs; what it leaves alone."""

from __future__ import annotations

from typing import Any

import pytest

import rxagent
import rxagent.middleware as rx_middleware
from rxagent.messages import AIMessage, HumanMessage, ToolMessage
from rxagent.testing import ScriptedChatModel

from ..test_langgraph_parity import message_shape
from .test_parity import LIBS, QUESTION, Ids, model, stream, weather


def note(text: str) -> str:
    """Keep a note."""
    return f"noted: {text}"


CALLS = [
    [{"name": "weather", "args": {"city": "Paris"}, "id": "w1"}],
    [{"name": "note", "args": {"text": "Paris is sunny"}, "id": "n1"}],
    [{"name": "weather", "args": {"city": "Oslo"}, "id": "w2"}],
    [{"name": "weather", "args": {"city": "Rome"}, "id": "w3"}],
    "All sunny.",
]

EDITS = {
    "defaults over a low trigger": lambda mw: dict(edits=[mw.ClearToolUsesEdit(trigger=10)]),
    "keep one, inputs too, notes excluded": lambda mw: dict(edits=[mw.ClearToolUsesEdit(
        trigger=10, keep=1, clear_tool_inputs=True, exclude_tools=["note"],
        placeholder="[gone]")]),
    "clear at least one message's worth": lambda mw: dict(
        edits=[mw.ClearToolUsesEdit(trigger=3, keep=0, clear_at_least=1)],
        token_counter=lambda messages: sum(m.content != "[cleared]" for m in messages)),
    "never over the trigger": lambda mw: dict(edits=[mw.ClearToolUsesEdit(trigger=10**6,
                                                                         keep=0)]),
}


def edited(name: str, edits: str) -> tuple[Any, Any]:
    lib = LIBS[name]
    fake = model(name, CALLS)
    agent = lib.agents.create_agent(
        fake, tools=[lib.base.tool(weather), lib.base.tool(note)],
        middleware=[lib.mw.ContextEditingMiddleware(**EDITS[edits](lib.mw))])
    return agent, fake


def seen(calls: list[Any], number: Any) -> list[Any]:
    return [[(message_shape(m, number), m.response_metadata.get("context_editing"))
             for m in call] for call in calls]


@pytest.mark.parametrize("edits", list(EDITS))
@pytest.mark.parametrize("modes", [["updates", "values"], ["updates", "messages"]])
def test_context_editing_as_in_langchain(modes: list[str], edits: str) -> None:
    results = {}
    for name in LIBS:
        agent, fake = edited(name, edits)
        number = Ids()
        results[name] = (stream(agent, QUESTION, modes, number), seen(fake.seen, number))
    assert results["rxagent"] == results["langchain"]


def test_the_state_keeps_every_result() -> None:
    scripted = ScriptedChatModel([AIMessage(content="", tool_calls=c) for c in CALLS[:-1]]
                                 + ["done"])
    agent = rxagent.create_agent(scripted, tools=[weather, note], middleware=[
        rx_middleware.ContextEditingMiddleware(edits=[rx_middleware.ClearToolUsesEdit(
            trigger=0, keep=0, clear_tool_inputs=True)])])
    final = agent.invoke(QUESTION)
    results = [m.content for m in final["messages"] if isinstance(m, ToolMessage)]
    assert results == ["sunny in Paris", "noted: Paris is sunny", "sunny in Oslo",
                       "sunny in Rome"]
    last = scripted.calls[-1].messages
    assert [m.content for m in last if isinstance(m, ToolMessage)] == ["[cleared]"] * 4
    assert all(c["args"] == {} for m in last if isinstance(m, AIMessage) for c in m.tool_calls)


@pytest.mark.parametrize("kwargs, match", [
    ({"token_count_method": "model"}, "token_counter"),
    ({"token_count_method": "exact"}, "not supported"),
])
def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(rxagent.UsageError, match=match):
        rx_middleware.ContextEditingMiddleware(**kwargs)


def test_a_negative_keep_is_a_usage_error() -> None:
    with pytest.raises(rxagent.UsageError, match="keep"):
        rx_middleware.ClearToolUsesEdit(keep=-1)


@pytest.mark.anyio
async def test_async_runs_edit_too() -> None:
    scripted = ScriptedChatModel([AIMessage(content="", tool_calls=CALLS[0]), "done"])
    agent = rxagent.create_agent(scripted, tools=[weather], middleware=[
        rx_middleware.ContextEditingMiddleware(edits=[rx_middleware.ClearToolUsesEdit(
            trigger=0, keep=0)])])
    parts = [p async for p in agent.astream({"messages": [HumanMessage(content="hi")]},
                                            stream_mode="updates")]
    assert parts[-1]["model"]["messages"][0].content == "done"
    assert [m.content for m in scripted.calls[-1].messages] == ["hi", "", "[cleared]"]


def test_the_sync_form_edits_too() -> None:
    from rxagent.middleware import ModelRequest, ModelResponse

    messages = [HumanMessage(content="hi"), AIMessage(content="", tool_calls=CALLS[0]),
                ToolMessage(content="sunny in Paris", tool_call_id="w1")]
    given: list[Any] = []

    def handler(request: Any) -> Any:
        given.append([m.content for m in request.messages])
        return ModelResponse(result=[AIMessage(content="ok")])

    middleware = rx_middleware.ContextEditingMiddleware(
        edits=[rx_middleware.ClearToolUsesEdit(trigger=0, keep=0)])
    middleware.wrap_model_call(
        ModelRequest(model=ScriptedChatModel([]), messages=messages), handler)
    assert given == [["hi", "", "[cleared]"]]
    assert messages[2].content == "sunny in Paris"
