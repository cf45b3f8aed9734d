"""The agents the chat page's tests serve with ``rxagent serve tests/browser/agents.py:NAME``.

Each answers from the conversation, so a thread takes any number of runs, and the same question
always streams the same tokens (a run cut and resumed must end with the same text as one that
was not).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

from rxagent import create_agent
from rxagent._demo import get_weather, weather_script
from rxagent.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from rxagent.middleware import HumanInTheLoopMiddleware
from rxagent.testing import FunctionChatModel, ScriptedChatModel
from rxagent.tools import tool
from rxagent.types import interrupt

# Seconds between tokens of the slow agents; the tests make it small, a person watching large.
PAUSE = float(os.environ.get("RXAGENT_PAGE_PAUSE", "0.02"))


def _demo_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    """The demo's two replies, for every question: the tool call, then the answer."""
    call, answer = weather_script()
    assert isinstance(call, AIMessage)
    if isinstance(messages[-1], HumanMessage):
        return call.model_copy(update={"tool_calls": [
            {**c, "id": f"call_weather_{len(messages)}"} for c in call.tool_calls]})
    return answer


demo = create_agent(FunctionChatModel(_demo_reply, delay=PAUSE), [get_weather])
"""The demo agent of ``rxagent demo`` (its tool and its script), answering every question."""


def counted_words(count: int) -> list[str]:
    """The answer of :data:`counter` to ``count N``: ``w0 w1 ... w{N-1}``, a token a word."""
    return [f"w{i} " for i in range(count)]


def _counter_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    words = messages[-1].text.split()
    count = int(words[-1]) if words and words[-1].isdigit() else 20

    async def tokens() -> AsyncIterator[str]:
        for word in counted_words(count):
            yield word
            if PAUSE:
                await anyio.sleep(PAUSE)

    return tokens()


counter = create_agent(FunctionChatModel(_counter_reply), [])
"""Answers ``count N`` with ``N`` numbered words, ``PAUSE`` apart (to stop or cut mid-run)."""


def _flood_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    words = messages[-1].text.split()
    count = int(words[-1]) if words and words[-1].isdigit() else 100_000
    return iter(counted_words(count))


flood = create_agent(FunctionChatModel(_flood_reply), [])
"""Answers ``count N`` with ``N`` numbered words as fast as it is let."""


@tool
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return f"sent to {to}: {body}"


def _mail_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        return AIMessage(content="", tool_calls=[{
            "name": "send_email", "args": {"to": "ann@example.com", "body": last.text},
            "id": f"call_mail_{len(messages)}"}])
    if isinstance(last, ToolMessage):
        return f"Result: {last.text}"
    return "Nothing to add."


mail = create_agent(
    FunctionChatModel(_mail_reply, delay=PAUSE), [send_email],
    middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True})],
)
"""Sends an email with the question as its body, once a person approves the call."""


def _helper_reply(messages: Sequence[BaseMessage], tools: Any) -> str:
    return "Helper heard: " + messages[-1].text


def _lead_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        return AIMessage(content="", tool_calls=[{
            "name": "helper", "args": {"request": last.text}, "id": f"call_help_{len(messages)}"}])
    return f"The helper says: {last.text}"


_helper = create_agent(FunctionChatModel(_helper_reply, delay=PAUSE), [], name="helper")
team = create_agent(FunctionChatModel(_lead_reply, delay=PAUSE),
                    [_helper.as_tool("helper", "Answers a request.")])
"""Asks a sub-agent (an agent as a tool), whose tokens stream under its own namespace."""


mail_each = create_agent(
    FunctionChatModel(_mail_reply, delay=PAUSE), [send_email],
    middleware=[HumanInTheLoopMiddleware(
        interrupt_on={"send_email": {"allowed_decisions": ["approve", "reject"]}},
        interrupt_mode="per_call")],
)
"""As :data:`mail`, reviewed per call: approve or reject only."""


@tool
def book_flight(to: str) -> str:
    """Book a flight, once a person says yes."""
    answer = interrupt({"question": f"Book a flight to {to}?"})
    return f"booked to {to}" if answer == "yes" else "not booked"


def _booking_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        return AIMessage(content="", tool_calls=[{
            "name": "book_flight", "args": {"to": "Paris"}, "id": f"call_book_{len(messages)}"}])
    return f"Done: {last.text}"


booking = create_agent(FunctionChatModel(_booking_reply, delay=PAUSE), [book_flight])
"""Asks a question of its own (``interrupt``) before booking."""

broken = create_agent(ScriptedChatModel([]), [])
"""Its model has no reply: every run fails with ``ScriptExhaustedError``."""


def _thinker_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    for thought in ["Let me ", "think."]:
        yield AIMessageChunk(content=[{"type": "thinking", "thinking": thought, "index": 0}])
    yield from ["It ", "is ", "four."]


thinker = create_agent(FunctionChatModel(_thinker_reply, delay=PAUSE), [])
"""Streams its reasoning (Anthropic's ``thinking`` blocks), then its answer."""
