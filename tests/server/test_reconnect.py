"""Through a proxy that cuts every connection mid-stream, the SDK's own reconnects (to the
stream's ``Location`` with ``Last-Event-ID``) end with every event exactly once, in order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langgraph_sdk import get_client

from rxagent.checkpoint import InMemorySaver
from rxagent.server._sse import jsonable

from .agents import token_agent
from .proxy import CuttingProxy
from .test_streams import normalized, without_run_ids

SAY = {"messages": [{"role": "user", "content": "count"}]}
MODES = ["values", "updates", "messages-tuple"]

def local_events() -> list[tuple[str, Any]]:
    """The same agent's stream, run locally, named as the server names its events."""
    agent = token_agent(40).with_checkpointer(InMemorySaver())
    events = [
        (part["type"], without_run_ids(part["type"], jsonable(part["data"])))
        for part in agent.stream(SAY, {"configurable": {"thread_id": "local"}},
                                 stream_mode=["values", "updates", "messages"], version="v2")
    ]
    return json.loads(json.dumps(events))  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the SDK's async client is asyncio only


@pytest.mark.anyio
async def test_the_sdk_reconnects_through_cuts_and_gets_every_event_once(
    server: Any, url: str
) -> None:
    expected = local_events()
    # About 37 KB of frames in all (a token's frame is ~830 bytes): a cut every 12,000 bytes
    # lands mid-frame on the first connection and on reconnects, and each connection still
    # moves the stream on (the SDK waits about a second before each reconnect).
    proxy = CuttingProxy(server.port, 12_000)
    async with (
        proxy.running(),
        get_client(url=f"http://127.0.0.1:{proxy.port}", timeout=30) as client,
    ):
        thread = await client.threads.create()
        parts = [part async for part in client.runs.stream(
            thread["thread_id"], "tokens", input=SAY, stream_mode=MODES,
            stream_resumable=True)]
    assert proxy.cuts >= 2, proxy.cuts  # the stream was cut, more than once
    assert [part.id for part in parts] == [str(i) for i in range(1, len(parts) + 1)]
    assert parts[0].event == "metadata"
    events = []
    for part in parts[1:]:
        events.append((part.event, without_run_ids(part.event, part.data)))
    assert normalized(events) == normalized(expected)
