"""LangGraph's side of ``bench/serve.py``: the agents ``langgraph dev`` serves, LangChain's
``create_agent`` with the fake streaming chat model of ``_with_langgraph`` (one chunk per token,
the same tokens as rxagent's side)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # langgraph dev loads this file by path

from _common import make_tokens
from _with_langgraph import BenchChatModel
from langchain.agents import create_agent
from langchain_core.messages import AIMessageChunk, BaseMessage


def _agent(name: str) -> Any:
    tokens = make_tokens(int(os.environ[f"SERVE_BENCH_{name.upper()}"]))

    def reply(messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        for token in tokens:
            yield AIMessageChunk(content=token)

    return create_agent(BenchChatModel(reply=reply))


long = _agent("long")
short = _agent("short")
held = _agent("held")
