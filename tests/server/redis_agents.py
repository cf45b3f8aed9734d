"""The agents two ``rxagent serve --redis-url`` processes serve in the Redis tests (each process
imports this module and builds its own copies)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from rxagent import create_agent
from rxagent.testing import FunctionChatModel

from .agents import echo_agent


async def _paced_reply(messages: Any, tools: Any) -> AsyncIterator[str]:
    # "40" asks for 40 tokens; "40 /some/file" also waits, after the first token, until that
    # file exists: a gate a test opens from its own process, to join or cancel the run from
    # the other server while it is surely running.
    count, _, gate = messages[-1].text.partition(" ")
    for i in range(int(count)):
        if i == 1 and gate:
            while not Path(gate).exists():
                await anyio.sleep(0.01)
        yield f"p{i} "
        await anyio.sleep(0.001)


echo = echo_agent()
"""Answers with every user message of its thread so far."""

paced = create_agent(FunctionChatModel(_paced_reply), [])
"""Streams as many tokens as its user message says, maybe held after the first by a gate."""
