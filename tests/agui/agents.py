"""Agents whose runs exercise every AG-UI event the mapping makes: state kept and changed by a
tool, reasoning before text, a failure part-way through a reply."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import rxagent
from rxagent import Agent, create_agent
from rxagent.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from rxagent.testing import FunctionChatModel
from rxagent.tools import InjectedToolCallId, tool
from rxagent.types import Command


class Profile(rxagent.AgentState):
    user_name: str
    preferences: dict[str, Any]


@tool
def remember(name: str, theme: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
    """Remember the user's name and theme."""
    return Command(update={
        "user_name": name,
        "preferences": {"theme": theme, "tags": [name.lower()]},
        "messages": [ToolMessage(content=f"noted {name}", tool_call_id=tool_call_id)],
    })


def _profile_reply(messages: Sequence[BaseMessage], tools: Any) -> Any:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        return AIMessage(content="", tool_calls=[{
            "name": "remember", "args": {"name": last.text, "theme": "dark"},
            "id": f"call_{len(messages)}"}])
    return f"Hello {messages[-2].tool_calls[0]['args']['name']}"  # type: ignore[attr-defined]


def profile_agent() -> Agent:
    """Calls ``remember`` with the user's message as the name, then greets them."""
    return create_agent(FunctionChatModel(_profile_reply), [remember], state_schema=Profile)


def _thinking(messages: Sequence[BaseMessage], tools: Any) -> Iterator[AIMessageChunk]:
    for piece in ("Let me", " think."):
        yield AIMessageChunk(content=[{"type": "reasoning", "reasoning": piece}])
    for piece in ("It is", " 42."):
        yield AIMessageChunk(content=[{"type": "text", "text": piece}])


def reasoning_agent() -> Agent:
    """Reasons in two pieces, then answers in two."""
    return create_agent(FunctionChatModel(_thinking), [])


class Upstream(rxagent.RunError):
    """What the failing model raises: one of rxagent's errors, whose text may be shown."""


def _failing(messages: Sequence[BaseMessage], tools: Any) -> Iterator[str]:
    yield "Half"
    yield " an answer"
    raise Upstream("the provider hung up")


def failing_agent() -> Agent:
    """Streams two tokens, then fails."""
    return create_agent(FunctionChatModel(_failing), [])


_researcher = create_agent(FunctionChatModel(
    lambda messages, tools: f"Found: {messages[-1].text}"), [], name="researcher")


@tool
def research(topic: str) -> str:
    """Research a topic with a sub-agent (LangChain's pattern: an agent invoked in a tool)."""
    result = _researcher.invoke({"messages": [("user", topic)]})
    return str(result["messages"][-1].text)


def _delegate(messages: Sequence[BaseMessage], tools: Any) -> Any:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        return AIMessage(content="", tool_calls=[
            {"name": "research", "args": {"topic": last.text}, "id": "call_r"}])
    return f"Summary: {last.text}"


def delegating_agent() -> Agent:
    """Calls a tool that runs a sub-agent, whose run joins this one under the task's
    namespace."""
    return create_agent(FunctionChatModel(_delegate), [research])
