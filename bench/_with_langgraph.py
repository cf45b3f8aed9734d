"""LangGraph's side: ``langchain.agents.create_agent(model, tools).stream()/astream()``.

The fake model is a LangChain ``BaseChatModel`` of our own, because none of
``langchain_core.language_models.fake_chat_models`` fits: ``GenericFakeChatModel`` splits on
whitespace, has no ``_astream`` (so async streaming would hop to a thread per chunk) and no
``bind_tools``. Ours yields one ``ChatGenerationChunk`` per token from ``_stream`` (a generator)
and ``_astream`` (an async generator that does not suspend, as an in-memory model does); the
concurrency workload's model suspends once per token, as a socket read would. ``_generate``
serves calls that do not stream (LangChain streams a call only when a ``messages`` consumer is
attached). Tool calls come as one chunk holding the whole call, as in rxagent's fake.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from importlib.metadata import version
from typing import Any

from _common import (
    FINAL_ANSWER,
    QUESTION,
    TOOL_NAME,
    Metrics,
    Runner,
    check_events,
    check_text,
    round_metrics,
)
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.config import get_stream_writer

NAME = "langgraph"
VERSION = f"langgraph {version('langgraph')}, langchain {version('langchain')}"
INPUT = {"messages": [{"role": "user", "content": QUESTION}]}
API = {
    "messages-sync": "stream(stream_mode='messages')",
    "messages-async": "astream(stream_mode='messages')",
    "updates-sync": "stream(stream_mode='updates')",
    "updates-async": "astream(stream_mode='updates')",
    "custom-sync": "stream(stream_mode='custom'), sync tool",
    "custom-async": "astream(stream_mode='custom'), async tool",
    "ttft-sync": "stream(stream_mode='messages')",
    "ttft-async": "astream(stream_mode='messages')",
    "concurrency": "astream(stream_mode='messages') x N, asyncio.gather",
}

Reply = Callable[[list[BaseMessage]], Iterator[AIMessageChunk]]


class BenchChatModel(BaseChatModel):
    """A fake chat model: ``reply(messages)`` gives the chunks of one call."""

    reply: Any  # Reply; pydantic cannot build a schema for the Callable alias
    suspend: bool = False

    @property
    def _llm_type(self) -> str:
        return "bench-fake"

    def bind_tools(self, tools: Any, **kwargs: Any) -> BenchChatModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: AIMessageChunk | None = None
        for chunk in self.reply(messages):
            merged = chunk if merged is None else merged + chunk
        assert merged is not None
        message = AIMessage(content=merged.content, tool_calls=merged.tool_calls)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # BaseChatModel.stream() reports each chunk to the callbacks (on_llm_new_token) itself.
        for chunk in self.reply(messages):
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        suspend = self.suspend
        for chunk in self.reply(messages):
            if suspend:
                await asyncio.sleep(0)
            yield ChatGenerationChunk(message=chunk)


def _text_agent(tokens: list[str], *, suspend: bool = False) -> Any:
    def reply(messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        for token in tokens:
            yield AIMessageChunk(content=token)

    return create_agent(BenchChatModel(reply=reply, suspend=suspend))


def _tool_call(name: str, args: dict[str, Any], call_id: str) -> AIMessageChunk:
    return AIMessageChunk(content="", tool_call_chunks=[
        {"name": name, "args": json.dumps(args), "id": call_id, "index": 0,
         "type": "tool_call_chunk"},
    ])


# -- messages ----------------------------------------------------------------------------------


def messages_sync(tokens: list[str]) -> Runner:
    agent = _text_agent(tokens)

    def run() -> Metrics:
        delivered = chars = 0
        start = time.perf_counter()
        for chunk, _metadata in agent.stream(INPUT, stream_mode="messages"):
            text = chunk.content
            if text:
                delivered += 1
                chars += len(text)
        elapsed = time.perf_counter() - start
        check_text(NAME, delivered, chars, tokens)
        return {"seconds": elapsed}

    return run


def messages_async(tokens: list[str]) -> Runner:
    agent = _text_agent(tokens)

    async def main() -> Metrics:
        delivered = chars = 0
        start = time.perf_counter()
        async for chunk, _metadata in agent.astream(INPUT, stream_mode="messages"):
            text = chunk.content
            if text:
                delivered += 1
                chars += len(text)
        elapsed = time.perf_counter() - start
        check_text(NAME, delivered, chars, tokens)
        return {"seconds": elapsed}

    return lambda: asyncio.run(main())


# -- updates: sequential tool rounds -----------------------------------------------------------


def ping(i: int) -> str:
    """Answer with the round number."""
    return str(i)


def _tool_round_agent(rounds: int) -> Any:
    def reply(messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        last = messages[-1]
        done = int(str(last.content)) + 1 if isinstance(last, ToolMessage) else 0
        if done < rounds:
            yield _tool_call(TOOL_NAME, {"i": done}, f"call_{done}")
        else:
            yield AIMessageChunk(content=FINAL_ANSWER)

    return create_agent(BenchChatModel(reply=reply), [ping])


def _check_rounds(stamps: list[float], final: Any, rounds: int) -> None:
    check_events(f"{NAME} tool rounds", len(stamps), rounds)
    if final is None or final.content != FINAL_ANSWER:
        raise AssertionError(f"{NAME}: the run did not end with the final answer: {final!r}")


def updates_sync(rounds: int) -> Runner:
    agent = _tool_round_agent(rounds)
    config = {"recursion_limit": 2 * rounds + 5}

    def run() -> Metrics:
        stamps: list[float] = []
        final = None
        start = time.perf_counter()
        for update in agent.stream(INPUT, config, stream_mode="updates"):
            if "tools" in update:
                stamps.append(time.perf_counter())
            elif "model" in update:
                final = update["model"]["messages"][-1]
        _check_rounds(stamps, final, rounds)
        return round_metrics(stamps, start, rounds)

    return run


def updates_async(rounds: int) -> Runner:
    agent = _tool_round_agent(rounds)
    config = {"recursion_limit": 2 * rounds + 5}

    async def main() -> Metrics:
        stamps: list[float] = []
        final = None
        start = time.perf_counter()
        async for update in agent.astream(INPUT, config, stream_mode="updates"):
            if "tools" in update:
                stamps.append(time.perf_counter())
            elif "model" in update:
                final = update["model"]["messages"][-1]
        _check_rounds(stamps, final, rounds)
        return round_metrics(stamps, start, rounds)

    return lambda: asyncio.run(main())


# -- custom: a tool calling its writer ---------------------------------------------------------


def _writer_agent(events: int, *, is_async: bool) -> Any:
    def progress() -> str:
        """Report progress."""
        writer = get_stream_writer()
        for i in range(events):
            writer(i)
        return FINAL_ANSWER

    async def aprogress() -> str:
        """Report progress."""
        writer = get_stream_writer()
        for i in range(events):
            writer(i)
        return FINAL_ANSWER

    def reply(messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        if isinstance(messages[-1], ToolMessage):
            yield AIMessageChunk(content=FINAL_ANSWER)
        else:
            yield _tool_call("progress", {}, "call_0")

    tool = aprogress if is_async else progress
    tool.__name__ = "progress"
    return create_agent(BenchChatModel(reply=reply), [tool])


def _check_custom(seen: int, out_of_order: int, events: int) -> None:
    check_events(f"{NAME} custom", seen, events)
    if out_of_order:
        raise AssertionError(f"{NAME}: {out_of_order} custom events out of order")


def custom_sync(events: int) -> Runner:
    agent = _writer_agent(events, is_async=False)

    def run() -> Metrics:
        seen = out_of_order = 0
        start = time.perf_counter()
        for data in agent.stream(INPUT, stream_mode="custom"):
            if data != seen:
                out_of_order += 1
            seen += 1
        elapsed = time.perf_counter() - start
        _check_custom(seen, out_of_order, events)
        return {"seconds": elapsed}

    return run


def custom_async(events: int) -> Runner:
    agent = _writer_agent(events, is_async=True)

    async def main() -> Metrics:
        seen = out_of_order = 0
        start = time.perf_counter()
        async for data in agent.astream(INPUT, stream_mode="custom"):
            if data != seen:
                out_of_order += 1
            seen += 1
        elapsed = time.perf_counter() - start
        _check_custom(seen, out_of_order, events)
        return {"seconds": elapsed}

    return lambda: asyncio.run(main())


# -- time to first token -----------------------------------------------------------------------


def ttft_sync(tokens: list[str]) -> Runner:
    agent = _text_agent(tokens)

    def run() -> Metrics:
        first = None
        start = time.perf_counter()
        stream = agent.stream(INPUT, stream_mode="messages")
        try:
            for chunk, _metadata in stream:
                if chunk.content:
                    first = time.perf_counter() - start
                    break
        finally:
            stream.close()
        if first is None:
            raise AssertionError(f"{NAME}: no text token arrived")
        return {"seconds": first}

    return run


def ttft_async(tokens: list[str]) -> Runner:
    agent = _text_agent(tokens)

    async def main() -> Metrics:
        first = None
        start = time.perf_counter()
        stream = agent.astream(INPUT, stream_mode="messages")
        try:
            async for chunk, _metadata in stream:
                if chunk.content:
                    first = time.perf_counter() - start
                    break
        finally:
            await stream.aclose()
        if first is None:
            raise AssertionError(f"{NAME}: no text token arrived")
        return {"seconds": first}

    return lambda: asyncio.run(main())


# -- concurrency -------------------------------------------------------------------------------


def concurrent_run(tokens: list[str]) -> Any:
    """One run of the concurrency workload; see ``_with_rxagent.concurrent_run``."""
    agent = _text_agent(tokens, suspend=True)

    async def one() -> int:
        delivered = chars = 0
        async for chunk, _metadata in agent.astream(INPUT, stream_mode="messages"):
            text = chunk.content
            if text:
                delivered += 1
                chars += len(text)
        check_text(NAME, delivered, chars, tokens)
        return chars

    return one
