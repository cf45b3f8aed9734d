"""``POST /agui/{assistant_id}`` on ``rxagent serve``: AG-UI's RunAgentInput in, the run's
AG-UI events out as SSE, threads kept by the server's checkpointer."""

from __future__ import annotations

import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import reactivex.operators as ops

from rxagent import agui
from rxagent.server import create_app

from ..server.agents import new_gate, weather_agent
from ..server.conftest import ServerThread
from .events import apply_patch, as_json, check_protocol, normalized


def run_input(thread_id: str, *messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"threadId": thread_id, "runId": str(uuid.uuid4()), "state": {},
            "messages": list(messages), "tools": [], "context": [], "forwardedProps": {},
            **fields}


def user(text: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "role": "user", "content": text}


def post(url: str, assistant: str, body: Any) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """The response, and its SSE events' JSON (AG-UI's encoder sends ``data:`` lines only)."""
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{url}/agui/{assistant}", json=body,
                               headers={"accept": "text/event-stream"})
    frames = [frame for frame in response.text.split("\n\n") if frame.strip()]
    events = []
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for frame in frames:
            assert frame.startswith("data: ") and "\n" not in frame, frame
            events.append(json.loads(frame.removeprefix("data: ")))
    return response, events


def test_a_run_streams_the_events_the_operator_gives(served: ServerThread) -> None:
    body = run_input("w1", user("weather?"))
    response, events = post(served.url, "weather", body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    check_protocol(events)
    assert events[0]["threadId"] == "w1" and events[0]["runId"] == body["runId"]
    assert events[0]["input"]["messages"] == body["messages"]  # RUN_STARTED echoes it
    local = weather_agent().observe({"messages": [("user", "weather?")]},
                                    extra_modes=agui.EXTRA_MODES)
    expected = as_json(local.pipe(agui.events(), ops.to_list()).run())
    assert normalized(events) == normalized(expected)


def test_a_thread_keeps_its_conversation(served: ServerThread) -> None:
    first = user("a")
    _, events = post(served.url, "echo", run_input("e1", first))
    reply_id = next(e["messageId"] for e in events if e["type"] == "TEXT_MESSAGE_START")
    said = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
    assert said == "You said: a"
    # As an AG-UI client does: the whole conversation again, with the next message.
    history = [first, {"id": reply_id, "role": "assistant", "content": said}, user("b")]
    _, events = post(served.url, "echo", run_input("e1", *history))
    check_protocol(events)
    said = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
    assert said == "You said: a | b"  # each message once: the thread had the first two
    # The same thread through the LangGraph API.
    state = httpx.get(f"{served.url}/threads/e1/state").json()
    assert [m["content"] for m in state["values"]["messages"]] == [
        "a", "You said: a", "b", "You said: a | b"]


def test_an_interrupt_ends_the_run_and_a_resume_goes_on(served: ServerThread) -> None:
    _, events = post(served.url, "booking", run_input("b1", user("book")))
    check_protocol(events)
    outcome = events[-1]["outcome"]
    assert outcome["type"] == "interrupt"
    interrupt = outcome["interrupts"][0]
    assert interrupt["toolCallId"] == "call_1"
    assert interrupt["metadata"] == {"value": {"question": "Book a flight to Paris?"}}
    state = next(e for e in events if e["type"] == "STATE_SNAPSHOT")["snapshot"]
    for delta in (e["delta"] for e in events if e["type"] == "STATE_DELTA"):
        state = apply_patch(state, delta)
    assert state == {}  # the interrupt is the outcome, not state a client sends back
    _, events = post(served.url, "booking", run_input("b1", state={
        **state, "__interrupt__": ["sent back by an older client"]}, resume=[
        {"interruptId": interrupt["id"], "status": "resolved", "payload": "yes"}]))
    check_protocol(events)
    assert events[-1]["outcome"] == {"type": "success"}
    said = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
    assert said == "Done: booked to Paris"


def test_the_state_goes_both_ways(served: ServerThread) -> None:
    _, events = post(served.url, "profile", run_input("p1", user("Ann")))
    check_protocol(events)
    delta = next(e for e in events if e["type"] == "STATE_DELTA")["delta"]
    assert {"op": "add", "path": "/user_name", "value": "Ann"} in delta
    # A client's state goes into the run beside its messages.
    _, events = post(served.url, "profile", run_input(
        "p1", user("Bob"), state={"preferences": {"theme": "light", "tags": []}}))
    check_protocol(events)
    assert events[1] == {"type": "STATE_SNAPSHOT", "snapshot": {
        "user_name": "Ann", "preferences": {"theme": "light", "tags": []}}}


@pytest.mark.parametrize(("assistant", "message", "code"), [
    ("failing", "the provider hung up", "Upstream"),
    # Not one of rxagent's errors: its text (a key) stays in the server's log.
    ("crashing", "the run failed; the server's log has the details", "RuntimeError"),
])
def test_a_failing_run_ends_with_run_error(
    served: ServerThread, assistant: str, message: str, code: str
) -> None:
    response, events = post(served.url, assistant, run_input("f-" + assistant, user("hi")))
    assert response.status_code == 200
    check_protocol(events)
    assert events[-1] == {"type": "RUN_ERROR", "message": message, "code": code}
    assert "sk-secret" not in response.text


def test_a_second_run_on_a_busy_thread_gives_run_error(served: ServerThread) -> None:
    gate = new_gate()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, served.url, "gated", run_input("g1", user(gate.key)))
        assert gate.started.wait(30)
        _, events = post(served.url, "gated", run_input("g1", user("again")))
        gate.open()
        _, done = first.result(30)
    assert [e["type"] for e in events] == ["RUN_STARTED", "RUN_ERROR"]
    assert events[-1]["code"] == "ThreadBusyError"
    check_protocol(done)
    assert done[-1]["type"] == "RUN_FINISHED"


def status(url: str, thread_id: str) -> str:
    return str(httpx.get(f"{url}/threads/{thread_id}").json()["status"])


def test_the_thread_status_follows_the_run(served: ServerThread) -> None:
    gate = new_gate()
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(post, served.url, "gated", run_input("s1", user(gate.key)))
        assert gate.started.wait(30)
        assert status(served.url, "s1") == "busy"
        gate.open()
        running.result(30)
    assert status(served.url, "s1") == "idle"
    post(served.url, "booking", run_input("s2", user("book")))
    assert status(served.url, "s2") == "interrupted"
    post(served.url, "failing", run_input("s3", user("hi")))
    assert status(served.url, "s3") == "error"


def test_a_client_that_leaves_cancels_the_run(served: ServerThread) -> None:
    gate = new_gate()
    with httpx.Client(timeout=30) as client, client.stream(
        "POST", f"{served.url}/agui/gated", json=run_input("gone", user(gate.key))
    ) as response:
        first = next(line for line in response.iter_lines() if line)
        assert json.loads(first.removeprefix("data: "))["type"] == "RUN_STARTED"
        assert gate.started.wait(30)
    # The run stops where it waits: the thread takes a new run before the gate ever opens.
    probe = new_gate()
    probe.open()
    for _ in range(600):
        _, events = post(served.url, "gated", run_input("gone", user(probe.key)))
        if events[-1].get("code") != "ThreadBusyError":
            break
        time.sleep(0.05)
    assert events[-1]["type"] == "RUN_FINISHED", events[-1]
    gate.open()


def test_without_ag_ui_protocol_the_route_says_what_to_install(
    served: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ag_ui.core", None)  # what a missing package looks like
    response, _ = post(served.url, "echo", run_input("x", user("hi")))
    assert response.status_code == 501
    assert "pip install 'rxagent[agui]'" in response.json()["detail"]


@pytest.mark.anyio
async def test_the_route_runs_under_asyncio_and_trio() -> None:
    # The app in process (its lifespan is for the LangGraph API's runs; this route runs its
    # run in the request).
    app = create_app({"weather": weather_agent()})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.post("/agui/weather", json=run_input("a1", user("weather?")))
    events = [json.loads(frame.removeprefix("data: "))
              for frame in response.text.split("\n\n") if frame.strip()]
    check_protocol(events)
    local = weather_agent().observe({"messages": [("user", "weather?")]},
                                    extra_modes=agui.EXTRA_MODES)
    assert normalized(events) == normalized(as_json(local.pipe(agui.events(),
                                                                ops.to_list()).run()))


def test_requests_refused_before_a_run_starts(served: ServerThread) -> None:
    response, _ = post(served.url, "nobody", run_input("x", user("hi")))
    assert response.status_code == 404 and "no assistant 'nobody'" in response.json()["detail"]
    response, _ = post(served.url, "echo", {"threadId": "x"})
    assert response.status_code == 422
    assert "RunAgentInput" in response.json()["detail"]
    with httpx.Client() as client:
        response = client.post(f"{served.url}/agui/echo", content=b"not json")
    assert response.status_code == 422
    broken_call = {"id": "a", "role": "assistant", "toolCalls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{"}}]}
    response, _ = post(served.url, "echo", run_input("x", broken_call))
    assert response.status_code == 422 and "not JSON" in response.json()["detail"]
