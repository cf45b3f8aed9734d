"""Threads under rxagent and under LangGraph itself: the same programs, the same streams.

The programs are written once against ``lib`` (rxagent, or LangChain/LangGraph), as in
``test_langgraph_parity.py``, with a checkpointer of each library's own; ids that are random in
both are numbered in order of appearance before the two are compared.
"""

from __future__ import annotations

import re
from typing import Any

import langchain_core.messages as lc_messages
import pytest
from langgraph.checkpoint.memory import InMemorySaver as LgSaver
from langgraph.types import Command as LgCommand
from langgraph.types import interrupt as lg_interrupt

import rxagent.messages as rx_messages
from rxagent.checkpoint import InMemorySaver as RxSaver
from rxagent.types import Command as RxCommand
from rxagent.types import interrupt as rx_interrupt

from .test_langgraph_parity import LANGGRAPH, RXAGENT, Numbering, message_shape

LIBS = {
    "langgraph": (LANGGRAPH, LgSaver, LgCommand, lg_interrupt),
    "rxagent": (RXAGENT, RxSaver, RxCommand, rx_interrupt),
}
CONFIG = {"configurable": {"thread_id": "t"}}


def booking_agent(name: str) -> tuple[Any, Any]:
    """An agent whose tool asks a human before it books, on a checkpointer; and Command."""
    lib, saver, command, interrupt = LIBS[name]

    def book(hotel: str) -> str:
        """Book a hotel."""
        answer = interrupt({"confirm": hotel})
        return f"booked {hotel}: {answer}"

    def weather(city: str) -> str:
        """The weather."""
        return f"sunny in {city}"

    model = lib.model([
        [{"name": "weather", "args": {"city": "Paris"}, "id": "w1"}],
        "Sunny.",
        [{"name": "book", "args": {"hotel": "Ritz"}, "id": "b1"}],
        "Booked the Ritz.",
    ])
    agent = lib.create_agent(model, tools=[lib.tool(weather), lib.tool(book)],
                             checkpointer=saver())
    return agent, command


class Ids(Numbering):
    """Numbering that also drops the ``-0`` LangChain appends to a run's message id when the
    fake model is called without streaming (which model path LangGraph takes is its own)."""

    def __call__(self, value: Any) -> Any:
        numbered = super().__call__(value)
        return re.sub(r"^(#\d+)-\d+$", r"\1", numbered) if isinstance(numbered, str) else numbered


def shape(mode: str, data: Any, number: Numbering) -> Any:
    if mode in ("updates", "values"):
        out = {}
        for key, value in data.items():
            if key == "__interrupt__":
                out[key] = [item.value for item in value]
            elif mode == "updates":
                out[key] = [message_shape(m, number) for m in value["messages"]]
            else:
                out[key] = [message_shape(m, number) for m in value]
        return out
    if mode == "checkpoints":
        return (data["metadata"]["source"], data["metadata"]["step"], data["next"],
                [(t["name"], number(t["id"]), sorted(t)) for t in data["tasks"]],
                [message_shape(m, number) for m in data["values"]["messages"]],
                number(data["config"]["configurable"]["checkpoint_id"]),
                number((data["parent_config"] or {}).get("configurable", {}).get(
                    "checkpoint_id")),
                list(data), list(data["config"]["configurable"]))
    if mode == "tasks":
        return (data["name"], number(data["id"]), list(data), data.get("triggers"),
                [message_shape(m, number) for m in (data.get("result") or {}).get(
                    "messages", [])])
    assert mode == "debug"
    return (data["type"], data["step"], list(data))


def conversation(name: str, modes: list[str]) -> list[Any]:
    """Two turns on one thread, the second stopped by an interrupt and resumed."""
    agent, command = booking_agent(name)
    number = Ids()
    events = []
    for input in ({"messages": [("user", "Weather in Paris?")]},
                  {"messages": [("user", "Book the Ritz")]},
                  command(resume="yes")):
        events.append([(mode, shape(mode, data, number))
                       for mode, data in agent.stream(input, CONFIG, stream_mode=modes)])
    return events


@pytest.mark.parametrize("modes", [
    ["updates", "values"],
    ["checkpoints", "tasks"],
    ["debug"],
])
def test_a_conversation_with_an_interrupt_streams_as_in_langgraph(modes: list[str]) -> None:
    ours, theirs = conversation("rxagent", modes), conversation("langgraph", modes)
    assert [len(turn) for turn in ours] == [len(turn) for turn in theirs]
    assert ours == theirs


def test_state_and_history_as_in_langgraph() -> None:
    def history(name: str) -> list[Any]:
        agent, command = booking_agent(name)
        agent.invoke({"messages": [("user", "Weather in Paris?")]}, CONFIG)
        agent.invoke({"messages": [("user", "Book the Ritz")]}, CONFIG)
        number = Ids()
        state = agent.get_state(CONFIG)
        pending = (state.next, [i.value for i in state.interrupts],
                   [(t.name, t.path, [i.value for i in t.interrupts]) for t in state.tasks])
        agent.invoke(command(resume="yes"), CONFIG)
        return [pending] + [
            (h.metadata["source"], h.metadata["step"], h.next,
             [message_shape(m, number) for m in h.values["messages"]],
             # The input task's result: LangGraph keeps the input as given ((role, text)
             # tuples here), rxagent the messages read from it.
             [(t.name, t.path, [message_shape(m, number)
                                for m in (t.result or {}).get("messages", [])]
               if t.name != "__start__" else None)
              for t in h.tasks])
            for h in agent.get_state_history(CONFIG)
        ]

    assert history("rxagent") == history("langgraph")


def test_interrupt_before_and_update_state_as_in_langgraph() -> None:
    def run(name: str) -> list[Any]:
        lib, saver, _, _ = LIBS[name]
        messages = (rx_messages if name == "rxagent" else lc_messages)

        def get(q: str) -> str:
            """Get."""
            return "ok"

        model = lib.model([[{"name": "get", "args": {"q": "x"}, "id": "c1"}], "done",
                           "again", "more"])
        agent = lib.create_agent(model, tools=[lib.tool(get)], checkpointer=saver(),
                                 interrupt_before=["tools"])
        seen: list[Any] = [[sorted(u) for u in agent.stream({"messages": [("user", "x")]},
                                                             CONFIG)]]

        def state() -> tuple[Any, ...]:
            s = agent.get_state(CONFIG)
            return (s.next, s.metadata["step"], s.metadata["source"], len(s.values["messages"]),
                    [t.name for t in s.tasks])

        seen.append(state())
        seen.append([sorted(u) for u in agent.stream(None, CONFIG)])
        seen.append(state())
        agent.update_state(CONFIG, {"messages": [messages.HumanMessage("note")]})
        seen.append(state())
        agent.update_state(CONFIG, {"messages": [messages.AIMessage("", tool_calls=[
            {"name": "get", "args": {"q": "y"}, "id": "c2"}])]}, as_node="model")
        seen.append(state())
        agent.update_state(CONFIG, {"messages": [messages.HumanMessage("n2")]}, as_node="tools")
        seen.append(state())
        return seen

    assert run("rxagent") == run("langgraph")
