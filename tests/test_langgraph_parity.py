"""The same programs under rxagent and under LangGraph itself, event for event.

Each program is written once, as LangChain's docs write it, against a ``lib`` that is either
rxagent or LangChain/LangGraph (only the imports differ), with a fake chat model for each that
streams the same chunks. The streams are compared after the ids that are random in both
(task namespaces, message ids) are numbered in order of appearance, and after the one key
LangChain adds that names its own packages (``lc_versions``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from langchain.agents import create_agent as lc_create_agent
from langchain.tools import tool as lc_tool
from langchain_core.language_models import BaseChatModel as LcChatModel
from langchain_core.messages import AIMessage as LcAIMessage
from langchain_core.messages import AIMessageChunk as LcAIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.config import get_stream_writer as lc_get_stream_writer

import rxagent
from rxagent.messages import AIMessageChunk
from rxagent.testing import FunctionChatModel
from rxagent.tools import tool as rx_tool

Reply = str | list[dict[str, Any]]  # text, or tool calls {"name", "args", "id"}


def chunks_of(reply: Reply) -> list[dict[str, Any]]:
    """The chunks a fake model streams for a reply: a word a chunk, or one per tool call."""
    if isinstance(reply, str):
        return [{"content": word} for word in re.findall(r"\S+\s*", reply)]
    return [{"content": "", "tool_call_chunks": [{
        "name": call["name"], "args": json.dumps(call["args"]), "id": call["id"],
        "index": index, "type": "tool_call_chunk"}]} for index, call in enumerate(reply)]


class ChatFake(LcChatModel):
    """LangChain's side: streams ``chunks_of`` each reply in turn."""

    replies: list[Any]
    model_name: str = "fake-model"

    @property
    def _llm_type(self) -> str:
        return "fake"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ChatFake:
        return self

    def _next(self) -> list[dict[str, Any]]:
        return chunks_of(self.replies.pop(0))

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        merged = None
        for chunk in self._next():
            merged = LcAIMessageChunk(**chunk) if merged is None else merged + LcAIMessageChunk(
                **chunk)
        assert merged is not None
        message = LcAIMessage(content=merged.content, tool_calls=merged.tool_calls)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for chunk in self._next():
            yield ChatGenerationChunk(message=LcAIMessageChunk(**chunk))

    async def _astream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._next():
            yield ChatGenerationChunk(message=LcAIMessageChunk(**chunk))


class RxFake(FunctionChatModel):
    """rxagent's side: the same chunks, through the function model."""

    provider = "fake"

    def __init__(self, replies: list[Reply]) -> None:
        pending = list(replies)

        def reply(messages: Any, tools: Any) -> Iterator[AIMessageChunk]:
            for chunk in chunks_of(pending.pop(0)):
                yield AIMessageChunk(**chunk)

        super().__init__(reply, model_name="fake-model")


LANGGRAPH = SimpleNamespace(
    create_agent=lc_create_agent, tool=lc_tool, get_stream_writer=lc_get_stream_writer,
    model=lambda replies: ChatFake(replies=list(replies)),
)
RXAGENT = SimpleNamespace(
    create_agent=rxagent.create_agent, tool=rx_tool, get_stream_writer=rxagent.get_stream_writer,
    model=RxFake,
)


# -- the programs, written once ------------------------------------------------------------


def research_agent(lib: Any) -> Any:
    def lookup(city: str) -> str:
        """Look the weather up."""
        lib.get_stream_writer()(f"looking up {city}")
        return f"Sunny in {city}."

    model = lib.model([[{"name": "lookup", "args": {"city": "SF"}, "id": "r1"}],
                       "It is sunny in SF today."])
    return lib.create_agent(model, tools=[lookup], name="researcher")


def docs_supervisor(lib: Any, *, is_async: bool) -> Any:
    """LangChain's multi-agent docs: a subagent wrapped in a tool of the main agent."""
    subagent = research_agent(lib)

    if is_async:
        @lib.tool("research", description="Research a topic and return findings")
        async def call_research_agent(query: str) -> str:
            result = await subagent.ainvoke({"messages": [{"role": "user", "content": query}]})
            return str(result["messages"][-1].content)
    else:
        @lib.tool("research", description="Research a topic and return findings")
        def call_research_agent(query: str) -> str:
            result = subagent.invoke({"messages": [{"role": "user", "content": query}]})
            return str(result["messages"][-1].content)

    model = lib.model([[{"name": "research", "args": {"query": "SF weather"}, "id": "c1"}],
                       "Report: sunny."])
    return lib.create_agent(model, tools=[call_research_agent], name="supervisor")


def two_levels(lib: Any, *, is_async: bool) -> Any:
    """A supervisor whose subagent has a subagent of its own, each called in a tool."""
    middle = docs_supervisor(lib, is_async=is_async)

    if is_async:
        @lib.tool("delegate", description="Hand the question to the team lead")
        async def delegate(query: str) -> str:
            last: Any = None
            async for state in middle.astream(
                    {"messages": [{"role": "user", "content": query}]}, stream_mode="values"):
                last = state
            return str(last["messages"][-1].content)
    else:
        @lib.tool("delegate", description="Hand the question to the team lead")
        def delegate(query: str) -> str:
            last: Any = None
            for state in middle.stream({"messages": [{"role": "user", "content": query}]},
                                       stream_mode="values"):
                last = state
            return str(last["messages"][-1].content)

    model = lib.model([[{"name": "delegate", "args": {"query": "SF?"}, "id": "t1"}],
                       "Top: sunny."])
    return lib.create_agent(model, tools=[delegate], name="top")


def dispatcher(lib: Any) -> Any:
    """The docs' single dispatch tool: the main agent names the subagent it wants."""
    subagents = {"research": research_agent(lib), "writer": lib.create_agent(
        lib.model(["A bright day."]), tools=[], name="writer")}

    @lib.tool("task", description="Launch a subagent for a task")
    def task(agent_name: str, description: str) -> str:
        result = subagents[agent_name].invoke(
            {"messages": [{"role": "user", "content": description}]})
        return str(result["messages"][-1].content)

    # One call a turn: parallel calls finish in no fixed order, in either library.
    model = lib.model([[{"name": "task", "args": {"agent_name": "research",
                                                  "description": "SF"}, "id": "d1"}],
                       [{"name": "task", "args": {"agent_name": "writer",
                                                  "description": "write"}, "id": "d2"}],
                       "Done."])
    return lib.create_agent(model, tools=[task], name="main")


QUESTION = {"messages": [{"role": "user", "content": "What is the weather in SF?"}]}


# -- comparing -------------------------------------------------------------------------------


_RANDOM_ID = re.compile(
    r"(?:lc_run--)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Numbering:
    """Random ids numbered in order of appearance, so two runs compare."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return _RANDOM_ID.sub(
                lambda m: self.seen.setdefault(m.group(), f"#{len(self.seen)}"), value)
        if isinstance(value, tuple):
            return tuple(self(v) for v in value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items() if k != "lc_versions"}
        return value


def message_shape(message: Any, number: Numbering) -> tuple[Any, ...]:
    kind = type(message).__name__
    return (
        kind, message.content, message.name,
        # A ToolMessage's id is left out: LangGraph 1.2 gives one where the docs' printed
        # output (which rxagent keeps) shows none.
        number(message.id) if kind.startswith("AI") else None,
        # A chunk's fragments as sent; LangChain also parses each fragment on its own into
        # the chunk's tool_calls, which rxagent leaves to the assembled message.
        [(c["name"], c["args"], c["id"], c["index"]) for c in message.tool_call_chunks]
        if kind == "AIMessageChunk"
        else [(c["name"], c["args"], c["id"]) for c in getattr(message, "tool_calls", [])],
        getattr(message, "tool_call_id", None), getattr(message, "chunk_position", None),
    )


def normalise(events: list[Any], modes: list[str], subgraphs: bool) -> list[Any]:
    number = Numbering()
    out = []
    for event in events:
        ns, mode, payload = event if subgraphs else ((), *event)
        if mode == "messages":
            message, metadata = payload
            data: Any = (message_shape(message, number), number(dict(metadata)),
                         [key for key in metadata if key != "lc_versions"])  # in order
        elif mode == "updates":
            data = {node: [message_shape(m, number) for m in update["messages"]]
                    for node, update in payload.items()}
        else:
            data = payload
        out.append((number(ns), mode, data))
    return out


def run_sync(agent: Any, modes: list[str], subgraphs: bool) -> list[Any]:
    return normalise(list(agent.stream(QUESTION, stream_mode=modes, subgraphs=subgraphs)),
                     modes, subgraphs)


def run_async(agent: Any, modes: list[str], subgraphs: bool) -> list[Any]:
    async def collect() -> list[Any]:
        return [e async for e in agent.astream(QUESTION, stream_mode=modes,
                                               subgraphs=subgraphs)]

    return normalise(asyncio.run(collect()), modes, subgraphs)


PROGRAMS: dict[str, tuple[Callable[[Any], Any], bool]] = {  # name -> (build, iterate async)
    "docs, sync tool": (lambda lib: docs_supervisor(lib, is_async=False), False),
    "docs, async tool": (lambda lib: docs_supervisor(lib, is_async=True), True),
    "two levels, sync tools": (lambda lib: two_levels(lib, is_async=False), False),
    "two levels, async tools": (lambda lib: two_levels(lib, is_async=True), True),
    "dispatch tool": (dispatcher, False),
}


@pytest.mark.parametrize("subgraphs", [False, True])
@pytest.mark.parametrize("modes", [["updates", "messages"], ["updates", "messages", "custom"]])
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_the_same_events_in_the_same_order_as_langgraph(
    program: str, modes: list[str], subgraphs: bool
) -> None:
    build, is_async = PROGRAMS[program]
    run = run_async if is_async else run_sync
    ours = run(build(RXAGENT), modes, subgraphs)
    theirs = run(build(LANGGRAPH), modes, subgraphs)
    assert len({event[0] for event in ours}) > (1 if subgraphs else 0)
    assert ours == theirs
