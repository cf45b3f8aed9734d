"""The floors: what moving the same tokens costs with no framework at all.

- a bare generator, iterated with ``for`` (the floor for ``stream()``);
- an async generator that never suspends, iterated with ``async for`` (the floor for
  ``astream()`` when the model has tokens ready, as the in-memory fake models do);
- an async generator that yields to the event loop once per token (``await asyncio.sleep(0)``):
  the floor when every token costs an event-loop round trip, and the model of the concurrency
  workload.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from _common import Metrics, Runner, check_text

GENERATOR = "floor: generator"
ASYNC_GENERATOR = "floor: async generator"
ASYNC_GENERATOR_SUSPENDING = "floor: async generator, sleep(0) per token"


def _generate(tokens: list[str]) -> Iterator[str]:
    yield from tokens


async def _agenerate(tokens: list[str], suspend: bool) -> AsyncIterator[str]:
    for token in tokens:
        if suspend:
            await asyncio.sleep(0)
        yield token


def messages_sync(tokens: list[str]) -> Runner:
    def run() -> Metrics:
        delivered = chars = 0
        start = time.perf_counter()
        for text in _generate(tokens):
            if text:
                delivered += 1
                chars += len(text)
        elapsed = time.perf_counter() - start
        check_text(GENERATOR, delivered, chars, tokens)
        return {"seconds": elapsed}

    return run


def messages_async(tokens: list[str], *, suspend: bool = False) -> Runner:
    async def main() -> Metrics:
        delivered = chars = 0
        start = time.perf_counter()
        async for text in _agenerate(tokens, suspend):
            if text:
                delivered += 1
                chars += len(text)
        elapsed = time.perf_counter() - start
        check_text(ASYNC_GENERATOR, delivered, chars, tokens)
        return {"seconds": elapsed}

    return lambda: asyncio.run(main())


def concurrent_run(tokens: list[str]) -> Any:
    """One run of the concurrency workload: an async generator, suspending once per token."""

    async def one() -> int:
        delivered = chars = 0
        async for text in _agenerate(tokens, True):
            if text:
                delivered += 1
                chars += len(text)
        check_text(ASYNC_GENERATOR_SUSPENDING, delivered, chars, tokens)
        return chars

    return one
