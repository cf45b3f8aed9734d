"""The agents the server tests serve: each answers from the conversation, so any number of runs
(and two copies, one served and one local) give the same streams."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

from rxagent import Agent, create_agent, get_stream_writer
from rxagent.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from rxagent.testing import FunctionChatModel, ScriptedChatModel
from rxagent.tools import ToolRuntime, tool
from rxagent.types import interrupt


@tool
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    writer = get_stream_writer()
    writer(f"Looking up data for city: {city}")
    writer(f"Acquired data for city: {city}")
    return f"It's always sunny in {city}!"


def _weather_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        return AIMessage(content="", tool_calls=[
            {"name": "get_weather", "args": {"city": "SF"}, "id": f"call_{len(messages)}"}])
    if isinstance(last, ToolMessage):
        return f"The weather: {last.text}"
    return "Nothing to add."


def weather_agent() -> Agent:
    """A tool call with custom events, then an answer, for every user message."""
    return create_agent(FunctionChatModel(_weather_reply), [get_weather])


def _echo_reply(messages: Sequence[BaseMessage], tools: Any) -> str:
    said = [m.text for m in messages if isinstance(m, HumanMessage)]
    return "You said: " + " | ".join(said)


def echo_agent() -> Agent:
    """Answers with every user message so far (a thread's memory shows in its answer)."""
    return create_agent(FunctionChatModel(_echo_reply), [])


def token_agent(count: int) -> Agent:
    """Answers ``t0 t1 ... t{count-1}``, one token a chunk."""
    return create_agent(FunctionChatModel(
        lambda messages, tools: " ".join(f"t{i}" for i in range(count))), [])


class Gate:
    """Holds a model's tokens until opened; counts the tokens produced."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.opened = threading.Event()
        self.started = threading.Event()
        self.produced = 0

    def open(self) -> None:
        self.opened.set()


GATES: dict[str, Gate] = {}


def new_gate() -> Gate:
    """A gate for one test; a run of :func:`gated_agent` whose user message is ``gate.key``
    waits on it."""
    gate = Gate(f"gate-{len(GATES)}")
    GATES[gate.key] = gate
    return gate


def gated_agent(tokens: int = 60) -> Agent:
    """Streams ``tokens`` tokens ``g0 g1 ...``, but waits for the gate its user message names
    after the first one, then goes on with a short pause between tokens (so that a test can
    cut it mid-run)."""

    async def reply(messages: Any, tools: Any) -> AsyncIterator[str]:
        gate = GATES[messages[-1].text]
        for i in range(tokens):
            if i == 1:
                gate.started.set()
                while not gate.opened.is_set():
                    await anyio.sleep(0.005)
            gate.produced += 1
            yield f"g{i} "
            if i:
                await anyio.sleep(0.01)

    return create_agent(FunctionChatModel(reply), [])


@tool
def book_flight(to: str) -> str:
    """Book a flight, once a human approves."""
    answer = interrupt({"question": f"Book a flight to {to}?"})
    return f"booked to {to}" if answer == "yes" else "not booked"


def _booking_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        return AIMessage(content="", tool_calls=[
            {"name": "book_flight", "args": {"to": "Paris"}, "id": f"call_{len(messages)}"}])
    return f"Done: {last.text}"


def booking_agent() -> Agent:
    """Asks a human (``interrupt``) before booking."""
    return create_agent(FunctionChatModel(_booking_reply), [book_flight])


def broken_agent() -> Agent:
    """Its model has no reply: every run fails with ``ScriptExhaustedError``."""
    return create_agent(ScriptedChatModel([]), [])


def _crash(messages: Any, tools: Any) -> str:
    raise RuntimeError("upstream refused key sk-secret")


def crashing_agent() -> Agent:
    """Its model raises an error that is not rxagent's, with a secret in its text."""
    return create_agent(FunctionChatModel(_crash), [])


class Flood:
    """Counts the tokens a :func:`flood_agent` run has produced."""

    produced = 0


def flood_agent(tokens: int) -> Agent:
    """Answers ``tokens`` one-letter tokens as fast as it is let (a generator: pulled only
    when the run has room)."""

    def reply(messages: Any, tools: Any) -> Any:
        for _ in range(tokens):
            Flood.produced += 1
            yield "x"

    return create_agent(FunctionChatModel(reply), [])


def _outer_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        return AIMessage(content="", tool_calls=[
            {"name": "helper", "args": {"request": "weather?"}, "id": f"call_{len(messages)}"}])
    return f"Helper said: {last.text}"


def nested_agent() -> Agent:
    """Calls an agent as a tool, whose run streams under the call's namespace."""
    helper = create_agent(FunctionChatModel(_echo_reply), [], name="helper")
    return create_agent(FunctionChatModel(_outer_reply), [helper.as_tool("helper", "Helps.")])


@dataclasses.dataclass
class Caller:
    """The ``context_schema`` of :func:`context_agent`."""

    user: str


@tool
def whoami(runtime: ToolRuntime[Caller]) -> str:
    """Who is calling."""
    return f"{type(runtime.context).__name__}: {runtime.context.user}"


def _whoami_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return f"You are {last.text}"
    return AIMessage(content="", tool_calls=[{"name": "whoami", "args": {}, "id": "call_1"}])


def context_agent() -> Agent:
    """Asks its tool who calls: the tool answers from the run's context (a :class:`Caller`)."""
    return create_agent(FunctionChatModel(_whoami_reply), [whoami], context_schema=Caller)
