"""The bytes on the wire: headers, frames, heartbeats; raw httpx under asyncio and trio."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
from langgraph_sdk.client import SyncLangGraphClient

from .agents import new_gate
from .sse import parse_frames

SAY = {"messages": [{"role": "user", "content": "hi"}]}


def test_stream_headers_and_exact_frames(client: SyncLangGraphClient, url: str) -> None:
    thread = client.threads.create()["thread_id"]
    response = httpx.post(f"{url}/threads/{thread}/runs/stream", timeout=10, json={
        "assistant_id": "echo", "input": SAY, "stream_mode": "updates",
        "stream_resumable": True})
    headers = response.headers
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert headers["x-accel-buffering"] == "no"
    run_id = json.loads(response.content.split(b"\r\n")[1][len(b"data: "):])["run_id"]
    assert headers["location"] == f"/threads/{thread}/runs/{run_id}/stream"
    assert headers["content-location"] == f"/threads/{thread}/runs/{run_id}"
    first = (b'event: metadata\r\ndata: {"run_id":"' + run_id.encode()
             + b'","attempt":1}\r\nid: 1\r\n\r\n')
    assert response.content.startswith(first)
    frames = parse_frames(response.content)
    assert [(f.event, f.id) for f in frames] == [("metadata", "1"), ("updates", "2")]
    assert b"event: end" not in response.content
    # Without stream_resumable no ids are sent.
    plain = httpx.post(f"{url}/runs/stream", timeout=10,
                       json={"assistant_id": "echo", "input": SAY, "stream_mode": "updates"})
    assert [f.id for f in parse_frames(plain.content)] == [None, None]
    location = plain.headers["location"]
    assert location.startswith("/runs/") and location.endswith("/stream")
    # A background run answers with Content-Location only.
    background = httpx.post(f"{url}/threads/{thread}/runs", timeout=10,
                            json={"assistant_id": "echo", "input": SAY})
    assert "location" not in background.headers
    assert background.headers["content-location"] == (
        f"/threads/{thread}/runs/{background.json()['run_id']}")


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_heartbeats_while_a_run_is_quiet(
    url: str, monkeypatch: pytest.MonkeyPatch, anyio_backend: str,
) -> None:
    monkeypatch.setenv("RXAGENT_HEARTBEAT_S", "0.05")
    gate = new_gate()
    body = {"assistant_id": "gated", "input": {"messages": [gate.key]},
            "stream_mode": "custom"}
    received = b""
    async with httpx.AsyncClient(base_url=url, timeout=10) as raw, raw.stream(
        "POST", "/runs/stream", json=body
    ) as response:
        chunks = response.aiter_raw()
        while received.count(b": heartbeat\r\n\r\n") < 2:
            received += await chunks.__anext__()
        gate.open()
        async for chunk in chunks:
            received += chunk
    frames = parse_frames(received)
    assert frames[0].event == "metadata"
    assert {f.comment for f in frames[1:]} == {"heartbeat"}  # custom mode: nothing else


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_a_wait_sends_its_headers_at_once_and_newlines_while_the_run_is_quiet(
    url: str, monkeypatch: pytest.MonkeyPatch, anyio_backend: str,
) -> None:
    # As the reference answers: a proxy does not cut the wait, and a client whose connection
    # drops already holds the Location to rejoin the run at (the SDK's runs.wait does).
    monkeypatch.setenv("RXAGENT_HEARTBEAT_S", "0.05")
    gate = new_gate()
    received = b""
    async with httpx.AsyncClient(base_url=url, timeout=10) as raw:
        thread = (await raw.post("/threads", json={})).json()["thread_id"]
        async with raw.stream("POST", f"/threads/{thread}/runs/wait", json={
            "assistant_id": "gated", "input": {"messages": [gate.key]},
        }) as response:
            assert not gate.opened.is_set()  # the headers came before the run's end
            location = response.headers["location"]
            assert location.startswith(f"/threads/{thread}/runs/")
            assert location.endswith("/join")
            assert response.headers["content-type"] == "application/json"
            chunks = response.aiter_raw()
            while received.count(b"\n") < 2:
                received += await chunks.__anext__()
            gate.open()
            async for chunk in chunks:
                received += chunk
    assert received.startswith(b"\n\n")
    assert json.loads(received)["messages"][-1]["content"].startswith("g0 g1 ")


def test_a_stateless_wait_names_where_to_rejoin_it_as_the_reference_does(url: str) -> None:
    # The join of the run's own thread, answered after that thread is gone with the run.
    done = httpx.post(f"{url}/runs/wait", timeout=10, json={"assistant_id": "echo",
                                                            "input": SAY})
    base = done.headers["content-location"]
    assert base.startswith("/threads/") and "/runs/" in base
    assert done.headers["location"] == f"{base}/join"
    thread = base.split("/")[2]
    assert httpx.get(f"{url}/threads/{thread}", timeout=10).status_code == 404  # deleted
    again = httpx.get(f"{url}{done.headers['location']}", timeout=10)
    assert again.status_code == 200
    assert json.loads(again.content) == json.loads(done.content)
    assert json.loads(done.content)["messages"][-1]["type"] == "ai"
    assert httpx.get(f"{url}{base}", timeout=10).json()["status"] == "success"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_raw_httpx_reads_every_token_once(url: str, anyio_backend: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as raw:
        response = await raw.post("/runs/stream", json={
            "assistant_id": "tokens", "input": SAY, "stream_mode": "messages-tuple"})
    tokens = [f.data[0]["content"] for f in parse_frames(response.content)
              if f.event == "messages"]
    assert "".join(tokens) == " ".join(f"t{i}" for i in range(40))


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_a_client_that_leaves_under_either_backend(
    url: str, anyio_backend: str,
) -> None:
    gate = new_gate()
    async with httpx.AsyncClient(base_url=url, timeout=10) as raw:
        thread = (await raw.post("/threads", json={})).json()["thread_id"]
        body = json.dumps({
            "assistant_id": "gated", "input": {"messages": [gate.key]},
            "stream_mode": "messages-tuple", "on_disconnect": "cancel",
        }).encode()
        # A plain socket, closed by hand mid-stream: the server sees the peer go away.
        port = int(url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as sock:
            await sock.send(
                f"POST /threads/{thread}/runs/stream HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode() + body)
            received = b""
            while b"g0 " not in received:
                received += await sock.receive()
        run_id = received.split(b"content-location: ")[1].split(b"\r\n")[0].decode()
        with anyio.fail_after(10):
            while (await raw.get(run_id)).json()["status"] != "interrupted":
                await anyio.sleep(0.01)
    gate.open()
    assert gate.produced == 1
