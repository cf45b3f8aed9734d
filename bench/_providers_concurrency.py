"""The concurrency rows of ``bench/providers.py``: N agent runs at once over HTTP, one process.

``python bench/_providers_concurrency.py LIBRARY RUNS TOKENS PORT`` starts ``RUNS`` agent runs
at once (``asyncio.gather``) against the loopback server on ``PORT``, each streaming a text
reply of ``TOKENS`` tokens in OpenAI's wire format, checks that every run got its whole text,
and prints one JSON line: the wall time and the growth of the peak resident size.

Memory is measured as resident size (Linux's ``VmHWM``, the peak reset just before the runs
start), not with ``tracemalloc``: resident size counts what the process really needed, the
allocations of C and Rust extensions included (pydantic-core, jiter, the SSL and compression
libraries), which ``tracemalloc`` does not see; and ``tracemalloc`` slows every allocation
several times over, which would distort the wall time measured in the same run. Its weakness,
memory the allocator kept from earlier work, is why each library's row runs in a fresh
process (the parent starts one per row), after one warm-up run, so that imports and the
first client are paid before the peak is reset.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import _providers_wire as wire
from _common import peak_rss, reset_peak_rss
from _providers_rows import API_KEY, QUESTION
from _providers_server import raise_open_files_limit

LIBRARIES = ("rxagent", "langchain", "pydantic-ai")
APIS = {
    "rxagent": "create_agent(ChatOpenAI).astream(messages)",
    "langchain": "create_agent(ChatOpenAI).astream(messages)",
    "pydantic-ai": "Agent.run_stream + stream_text(delta)",
}

Run = Callable[[], Awaitable[str]]


def _rxagent(url: str) -> Run:
    import rxagent
    from rxagent.chat_models import ChatOpenAI

    agent = rxagent.create_agent(ChatOpenAI(wire.OPENAI_MODEL, base_url=url, api_key=API_KEY,
                                            max_retries=0))

    async def run() -> str:
        pieces = []
        async for chunk, _metadata in agent.astream({"messages": [QUESTION]},
                                                    stream_mode="messages"):
            if chunk.content:
                pieces.append(chunk.content)
        return "".join(pieces)

    return run


def _langchain(url: str) -> Run:
    from langchain.agents import create_agent
    from langchain_openai import ChatOpenAI

    agent: Any = create_agent(ChatOpenAI(model=wire.OPENAI_MODEL, base_url=url, api_key=API_KEY,
                                         max_retries=0))

    async def run() -> str:
        pieces = []
        async for chunk, _metadata in agent.astream({"messages": [("user", QUESTION)]},
                                                    stream_mode="messages"):
            if chunk.text:
                pieces.append(chunk.text)
        return "".join(pieces)

    return run


def _pydantic_ai(url: str) -> Run:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    agent = Agent(OpenAIChatModel(wire.OPENAI_MODEL,
                                  provider=OpenAIProvider(base_url=url, api_key=API_KEY)))

    async def run() -> str:
        pieces = []
        async with agent.run_stream(QUESTION) as result:
            async for text in result.stream_text(delta=True, debounce_by=None):
                pieces.append(text)
        return "".join(pieces)

    return run


_MAKERS = {"rxagent": _rxagent, "langchain": _langchain, "pydantic-ai": _pydantic_ai}


async def measure(library: str, runs: int, tokens: int, port: int) -> dict[str, Any]:
    run = _MAKERS[library](wire.base_url(port, wire.OPENAI, wire.TEXT, tokens))
    expected = wire.expected(wire.TEXT, tokens).text
    if await run() != expected:  # the warm-up run: imports, first client, first connection
        raise AssertionError(f"{library}: the warm-up run did not deliver its text")
    gc.collect()
    base = reset_peak_rss()
    start = time.perf_counter()
    texts = await asyncio.gather(*(run() for _ in range(runs)))
    wall = time.perf_counter() - start
    growth = peak_rss() - base
    short = sum(text != expected for text in texts)
    if short:
        raise AssertionError(f"{library}: {short} of {runs} runs did not deliver their text")
    return {"library": library, "api": APIS[library], "runs": runs, "tokens": tokens,
            "wall_s": wall, "peak_rss_growth_mib": growth / 1024,
            "kib_per_run": growth / runs}


if __name__ == "__main__":
    raise_open_files_limit()
    name, count, size, server_port = sys.argv[1], *map(int, sys.argv[2:5])
    print(json.dumps(asyncio.run(measure(name, count, size, server_port))))
