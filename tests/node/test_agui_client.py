"""``@ag-ui/client``'s ``HttpAgent`` (Node) runs agents through ``POST /agui/{assistant_id}``:
its event verification accepts every stream, and the events equal what the same turns give
through ``rxagent.agui.events`` in Python (ids and the echoed request set aside)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex.operators as ops

from rxagent import Agent, agui
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import HumanMessage
from rxagent.server import create_app
from rxagent.types import Command

from ..agui.agents import delegating_agent, failing_agent, profile_agent, reasoning_agent
from ..agui.events import as_json, check_protocol, normalized
from ..server.agents import booking_agent, echo_agent, nested_agent, weather_agent
from ..server.conftest import ServerThread
from .conftest import run_script

AGENTS: dict[str, Callable[[], Agent]] = {
    "weather": weather_agent, "echo": echo_agent, "booking": booking_agent,
    "profile": profile_agent, "reasoning": reasoning_agent, "failing": failing_agent,
    "nested": nested_agent, "delegating": delegating_agent,
}


@pytest.fixture(scope="module")
def served() -> Iterator[ServerThread]:
    with ServerThread(create_app({name: make() for name, make in AGENTS.items()})) as running:
        yield running


def in_node(node: str, url: str, assistant: str, turns: list[dict[str, Any]]) -> Any:
    for turn in turns:
        turn.setdefault("runId", str(uuid.uuid4()))
    return run_script(node, "agui_run.mjs", {
        "url": f"{url}/agui/{assistant}", "threadId": str(uuid.uuid4()), "turns": turns})


def in_python(assistant: str, turns: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The same turns on a local copy of the agent, through the operator: a user message
    with the id the Node script gives it, or every pending interrupt answered "yes"."""
    agent = AGENTS[assistant]().with_checkpointer(InMemorySaver())
    config = {"configurable": {"thread_id": "local"}}
    runs = []
    for position, turn in enumerate(turns):
        if "say" in turn:
            inputs: Any = {"messages": [HumanMessage(content=turn["say"],
                                                     id=f"user-{position}")]}
        else:
            pending = agent.get_state(config).interrupts
            inputs = Command(resume={interrupt.id: "yes" for interrupt in pending})
        source = agent.observe(inputs, config, extra_modes=agui.EXTRA_MODES)
        runs.append(as_json(source.pipe(agui.events(), ops.to_list()).run()))
    return runs


@pytest.mark.parametrize(("assistant", "turns"), [
    ("weather", [{"say": "weather?"}]),
    ("echo", [{"say": "a"}, {"say": "b"}]),
    ("booking", [{"say": "book"}, {"resume": "pending"}]),
    ("profile", [{"say": "Ann"}, {"say": "Bob"}]),
    ("reasoning", [{"say": "why?"}]),
    ("failing", [{"say": "hi"}]),
    ("nested", [{"say": "ask the helper"}]),
    ("delegating", [{"say": "tides"}, {"say": "waves"}]),
])
def test_http_agent_accepts_the_stream_and_sees_the_operators_events(
    node: str, served: ServerThread, assistant: str, turns: list[dict[str, Any]]
) -> None:
    result = in_node(node, served.url, assistant, turns)
    expected = in_python(assistant, turns)
    assert len(result["turns"]) == len(expected)
    for turn, local in zip(result["turns"], expected, strict=True):
        assert turn["error"] is None, turn["error"]  # verifyEvents refused nothing
        check_protocol(turn["events"])
        assert normalized(turn["events"]) == normalized(local)


def test_the_client_ends_with_the_threads_conversation_and_state(
    node: str, served: ServerThread
) -> None:
    result = in_node(node, served.url, "profile", [{"say": "Ann"}, {"say": "Bob"}])
    assert [turn["outcome"]["outcome"] for turn in result["turns"]] == ["success", "success"]
    assert result["state"] == {"user_name": "Bob", "preferences": {"theme": "dark",
                                                                   "tags": ["bob"]}}
    said = [(m["role"], m.get("content")) for m in result["messages"]]
    assert said == [("user", "Ann"), ("assistant", None), ("tool", "noted Ann"),
                    ("assistant", "Hello Ann"), ("user", "Bob"), ("assistant", None),
                    ("tool", "noted Bob"), ("assistant", "Hello Bob")]


def test_an_interrupt_reaches_the_client_and_its_answer_resumes_the_run(
    node: str, served: ServerThread
) -> None:
    result = in_node(node, served.url, "booking", [{"say": "book"}, {"resume": "pending"}])
    asked, answered = result["turns"]
    assert asked["outcome"]["outcome"] == "interrupt"
    (interrupt,) = asked["outcome"]["interrupts"]
    assert interrupt["toolCallId"] == "call_1" and interrupt["reason"] == "tool_call"
    assert answered["outcome"]["outcome"] == "success"
    assert result["messages"][-1]["content"] == "Done: booked to Paris"
