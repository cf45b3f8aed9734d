"""Every refusal before a stream starts is JSON ``{"detail"}`` with its status; a run that fails
under way ends its stream with one ``error`` frame."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langgraph_sdk.client import SyncLangGraphClient

from .agents import new_gate
from .sse import parse_frames

SAY = {"messages": [{"role": "user", "content": "hi"}]}


def refused(url: str, method: str, path: str, status: int, **kwargs: Any) -> str:
    response = httpx.request(method, url + path, timeout=10, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


def test_404s(client: SyncLangGraphClient, url: str) -> None:
    thread = client.threads.create()["thread_id"]
    assert "nobody" in refused(url, "POST", "/runs/stream", 404,
                               json={"assistant_id": "nobody", "input": SAY})
    refused(url, "GET", "/assistants/nobody", 404)
    refused(url, "GET", "/threads/nothread", 404)
    refused(url, "GET", "/threads/nothread/state", 404)
    refused(url, "POST", "/threads/nothread/history", 404, json={})
    refused(url, "POST", "/threads/nothread/runs/stream", 404,
            json={"assistant_id": "echo", "input": SAY})
    refused(url, "POST", "/threads/nothread/runs/wait", 404,
            json={"assistant_id": "echo", "input": SAY})
    refused(url, "GET", f"/threads/{thread}/runs/norun", 404)
    refused(url, "GET", f"/threads/{thread}/runs/norun/stream", 404)
    refused(url, "POST", f"/threads/{thread}/runs/norun/cancel", 404)
    refused(url, "GET", "/no/such/route", 404)
    # A run is found on its own thread only.
    run = client.runs.create(thread, "echo", input=SAY)
    other = client.threads.create()["thread_id"]
    refused(url, "GET", f"/threads/{other}/runs/{run['run_id']}", 404)
    # Through the SDK, a 404 is raised.
    with pytest.raises(httpx.HTTPStatusError) as error:
        list(client.runs.join_stream(thread, "norun"))
    assert error.value.response.status_code == 404


def test_409s(client: SyncLangGraphClient, url: str) -> None:
    thread = client.threads.create()["thread_id"]
    refused(url, "POST", "/threads", 409, json={"thread_id": thread})
    assert client.threads.create(thread_id=thread, if_exists="do_nothing")["thread_id"] == thread
    gate = new_gate()
    client.runs.create(thread, "gated", input={"messages": [gate.key]})
    gate.started.wait(10)
    refused(url, "POST", f"/threads/{thread}/runs/stream", 409,
            json={"assistant_id": "echo", "input": SAY})
    refused(url, "POST", f"/threads/{thread}/runs/wait", 409,
            json={"assistant_id": "echo", "input": SAY})
    gate.open()


@pytest.mark.parametrize("body", [
    b"not json",
    b"[1, 2]",
    b'{"assistant_id": 5}',
    b'{"assistant_id": "echo", "stream_mode": "bogus"}',
    b'{"assistant_id": "echo", "stream_mode": ["values", "events"]}',
    b'{"assistant_id": "echo", "input": "hi"}',
    b'{"assistant_id": "echo", "input": {"messages": []}, "command": {"resume": 1}}',
    b'{"assistant_id": "echo", "command": {"goto": "model"}}',
    b'{"assistant_id": "echo", "on_disconnect": "maybe"}',
    b'{"assistant_id": "echo", "multitask_strategy": "sometimes"}',
    b'{"assistant_id": "echo", "webhook": "http://example.com/hook"}',
    b'{"assistant_id": "echo", "config": []}',
    b'{}',
    b'{"assistant_id": "echo", "config": {"configurable": [1]}}',
    b'{"assistant_id": "echo", "config": {"configurable": "abc"}}',
    b'{"assistant_id": "echo", "config": {"recursion_limit": "many"}}',
    b'{"assistant_id": "echo", "config": {"recursion_limit": 0}}',
    b'{"assistant_id": "echo", "config": {"recursion_limit": true}}',
    b'{"assistant_id": "echo", "config": {"tags": ["a", 1]}}',
    b'{"assistant_id": "echo", "config": {"tags": "a"}}',
    b'{"assistant_id": "echo", "stream_mode": []}',
    b'{"assistant_id": "echo", "stream_mode": 5}',
    b'{"assistant_id": "echo", "stream_mode": [["values"]]}',
    b'{"assistant_id": "echo", "stream_subgraphs": "yes"}',
    b'{"assistant_id": "echo", "stream_resumable": 1}',
    b'{"assistant_id": "echo", "metadata": [1]}',
    b'{"assistant_id": "echo", "checkpoint": "x"}',
    b'{"assistant_id": "echo", "checkpoint_id": 5}',
    b'{"assistant_id": "echo", "durability": "never"}',
    b'{"assistant_id": "echo", "if_not_exists": "maybe"}',
    b'{"assistant_id": "echo", "on_completion": "forget"}',
])
def test_422s(url: str, body: bytes) -> None:
    refused(url, "POST", "/runs/stream", 422, content=body)
    refused(url, "POST", "/runs/wait", 422, content=body)


@pytest.mark.parametrize(("path", "body"), [
    ("/threads", b'{"metadata": [1]}'),
    ("/threads", b'{"thread_id": 5}'),
    ("/threads", b'{"if_exists": "sometimes"}'),
    ("/threads/search", b'{"limit": true}'),
    ("/threads/search", b'{"limit": "5"}'),
    ("/threads/search", b'{"status": "asleep"}'),
    ("/assistants/search", b'{"offset": 1.5}'),
    ("/assistants/search", b'{"graph_id": 5}'),
])
def test_other_routes_422s(url: str, path: str, body: bytes) -> None:
    refused(url, "POST", path, 422, content=body)


def test_a_bad_last_event_id_is_a_422(client: SyncLangGraphClient, url: str) -> None:
    thread = client.threads.create()["thread_id"]
    run = client.runs.create(thread, "echo", input=SAY, stream_resumable=True)
    refused(url, "GET", f"/threads/{thread}/runs/{run['run_id']}/stream", 422,
            headers={"Last-Event-ID": "1796437643902-0"})


def test_a_failed_run_ends_with_one_error_frame(client: SyncLangGraphClient, url: str) -> None:
    thread = client.threads.create()["thread_id"]
    response = httpx.post(f"{url}/threads/{thread}/runs/stream", timeout=10,
                          json={"assistant_id": "broken", "input": SAY})
    assert response.status_code == 200
    frames = parse_frames(response.content)
    assert [f.event for f in frames] == ["metadata", "values", "error"]
    assert frames[-1].data["error"] == "ScriptExhaustedError"
    assert "script has 0 replies" in frames[-1].data["message"]
    assert set(frames[-1].data) == {"error", "message"}
    run_id = frames[0].data["run_id"]
    assert client.runs.get(thread, run_id)["status"] == "error"
    assert client.threads.get(thread)["status"] == "error"
    # runs.wait raises it; runs.stream yields it as an event.
    with pytest.raises(Exception, match="ScriptExhaustedError"):
        client.runs.wait(None, "broken", input=SAY)
    parts = list(client.runs.stream(None, "broken", input=SAY))
    assert parts[-1].event == "error"


def test_an_unexpected_error_s_text_stays_in_the_server_s_log(
    client: SyncLangGraphClient, caplog: pytest.LogCaptureFixture,
) -> None:
    parts = list(client.runs.stream(None, "crashing", input=SAY))
    assert [part.event for part in parts][-1] == "error"
    assert parts[-1].data["error"] == "RuntimeError"
    assert "sk-secret" not in str(parts[-1].data)
    assert "sk-secret" in caplog.text
