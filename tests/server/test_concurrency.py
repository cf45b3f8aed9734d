"""Many clients at once: each gets its own run's every token, exactly once, in order."""

from __future__ import annotations

import asyncio

import pytest
from langgraph_sdk import get_client

CLIENTS = 200
EXPECTED = [f"t{i}" if i == 0 else f" t{i}" for i in range(40)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the SDK's async client is asyncio only


@pytest.mark.anyio
async def test_200_concurrent_streaming_clients_each_get_every_token_once(url: str) -> None:
    started = asyncio.Event()
    waiting = 0

    async def one(index: int) -> tuple[str, list[str]]:
        nonlocal waiting
        async with get_client(url=url, timeout=60) as client:
            # Every client opens its stream only once all are ready, so they overlap.
            waiting += 1
            if waiting == CLIENTS:
                started.set()
            await started.wait()
            run_id = ""
            tokens: list[str] = []
            async for part in client.runs.stream(
                None, "tokens", input={"messages": [f"client {index}"]},
                stream_mode="messages-tuple",
            ):
                if part.event == "metadata":
                    run_id = part.data["run_id"]
                elif part.event == "messages":
                    message, metadata = part.data
                    assert metadata["run_id"] == run_id  # its own run's tokens only
                    if message["content"]:
                        tokens.append(message["content"])
            return run_id, tokens

    results = await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    assert len({run_id for run_id, _ in results}) == CLIENTS
    for _, tokens in results:
        assert tokens == EXPECTED
