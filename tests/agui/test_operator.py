"""``rxagent.agui.events``: a run's parts as AG-UI events, sync and under asyncio and trio."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
import reactivex.operators as ops
from ag_ui.core import RunAgentInput
from hypothesis import given
from hypothesis import strategies as st

import rxagent
from rxagent import agui, to_async_iterator
from rxagent._agui import AguiMapper, json_patch
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from rxagent.testing import FunctionChatModel

from ..server.agents import (
    _weather_reply,
    booking_agent,
    get_weather,
    nested_agent,
    weather_agent,
)
from .agents import delegating_agent, failing_agent, profile_agent, reasoning_agent
from .events import apply_patch, as_json, check_protocol, normalized

ASK = {"messages": [{"role": "user", "content": "weather?"}]}


def run_events(agent: rxagent.Agent, inputs: Any, config: Any = None,
               **options: Any) -> list[dict[str, Any]]:
    source = agent.observe(inputs, config, extra_modes=agui.EXTRA_MODES)
    return as_json(source.pipe(agui.events(**options), ops.to_list()).run())


def test_a_tool_run_gives_its_events_in_order() -> None:
    events = run_events(weather_agent(), ASK, thread_id="t1", run_id="r1")
    check_protocol(events)
    assert [e["type"] for e in events] == [
        "RUN_STARTED", "STATE_SNAPSHOT",
        "STEP_STARTED", "TOOL_CALL_START", *["TOOL_CALL_ARGS"] * 5, "TOOL_CALL_END",
        "STEP_FINISHED",
        "STEP_STARTED", "CUSTOM", "CUSTOM", "TOOL_CALL_RESULT", "STEP_FINISHED",
        "STEP_STARTED", "TEXT_MESSAGE_START", *["TEXT_MESSAGE_CONTENT"] * 7,
        "TEXT_MESSAGE_END", "STEP_FINISHED",
        "RUN_FINISHED",
    ]
    assert events[0] == {"type": "RUN_STARTED", "threadId": "t1", "runId": "r1"}
    # Both model calls' usage (1+6 tokens, then 6+8), summed per provider and model.
    assert events[-1] == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r1",
                          "outcome": {"type": "success"}, "usage": [{
                              "provider": "function", "model": "function", "inputTokens": 7,
                              "outputTokens": 14, "totalTokens": 21}]}
    start = events[3]
    assert start["toolCallId"] == "call_1" and start["toolCallName"] == "get_weather"
    args = "".join(e["delta"] for e in events if e["type"] == "TOOL_CALL_ARGS")
    assert json.loads(args) == {"city": "SF"}
    assert [e["stepName"] for e in events if e["type"] == "STEP_STARTED"] == [
        "model", "tools", "model"]
    assert [(e["name"], e["value"]) for e in events if e["type"] == "CUSTOM"] == [
        ("custom", "Looking up data for city: SF"), ("custom", "Acquired data for city: SF")]
    result = next(e for e in events if e["type"] == "TOOL_CALL_RESULT")
    assert result["toolCallId"] == "call_1" and result["content"] == "It's always sunny in SF!"
    text = [e for e in events if e["type"].startswith("TEXT_MESSAGE")]
    assert "".join(e.get("delta", "") for e in text) == "The weather: It's always sunny in SF!"
    # The reply's message id is the one the thread keeps, so a client's history matches it.
    assert text[0]["messageId"].startswith("lc_run--") and text[0]["role"] == "assistant"
    assert start["parentMessageId"] != text[0]["messageId"]  # two model calls, two messages


def test_without_the_tasks_mode_each_step_shows_when_it_ends() -> None:
    source = weather_agent().observe(ASK)
    events = as_json(source.pipe(agui.events(), ops.to_list()).run())
    check_protocol(events)
    steps = [(e["type"], e["stepName"]) for e in events if e["type"].startswith("STEP")]
    assert steps == [("STEP_STARTED", "model"), ("STEP_FINISHED", "model"),
                     ("STEP_STARTED", "tools"), ("STEP_FINISHED", "tools"),
                     ("STEP_STARTED", "model"), ("STEP_FINISHED", "model")]
    kinds = [e["type"] for e in events]
    assert kinds.index("TOOL_CALL_END") < kinds.index("STEP_STARTED")


@pytest.mark.parametrize(("make", "tool", "text"), [
    (nested_agent, "helper", "You said: weather?"),  # an agent as a tool
    (delegating_agent, "research", "Found: weather?"),  # an agent invoked inside a tool
])
def test_a_nested_run_is_a_subagent_of_the_tool_call_that_runs_it(
    make: Callable[[], rxagent.Agent], tool: str, text: str
) -> None:
    events = run_events(make(), ASK)
    check_protocol(events)
    start = next(e for e in events if e["type"] == "TOOL_CALL_START")
    started = next(e for e in events if e["type"] == "SUBAGENT_STARTED")
    assert started["name"] == tool and started["parentToolCallId"] == start["toolCallId"]
    assert started["parentMessageId"] == start["parentMessageId"]
    run = started["subagentRunId"]
    inside = [e for e in events if e.get("subagentRunId") == run]
    assert [e["type"] for e in inside] == [
        "SUBAGENT_STARTED", "TEXT_MESSAGE_START", *["TEXT_MESSAGE_CONTENT"] * len(
            text.split()), "TEXT_MESSAGE_END", "SUBAGENT_FINISHED"]
    assert "".join(e.get("delta", "") for e in inside) == text
    kinds = [(e["type"], e.get("stepName")) for e in events]
    # The sub-agent ends with the tools step that ran it; its own steps are not the run's.
    finished = kinds.index(("SUBAGENT_FINISHED", None))
    assert kinds[finished + 1] == ("STEP_FINISHED", "tools")
    assert [name for kind, name in kinds if kind == "STEP_STARTED"] == ["model", "tools", "model"]


def test_without_the_tasks_mode_a_subagent_ends_with_the_run() -> None:
    events = as_json(delegating_agent().observe(ASK).pipe(agui.events(), ops.to_list()).run())
    check_protocol(events)
    assert [e["type"] for e in events[-2:]] == ["SUBAGENT_FINISHED", "RUN_FINISHED"]


def test_a_reply_that_arrives_whole_gives_whole_events() -> None:
    agent = rxagent.create_agent(FunctionChatModel(_weather_reply, disable_streaming=True),
                                 [get_weather])
    events = run_events(agent, ASK)
    check_protocol(events)
    args = [e["delta"] for e in events if e["type"] == "TOOL_CALL_ARGS"]
    assert [json.loads(a) for a in args] == [{"city": "SF"}]
    assert [e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT"] == [
        "The weather: It's always sunny in SF!"]


def test_reasoning_comes_before_the_text_it_leads_to() -> None:
    events = run_events(reasoning_agent(), {"messages": [("user", "why?")]})
    check_protocol(events)
    kinds = [(e["type"], e.get("delta")) for e in events
             if e["type"].startswith(("REASONING", "TEXT"))]
    assert kinds == [
        ("REASONING_START", None), ("REASONING_MESSAGE_START", None),
        ("REASONING_MESSAGE_CONTENT", "Let me"), ("REASONING_MESSAGE_CONTENT", " think."),
        ("REASONING_MESSAGE_END", None), ("REASONING_END", None),
        ("TEXT_MESSAGE_START", None), ("TEXT_MESSAGE_CONTENT", "It is"),
        ("TEXT_MESSAGE_CONTENT", " 42."), ("TEXT_MESSAGE_END", None),
    ]
    reasoning_id = events[[e["type"] for e in events].index("REASONING_START")]["messageId"]
    text_id = next(e["messageId"] for e in events if e["type"] == "TEXT_MESSAGE_START")
    assert reasoning_id != text_id


def test_the_state_without_messages_is_a_snapshot_then_deltas() -> None:
    agent = profile_agent().with_checkpointer(InMemorySaver())
    config = {"configurable": {"thread_id": "p1"}}
    events = run_events(agent, {"messages": [("user", "Ann")]}, config)
    check_protocol(events)
    states = [e for e in events if e["type"].startswith("STATE")]
    assert states[0] == {"type": "STATE_SNAPSHOT", "snapshot": {}}
    assert [e["type"] for e in states[1:]] == ["STATE_DELTA"]  # only the tool's step changed it
    state = states[0]["snapshot"]
    for delta in states[1:]:
        state = apply_patch(state, delta["delta"])
    final = agent.get_state(config).values
    assert state == {"user_name": "Ann", "preferences": {"theme": "dark", "tags": ["ann"]}}
    assert state == {key: value for key, value in final.items() if key != "messages"}
    again = run_events(agent, {"messages": [("user", "Bob")]}, config)
    deltas = [e["delta"] for e in again if e["type"] == "STATE_DELTA"]
    assert again[1]["snapshot"] == state
    assert deltas == [[{"op": "replace", "path": "/user_name", "value": "Bob"},
                       {"op": "replace", "path": "/preferences/tags", "value": ["bob"]}]]


def test_an_interrupt_is_the_runs_outcome_and_a_resume_answers_it() -> None:
    agent = booking_agent().with_checkpointer(InMemorySaver())
    config = {"configurable": {"thread_id": "b1"}}
    events = run_events(agent, {"messages": [("user", "book")]}, config)
    check_protocol(events)
    pending = agent.get_state(config).interrupts
    assert events[-1]["outcome"] == {"type": "interrupt", "interrupts": [{
        "id": pending[0].id, "reason": "tool_call", "toolCallId": "call_1",
        "metadata": {"value": {"question": "Book a flight to Paris?"}}}]}
    thread = agent.get_state(config).values["messages"]
    request = RunAgentInput(thread_id="b1", run_id="r2", messages=[], resume=[
        {"interruptId": pending[0].id, "status": "resolved", "payload": "yes"}])
    resumed = run_events(agent, agui.agent_input(request, thread), config)
    check_protocol(resumed)
    assert resumed[-1]["outcome"] == {"type": "success"}
    result = next(e for e in resumed if e["type"] == "TOOL_CALL_RESULT")
    assert (result["toolCallId"], result["content"]) == ("call_1", "booked to Paris")


def test_a_failing_run_gives_run_error_after_every_event_before_it() -> None:
    agent = failing_agent()
    inputs = {"messages": [("user", "hi")]}
    events = run_events(agent, inputs, thread_id="t", run_id="r")  # completes, no raise
    check_protocol(events)
    assert events[-1] == {"type": "RUN_ERROR", "message": "the provider hung up",
                          "code": "Upstream"}
    # Everything the run gave before failing, mapped part by part, came before RUN_ERROR.
    notes = agent.observe(inputs, extra_modes=agui.EXTRA_MODES).pipe(
        ops.materialize(), ops.to_list()).run()
    assert notes[-1].kind == "E"
    mapper = AguiMapper("t", "r")
    before = mapper.start()
    for note in notes[:-1]:
        before += mapper.on_part(note.value)
    assert normalized(events[:-1]) == normalized(as_json(before))
    assert [e.get("delta") for e in events if e["type"] == "TEXT_MESSAGE_CONTENT"] == [
        "Half", " an answer"]


def test_run_error_carries_the_usage_of_the_calls_before_it() -> None:
    chunk = AIMessageChunk(content="a", id="m1", chunk_position="last", usage_metadata={
        "input_tokens": 3, "output_tokens": 1, "total_tokens": 4})
    parts = [{"type": "messages", "ns": (),
              "data": (chunk, {"ls_provider": "p", "ls_model_name": "m"})}]
    source = reactivex.concat(reactivex.from_iterable(parts),
                              reactivex.throw(rxagent.RunError("boom")))
    events = as_json(source.pipe(agui.events(), ops.to_list()).run())
    check_protocol(events)
    assert events[-1] == {"type": "RUN_ERROR", "message": "boom", "code": "RunError", "usage": [
        {"provider": "p", "model": "m", "inputTokens": 3, "outputTokens": 1, "totalTokens": 4}]}


def test_the_error_text_is_the_callers_choice() -> None:
    events = run_events(failing_agent(), {"messages": [("user", "hi")]},
                        error_message=lambda error: f"hidden {type(error).__name__}")
    assert events[-1] == {"type": "RUN_ERROR", "message": "hidden Upstream", "code": "Upstream"}


def test_a_part_the_mapping_cannot_read_ends_the_run_with_run_error() -> None:
    broken = {"type": "messages", "ns": (), "data": "not a pair"}
    events = as_json(reactivex.from_iterable([broken]).pipe(
        agui.events(), ops.to_list()).run())
    assert [e["type"] for e in events] == ["RUN_STARTED", "RUN_ERROR"]


def test_each_subscription_is_its_own_run() -> None:
    source = weather_agent().observe(ASK, extra_modes=agui.EXTRA_MODES).pipe(agui.events())
    first = as_json(source.pipe(ops.to_list()).run())
    second = as_json(source.pipe(ops.to_list()).run())
    assert first[0]["runId"] != second[0]["runId"]
    assert normalized(first) == normalized(second)


def test_a_message_a_hook_adds_is_a_whole_text_message_and_a_nested_part_a_subagents() -> None:
    parts = [{"type": "messages", "ns": (), "data": (HumanMessage(content="hi", id="h1"), {})},
             {"type": "messages", "ns": ("tools:1",),
              "data": (ToolMessage(content="ok", tool_call_id="c1"), {})},
             {"type": "custom", "ns": ("tools:1",), "data": {"done": 1}}]
    events = as_json(reactivex.from_iterable(parts).pipe(agui.events(), ops.to_list()).run())
    check_protocol(events)
    assert events[1:-1] == [
        {"type": "TEXT_MESSAGE_START", "messageId": "h1", "role": "user"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": "h1", "delta": "hi"},
        {"type": "TEXT_MESSAGE_END", "messageId": "h1"},
        # A nested run of no tool call the mapping saw: a sub-agent all the same.
        {"type": "SUBAGENT_STARTED", "subagentRunId": "tools:1", "name": "subagent"},
        {"type": "TOOL_CALL_RESULT", "subagentRunId": "tools:1", "messageId": "c1-result",
         "toolCallId": "c1", "content": "ok", "role": "tool"},
        {"type": "CUSTOM", "subagentRunId": "tools:1", "name": "custom|tools:1",
         "value": {"done": 1}},
        {"type": "SUBAGENT_FINISHED", "subagentRunId": "tools:1"},
    ]


@pytest.mark.anyio
async def test_under_asyncio_and_trio_the_events_are_the_same() -> None:
    source = weather_agent().observe(ASK, extra_modes=agui.EXTRA_MODES).pipe(agui.events())
    async with to_async_iterator(source) as items:
        events = as_json([event async for event in items])
    check_protocol(events)
    assert normalized(events) == normalized(run_events(weather_agent(), ASK))


@pytest.mark.anyio
async def test_under_asyncio_and_trio_a_failure_is_run_error_last() -> None:
    source = failing_agent().observe({"messages": [("user", "hi")]}).pipe(agui.events())
    async with to_async_iterator(source) as items:
        events = as_json([event async for event in items])
    check_protocol(events)
    assert events[-1]["type"] == "RUN_ERROR" and events[-2]["delta"] == " an answer"


# -- the input ------------------------------------------------------------------------------


def test_only_the_messages_a_thread_lacks_are_added() -> None:
    thread = [HumanMessage(content="a", id="u1"), AIMessage(content="A", id="m1")]
    request = RunAgentInput.model_validate({
        "threadId": "t", "runId": "r", "state": {"user_name": "Ann", "messages": []},
        "messages": [
            {"id": "u1", "role": "user", "content": "a"},
            {"id": "m1", "role": "assistant", "content": "A"},
            {"id": "x1", "role": "reasoning", "content": "hmm"},
            {"id": "u2", "role": "user", "content": [{"type": "text", "text": "b"}]},
        ]})
    added = agui.agent_input(request, thread)
    assert added["user_name"] == "Ann"
    assert [(type(m).__name__, m.id, m.text) for m in added["messages"]] == [
        ("HumanMessage", "u2", "b")]
    fresh = agui.agent_input(request, [])
    assert [m.id for m in fresh["messages"]] == ["u1", "m1", "u2"]


def test_a_clients_tool_calls_and_results_become_messages() -> None:
    request = RunAgentInput.model_validate({
        "threadId": "t", "runId": "r", "messages": [
            {"id": "s", "role": "system", "content": "be brief"},
            {"id": "a", "role": "assistant", "toolCalls": [{
                "id": "c1", "type": "function",
                "function": {"name": "lookup", "arguments": "{\"q\": 1}"}}]},
            {"id": "t", "role": "tool", "toolCallId": "c1", "content": "found",
             "error": "it broke"},
        ]})
    system, call, result = agui.agent_input(request)["messages"]
    assert system.text == "be brief" and type(system).__name__ == "SystemMessage"
    assert call.tool_calls == [{"name": "lookup", "args": {"q": 1}, "id": "c1",
                                "type": "tool_call"}]
    assert (result.tool_call_id, result.text, result.status) == ("c1", "found", "error")


def test_media_parts_become_content_blocks() -> None:
    request = RunAgentInput.model_validate({
        "threadId": "t", "runId": "r", "messages": [{"id": "u", "role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "source": {"type": "url", "value": "https://x/cat.png",
                                         "mimeType": "image/png"}},
            {"type": "document", "source": {"type": "data", "value": "JVBERi0=",
                                            "mimeType": "application/pdf"}},
            {"type": "audio", "source": {"type": "file", "value": "file-1"}},
        ]}]})
    (message,) = agui.agent_input(request)["messages"]
    assert message.content == [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "url": "https://x/cat.png", "mime_type": "image/png"},
        {"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"},
        {"type": "audio", "file_id": "file-1"},
    ]


def test_a_tool_call_whose_arguments_are_not_json_is_refused() -> None:
    request = RunAgentInput.model_validate({
        "threadId": "t", "runId": "r", "messages": [{"id": "a", "role": "assistant", "toolCalls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{nope"}}]}]})
    with pytest.raises(rxagent.InvalidMessageError, match="'c1' are not JSON"):
        agui.agent_input(request)


# -- JSON Patch -----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "c/d", "e~f", ""]), inner, max_size=4),
    max_leaves=12,
)


@given(JSON, JSON)
def test_a_patch_turns_the_old_state_into_the_new(old: Any, new: Any) -> None:
    patch = json_patch(old, new)
    def same(a: Any, b: Any) -> bool:  # as JSON: true is not 1, and key order is no matter
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    assert same(apply_patch(old, patch), new)
    assert (patch == []) == same(old, new)


def test_importing_without_ag_ui_protocol_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ag_ui.core", None)  # what a missing package looks like
    monkeypatch.delitem(sys.modules, "rxagent.agui")
    with pytest.raises(rxagent.UsageError, match=r"pip install 'rxagent\[agui\]'"):
        importlib.import_module("rxagent.agui")
    monkeypatch.undo()
    assert importlib.import_module("rxagent.agui") is agui
