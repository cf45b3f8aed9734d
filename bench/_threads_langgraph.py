"""LangGraph's side of ``bench/threads.py``: LangChain's ``create_agent(model, [lookup],
checkpointer=...)`` on LangGraph's own savers.

The fake model is made with ``streaming=True`` (as one makes ``ChatOpenAI(streaming=True)``), so
LangChain streams every call through ``_stream``, one chunk per token, and merges the chunks into
the message, as rxagent does with its model's chunks. With ``whole=True`` (``--whole-answers``)
it is not: ``invoke`` and ``stream_mode="updates"`` call ``_generate``, which returns the whole
answer at once, as a request without streaming would (rxagent's model then yields the answer as
one chunk).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
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
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

NAME = "langgraph"
VERSION = f"langgraph {version('langgraph')}, langchain {version('langchain')}"


def lookup(n: int) -> str:
    """Look an item up."""
    return tool_result(n)


def open_saver(kind: str, where: dict[str, Any]) -> tuple[Any, Callable[[], None]]:
    """A fresh saver of ``kind`` and how to close it; ImportError when it is not there."""
    if kind == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver(), lambda: None
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(where["path"], check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()  # its tables, made before the first turn as rxagent's saver makes its own
        # Both in WAL mode; rxagent's saver commits with synchronous=NORMAL (no fsync per
        # commit), LangGraph's with SQLite's default FULL (an fsync per commit, whose cost
        # swings with the disk's other traffic). The same setting on both compares the savers.
        conn.execute("PRAGMA synchronous=NORMAL")
        return saver, conn.close
    raise ImportError(f"LangGraph has no {kind} saver in this benchmark")


class ThreadChatModel(BaseChatModel):
    """Calls a tool when the last message is the user's, then answers in ``tokens``."""

    tokens: list[str]
    memory: Any  # Memory
    streaming: bool = False

    @property
    def _llm_type(self) -> str:
        return "bench-fake"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ThreadChatModel:
        return self

    def _reply(self, messages: list[BaseMessage]) -> AIMessageChunk | None:
        """The tool call, or None for the answer."""
        self.memory.saw([m.content for m in messages])
        if isinstance(messages[-1], ToolMessage):
            return None
        turn = (len(messages) - 1) // 4
        return AIMessageChunk(content="", tool_call_chunks=[{
            "name": TOOL, "args": json.dumps({"n": turn}), "id": f"call_{turn}", "index": 0,
            "type": "tool_call_chunk",
        }])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._reply(messages)
        if call is None:
            message = AIMessage(content="".join(self.tokens))
        else:
            message = AIMessage(content="", tool_calls=call.tool_calls)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._reply(messages)
        if call is not None:
            yield ChatGenerationChunk(message=call)
            return
        for token in self.tokens if self.streaming else ["".join(self.tokens)]:
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))


def conversation(
    kind: str, where: dict[str, Any], *, turns: int, tokens: int, api: str, durability: str,
    whole: bool = False,
) -> list[float]:
    """One conversation of ``turns`` turns on a fresh saver: the seconds each turn took."""
    saver, close = open_saver(kind, where)
    try:
        answer = answer_tokens(tokens)
        memory = Memory(answer_chars=len("".join(answer)))
        # streaming is set only when it is True: LangChain reads it only when it was given.
        model = (ThreadChatModel(tokens=answer, memory=memory) if whole else
                 ThreadChatModel(tokens=answer, memory=memory, streaming=True))
        agent = create_agent(model, [lookup], checkpointer=saver)
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
