"""200 clients stream at once from one ``rxagent serve`` process: each gets its own run's
stream, every event exactly once and in order, equal to the same agent's local ``stream``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from rxagent import Agent
from rxagent.checkpoint import InMemorySaver
from rxagent.server._sse import jsonable

from .processes import rxagent_serve
from .sse import parse_frames
from .test_streams import normalized, without_run_ids

CLIENTS = 200
MODES = ["updates", "messages-tuple", "custom"]
# A tool call with custom events, then 30 tokens that name the client: a stream that reached
# the wrong client, or lost or repeated a token, differs from that client's local stream.
AGENT_FILE = '''
from rxagent import create_agent, get_stream_writer
from rxagent.messages import AIMessage, HumanMessage
from rxagent.testing import FunctionChatModel
from rxagent.tools import tool


@tool
def lookup(who: str) -> str:
    """Look someone up."""
    get_stream_writer()(f"looking up {who}")
    return f"found {who}"


def reply(messages, tools):
    last = messages[-1]
    if isinstance(last, HumanMessage):
        return AIMessage(content="", tool_calls=[
            {"name": "lookup", "args": {"who": last.text}, "id": "call_1"}])
    who = last.text.removeprefix("found ")
    return " ".join(f"{who}.{i}" for i in range(30))


agent = create_agent(FunctionChatModel(reply), [lookup])
'''


def ask(index: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"c{index}"}]}


def local_events(agent: Agent, index: int) -> list[tuple[str, Any]]:
    """The agent's local stream for client ``index``, named as the server names its events."""
    modes = ["messages" if mode == "messages-tuple" else mode for mode in MODES]
    local = agent.with_checkpointer(InMemorySaver())
    events = [
        (part["type"], without_run_ids(part["type"], jsonable(part["data"])))
        for part in local.stream(ask(index), {"configurable": {"thread_id": "local"}},
                                 stream_mode=modes, version="v2")
    ]
    return json.loads(json.dumps(events))  # type: ignore[no-any-return]


def served_events(raw: bytes) -> list[tuple[str, Any]]:
    frames = parse_frames(raw)
    assert frames[0].event == "metadata"
    assert [frame.id for frame in frames] == [str(i) for i in range(1, len(frames) + 1)]
    events = []
    for frame in frames[1:]:
        events.append((frame.event, without_run_ids(frame.event, frame.data)))
    return events


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("many")
    (directory / "lookup.py").write_text(AGENT_FILE)
    return directory


@pytest.fixture(scope="module")
def served(agent_dir: Path) -> Iterator[str]:
    """``rxagent serve`` in its own process; its log goes to a file (a pipe nobody reads would
    fill with 200 requests' lines and stop the server)."""
    with rxagent_serve(["lookup.py:agent"], cwd=agent_dir,
                       log=agent_dir / "serve.log") as url:
        yield url


@pytest.fixture(scope="module")
def agent(agent_dir: Path) -> Agent:
    namespace: dict[str, Any] = {}
    exec(compile(AGENT_FILE, str(agent_dir / "lookup.py"), "exec"), namespace)
    return namespace["agent"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def expected(agent: Agent) -> list[list[tuple[str, Any]]]:
    """Each client's local stream, normalized, made once for the module (outside the test's
    event loop, which the sync ``stream`` would hold up meanwhile)."""
    return [normalized(local_events(agent, index)) for index in range(CLIENTS)]


@pytest.mark.anyio
async def test_200_concurrent_clients_each_get_their_stream_exactly_once(
    served: str, expected: list[list[tuple[str, Any]]]
) -> None:
    everyone_ready = anyio.Event()
    ready = 0
    raw: dict[int, bytes] = {}

    async def one(client: httpx.AsyncClient, index: int) -> None:
        nonlocal ready
        ready += 1
        if ready == CLIENTS:
            everyone_ready.set()
        await everyone_ready.wait()  # all streams are opened together, so they overlap
        async with client.stream("POST", f"{served}/runs/stream", json={
            "assistant_id": "agent", "input": ask(index), "stream_mode": MODES,
            "stream_resumable": True,
        }) as response:
            assert response.status_code == 200
            raw[index] = b"".join([chunk async for chunk in response.aiter_bytes()])

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    with anyio.fail_after(120):
        async with httpx.AsyncClient(limits=limits, timeout=60) as client, \
                anyio.create_task_group() as group:
            for index in range(CLIENTS):
                group.start_soon(one, client, index)

    assert sorted(raw) == list(range(CLIENTS))
    for index in range(CLIENTS):
        served_stream = served_events(raw[index])
        assert normalized(served_stream) == expected[index], index
        assert any(event == "messages" for event, _ in served_stream)
