"""Runs through the server: joins and resuming, background runs, cancelling, queueing, and what
happens when a client leaves."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from langgraph_sdk.client import SyncLangGraphClient

from rxagent.server import create_app

from .agents import echo_agent, new_gate
from .conftest import ServerThread
from .sse import parse_frames


def say(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait (up to 10 s) for ``check()``; the bound only keeps a broken server from hanging."""
    with anyio.from_thread.start_blocking_portal() as portal:
        async def wait() -> None:
            with anyio.fail_after(10):
                while not check():
                    await anyio.sleep(0.01)
        try:
            portal.call(wait)
        except TimeoutError:
            pytest.fail(f"never happened: {what}")


def events(parts: Any) -> list[tuple[str | None, str, Any]]:
    return [(part.id, part.event, part.data) for part in parts]


def test_a_join_replays_exactly_the_events_after_last_event_id(
    client: SyncLangGraphClient,
) -> None:
    thread = client.threads.create()["thread_id"]
    whole = events(client.runs.stream(thread, "tokens", input=say("go"),
                                      stream_mode="messages-tuple", stream_resumable=True))
    run_id = whole[0][2]["run_id"]
    ids = [int(event_id) for event_id, _, _ in whole]  # type: ignore[arg-type]
    assert ids == list(range(1, len(whole) + 1))  # consecutive, from 1
    for last in (1, 2, len(whole) // 2, len(whole) - 1, len(whole)):
        joined = events(client.runs.join_stream(thread, run_id, last_event_id=str(last)))
        assert joined == whole[last:], last
    assert events(client.runs.join_stream(thread, run_id, last_event_id="-1")) == whole
    # Without an id the client has seen nothing: the whole run, not wherever it is.
    assert events(client.runs.join_stream(thread, run_id)) == whole


def test_a_live_join_switches_from_stored_to_live_events_without_a_gap_or_repeat(
    client: SyncLangGraphClient, url: str,
) -> None:
    gate = new_gate()
    thread = client.threads.create()["thread_id"]
    run = client.runs.create(thread, "gated", input=say(gate.key),
                             stream_mode="messages-tuple", stream_resumable=True)
    gate.started.wait(10)
    # The run has sent its first events and waits: a join now replays those, then goes live.
    with httpx.Client(base_url=url, timeout=10) as raw, raw.stream(
        "GET", f"/threads/{thread}/runs/{run['run_id']}/stream",
        headers={"Last-Event-ID": "1"},
    ) as response:
        chunks = response.iter_raw()
        received = b""
        while b"g0 " not in received:
            received += next(chunks)
        gate.open()
        received += b"".join(chunks)
    joined = parse_frames(received)
    whole = parse_frames(httpx.get(f"{url}/threads/{thread}/runs/{run['run_id']}/stream",
                                   headers={"Last-Event-ID": "-1"}).content)
    assert [f.id for f in joined] == [f.id for f in whole[1:]]
    assert joined == whole[1:]
    tokens = [f.data[0]["content"] for f in joined if f.event == "messages"]
    assert "".join(tokens) == "".join(f"g{i} " for i in range(60))


def test_a_background_run_its_status_and_a_join(client: SyncLangGraphClient) -> None:
    gate = new_gate()
    thread = client.threads.create()["thread_id"]
    run = client.runs.create(thread, "gated", input=say(gate.key), stream_resumable=True,
                             stream_mode="values")
    assert run["status"] in ("pending", "running") and run["thread_id"] == thread
    gate.started.wait(10)
    assert client.runs.get(thread, run["run_id"])["status"] == "running"
    assert client.threads.get(thread)["status"] == "busy"
    gate.open()
    joined = events(client.runs.join_stream(thread, run["run_id"], last_event_id="-1"))
    assert joined[0][1] == "metadata" and joined[-1][1] == "values"
    assert client.runs.get(thread, run["run_id"])["status"] == "success"
    assert client.threads.get(thread)["status"] == "idle"
    final = joined[-1][2]["messages"][-1]["content"]
    assert final == "".join(f"g{i} " for i in range(60))
    assert [r["run_id"] for r in client.runs.list(thread)] == [run["run_id"]]


def test_cancel_stops_a_running_run(client: SyncLangGraphClient) -> None:
    gate = new_gate()
    thread = client.threads.create()["thread_id"]
    run = client.runs.create(thread, "gated", input=say(gate.key), stream_resumable=True)
    gate.started.wait(10)
    client.runs.cancel(thread, run["run_id"])
    eventually(lambda: client.runs.get(thread, run["run_id"])["status"] == "interrupted",
               "the run is cancelled")
    produced = gate.produced
    gate.open()
    # The stream of a cancelled run ends; the model was not let on.
    parts = events(client.runs.join_stream(thread, run["run_id"], last_event_id="-1"))
    assert [event for _, event, _ in parts] == ["metadata", "values"]
    assert gate.produced == produced == 1
    assert client.threads.get(thread)["status"] == "idle"
    # A finished run cannot be cancelled again; the thread takes new runs.
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.cancel(thread, run["run_id"])
    assert refused.value.response.status_code == 409
    client.runs.wait(thread, "echo", input=say("after"))


def test_enqueue_runs_after_the_busy_run_and_reject_refuses(
    client: SyncLangGraphClient,
) -> None:
    gate = new_gate()
    thread = client.threads.create()["thread_id"]
    first = client.runs.create(thread, "gated", input=say(gate.key))
    gate.started.wait(10)
    with pytest.raises(httpx.HTTPStatusError) as busy:
        client.runs.create(thread, "echo", input=say("now"))
    assert busy.value.response.status_code == 409
    assert "busy" in busy.value.response.json()["detail"]
    second = client.runs.create(thread, "echo", input=say("later"),
                                multitask_strategy="enqueue")
    assert client.runs.get(thread, second["run_id"])["status"] == "pending"
    gate.open()
    result = client.runs.join(thread, second["run_id"])
    assert client.runs.get(thread, first["run_id"])["status"] == "success"
    assert client.runs.get(thread, second["run_id"])["status"] == "success"
    texts = [m["content"] for m in result["messages"]]  # type: ignore[index]
    assert texts[-1] == f"You said: {gate.key} | later"  # it ran after the first


def test_interrupt_strategy_cancels_the_busy_run(client: SyncLangGraphClient) -> None:
    gate = new_gate()
    thread = client.threads.create()["thread_id"]
    first = client.runs.create(thread, "gated", input=say(gate.key))
    gate.started.wait(10)
    client.runs.wait(thread, "echo", input=say("now"), multitask_strategy="interrupt")
    assert client.runs.get(thread, first["run_id"])["status"] == "interrupted"
    gate.open()


@pytest.mark.parametrize("on_disconnect", ["cancel", "continue"])
def test_a_client_that_leaves(client: SyncLangGraphClient, url: str, on_disconnect: str) -> None:
    gate = new_gate()
    thread = client.threads.create()["thread_id"]
    body = {"assistant_id": "gated", "input": say(gate.key), "stream_mode": "messages-tuple",
            "on_disconnect": on_disconnect}
    with httpx.Client(base_url=url, timeout=10) as raw, raw.stream(
        "POST", f"/threads/{thread}/runs/stream", json=body,
    ) as response:
        run_id = response.headers["content-location"].rsplit("/", 1)[1]
        chunks = response.iter_raw()
        received = b""
        while b"g0 " not in received:
            received += next(chunks)
    # Leaving the block closed the connection mid-run.
    if on_disconnect == "cancel":
        eventually(lambda: client.runs.get(thread, run_id)["status"] == "interrupted",
                   "the run is cancelled")
        gate.open()
        assert gate.produced == 1
    else:
        gate.open()
        eventually(lambda: client.runs.get(thread, run_id)["status"] == "success",
                   "the run finishes")
        final = client.threads.get_state(thread)["values"]["messages"][-1]["content"]
        assert final == "".join(f"g{i} " for i in range(60))


def test_a_finished_run_is_forgotten_after_its_retention() -> None:
    with ServerThread(create_app({"echo": echo_agent()}, retention=0)) as server:
        base = server.url
        thread = httpx.post(f"{base}/threads", json={}).json()["thread_id"]
        done = httpx.post(f"{base}/threads/{thread}/runs/wait", timeout=10, json={
            "assistant_id": "echo", "input": say("hi"), "stream_resumable": True})
        run_path = done.headers["content-location"]
        assert httpx.get(f"{base}{run_path}").status_code == 404
        assert httpx.get(f"{base}{run_path}/stream").status_code == 404
        # The thread keeps the conversation.
        state = httpx.get(f"{base}/threads/{thread}/state").json()
        assert len(state["values"]["messages"]) == 2


def test_a_stateless_run_is_joined_at_its_location(url: str) -> None:
    response = httpx.post(f"{url}/runs/stream", timeout=10, json={
        "assistant_id": "echo", "input": say("hi"), "stream_mode": "values",
        "stream_resumable": True})
    whole = parse_frames(response.content)
    joined = httpx.get(url + response.headers["location"], timeout=10,
                       headers={"Last-Event-ID": "1"})
    assert parse_frames(joined.content) == whole[1:]


@pytest.mark.parametrize("on_disconnect", ["cancel", "continue"])
def test_a_client_that_leaves_a_wait(
    client: SyncLangGraphClient, url: str, on_disconnect: str,
) -> None:
    gate = new_gate()
    thread = client.threads.create()["thread_id"]
    body = json.dumps({"assistant_id": "gated", "input": say(gate.key),
                       "on_disconnect": on_disconnect}).encode()
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 10) as sock:
        sock.sendall(
            f"POST /threads/{thread}/runs/wait HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body)
        gate.started.wait(10)
    # The socket is closed while the run waits at its gate.
    run_id = client.runs.list(thread)[0]["run_id"]
    if on_disconnect == "cancel":
        eventually(lambda: client.runs.get(thread, run_id)["status"] == "interrupted",
                   "the run is cancelled")
        gate.open()
    else:
        gate.open()
        eventually(lambda: client.runs.get(thread, run_id)["status"] == "success",
                   "the run finishes")


def test_a_join_may_ask_for_fewer_modes(client: SyncLangGraphClient) -> None:
    thread = client.threads.create()["thread_id"]
    whole = events(client.runs.stream(thread, "weather", input=say("hi"),
                                      stream_mode=["updates", "custom"], stream_resumable=True))
    run_id = whole[0][2]["run_id"]
    joined = events(client.runs.join_stream(thread, run_id, last_event_id="-1",
                                            stream_mode="custom"))
    assert joined == [event for event in whole if event[1] in ("metadata", "custom")]
    assert [name for _, name, _ in joined].count("custom") == 2
