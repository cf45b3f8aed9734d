"""rxagent's side: ``create_agent(FunctionChatModel(...), tools).stream()/astream()``.

The fake model is rxagent's own :class:`~rxagent.testing.FunctionChatModel` over an async
generator that yields one string (one chunk) per token without suspending, as an in-memory
model does; the concurrency workload's model suspends once per token, as a socket read would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
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

import rxagent
from rxagent import create_agent, get_stream_writer
from rxagent.messages import AIMessageChunk, ToolMessage
from rxagent.testing import FunctionChatModel

NAME = "rxagent"
VERSION = rxagent.__version__
INPUT = {"messages": [QUESTION]}
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


def _text_agent(tokens: list[str], *, suspend: bool = False) -> rxagent.Agent:
    async def reply(messages: Any, tools: Any) -> AsyncIterator[str]:
        for token in tokens:
            if suspend:
                await asyncio.sleep(0)
            yield token

    return create_agent(FunctionChatModel(reply))


def _middleware_agent(tokens: list[str]) -> rxagent.Agent:
    """The text agent with a hook of every kind that is a step, and a tool-call wrapper: none
    wraps the model call, so its tokens take the same path."""
    from rxagent.middleware import (
        after_agent,
        after_model,
        before_agent,
        before_model,
        wrap_tool_call,
    )

    def nothing(state: Any, runtime: Any) -> None:
        return None

    def passing(request: Any, handler: Any) -> Any:
        return handler(request)

    plain = _text_agent(tokens)
    hooks = [before_agent(nothing, name="first"), before_model(nothing, name="before"),
             after_model(nothing, name="after"), after_agent(nothing, name="last"),
             wrap_tool_call(passing, name="wrap")]
    return create_agent(plain.model, middleware=hooks)


def messages_sync_middleware(tokens: list[str]) -> Runner:
    """:func:`messages_sync` through an agent with middleware that does not wrap the model."""
    return messages_sync(tokens, agent=_middleware_agent(tokens))


def _count_text(chunk: Any, counts: list[int]) -> None:
    text = chunk.content
    if text:
        counts[0] += 1
        counts[1] += len(text)


# -- messages ----------------------------------------------------------------------------------


def messages_sync(tokens: list[str], *, agent: rxagent.Agent | None = None) -> Runner:
    agent = agent or _text_agent(tokens)

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


def _tool_round_agent(rounds: int) -> rxagent.Agent:
    async def reply(messages: Any, tools: Any) -> AsyncIterator[Any]:
        last = messages[-1]
        done = int(str(last.content)) + 1 if isinstance(last, ToolMessage) else 0
        if done < rounds:
            yield AIMessageChunk(content="", tool_call_chunks=[{
                "name": TOOL_NAME, "args": json.dumps({"i": done}), "id": f"call_{done}",
                "index": 0, "type": "tool_call_chunk",
            }])
        else:
            yield FINAL_ANSWER

    return create_agent(FunctionChatModel(reply), [ping])


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
            else:
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
            else:
                final = update["model"]["messages"][-1]
        _check_rounds(stamps, final, rounds)
        return round_metrics(stamps, start, rounds)

    return lambda: asyncio.run(main())


# -- custom: a tool calling its writer ---------------------------------------------------------


def _writer_agent(events: int, *, is_async: bool) -> rxagent.Agent:
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

    async def reply(messages: Any, tools: Any) -> AsyncIterator[Any]:
        if isinstance(messages[-1], ToolMessage):
            yield FINAL_ANSWER
        else:
            yield AIMessageChunk(content="", tool_call_chunks=[{
                "name": "progress", "args": "{}", "id": "call_0", "index": 0,
                "type": "tool_call_chunk",
            }])

    tool = aprogress if is_async else progress
    tool.__name__ = "progress"
    return create_agent(FunctionChatModel(reply), [tool])


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
        with agent.stream(INPUT, stream_mode="messages") as stream:
            for chunk, _metadata in stream:
                if chunk.content:
                    first = time.perf_counter() - start
                    break
        if first is None:
            raise AssertionError(f"{NAME}: no text token arrived")
        return {"seconds": first}

    return run


def ttft_async(tokens: list[str]) -> Runner:
    agent = _text_agent(tokens)

    async def main() -> Metrics:
        first = None
        start = time.perf_counter()
        async with agent.astream(INPUT, stream_mode="messages") as stream:
            async for chunk, _metadata in stream:
                if chunk.content:
                    first = time.perf_counter() - start
                    break
        if first is None:
            raise AssertionError(f"{NAME}: no text token arrived")
        return {"seconds": first}

    return lambda: asyncio.run(main())


# -- concurrency -------------------------------------------------------------------------------


def concurrent_run(tokens: list[str]) -> Any:
    """One run of the concurrency workload: a coroutine function that returns the characters of
    text it delivered (the model suspends once per token, as a socket read would)."""
    agent = _text_agent(tokens, suspend=True)

    async def one() -> int:
        counts = [0, 0]
        async for chunk, _metadata in agent.astream(INPUT, stream_mode="messages"):
            _count_text(chunk, counts)
        check_text(NAME, counts[0], counts[1], tokens)
        return counts[1]

    return one
