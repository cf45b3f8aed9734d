"""rxagent's side of ``bench/threads.py``: ``create_agent(model, [lookup], checkpointer=...)``.

The fake model is :class:`~rxagent.testing.FunctionChatModel` over a generator: a tool call as
one chunk, then the answer one token per chunk (with ``whole=True``, the answer as one chunk).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from _threads_script import (
    STEPS_PER_TURN,
    TOOL,
    Memory,
    answer_tokens,
    check_messages,
    question,
    tool_result,
)

import rxagent
from rxagent import create_agent
from rxagent.messages import AIMessageChunk, ToolMessage
from rxagent.testing import FunctionChatModel

NAME = "rxagent"
VERSION = f"rxagent {rxagent.__version__}"


def lookup(n: int) -> str:
    """Look an item up."""
    return tool_result(n)


def open_saver(kind: str, where: dict[str, Any]) -> tuple[Any, Callable[[], None]]:
    """A fresh saver of ``kind`` and how to close it; ImportError when it is not there."""
    if kind == "memory":
        from rxagent.checkpoint import InMemorySaver

        return InMemorySaver(), lambda: None
    if kind == "sqlite":
        from rxagent.checkpoint.sqlite import SqliteSaver

        saver = SqliteSaver(where["path"])
        return saver, saver.close
    if kind == "redis":
        from rxagent.checkpoint.redis import RedisSaver

        saver = RedisSaver(where["redis_url"], prefix=where["prefix"])
        return saver, saver.close
    raise ValueError(kind)


def _agent(saver: Any, memory: Memory, tokens: list[str]) -> rxagent.Agent:
    """The answer comes as ``tokens``, one chunk each."""
    def reply(messages: Any, tools: Any) -> Iterator[Any]:
        memory.saw([m.content for m in messages])
        last = messages[-1]
        if isinstance(last, ToolMessage):
            yield from tokens
            return
        turn = (len(messages) - 1) // 4
        yield AIMessageChunk(content="", tool_call_chunks=[{
            "name": TOOL, "args": json.dumps({"n": turn}), "id": f"call_{turn}", "index": 0,
            "type": "tool_call_chunk",
        }])

    return create_agent(FunctionChatModel(reply), [lookup], checkpointer=saver)


def conversation(
    kind: str, where: dict[str, Any], *, turns: int, tokens: int, api: str, durability: str,
    whole: bool = False,
) -> list[float]:
    """One conversation of ``turns`` turns on a fresh saver: the seconds each turn took."""
    saver, close = open_saver(kind, where)
    try:
        answer = answer_tokens(tokens)
        memory = Memory(answer_chars=len("".join(answer)))
        agent = _agent(saver, memory, ["".join(answer)] if whole else answer)
        config = {"configurable": {"thread_id": "bench"}}
        durations = []
        for turn in range(turns):
            message = {"messages": [{"role": "user", "content": question(turn)}]}
            start = time.perf_counter()
            if api == "invoke":
                count = len(agent.invoke(message, config, durability=durability)["messages"])
            else:
                count = sum(1 for _ in agent.stream(
                    message, config, stream_mode="updates", durability=durability))
            durations.append(time.perf_counter() - start)
            if api == "invoke":
                check_messages(NAME, count, turn + 1)
            elif count != STEPS_PER_TURN:
                raise AssertionError(f"{NAME}: {count} updates in turn {turn}; expected 3")
        check_messages(NAME, len(agent.get_state(config).values["messages"]), turns)
        memory.check(NAME, turns)
        return durations
    finally:
        close()
