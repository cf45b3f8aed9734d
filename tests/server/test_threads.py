"""Threads through the server: memory across runs, state, history, interrupts and resuming."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk.client import SyncLangGraphClient


def say(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


def test_a_thread_remembers_the_first_run_in_the_second(client: SyncLangGraphClient) -> None:
    thread = client.threads.create(metadata={"user": "ada"})
    assert thread["status"] == "idle" and thread["metadata"] == {"user": "ada"}
    first = client.runs.wait(thread["thread_id"], "echo", input=say("hello"))
    assert first["messages"][-1]["content"] == "You said: hello"  # type: ignore[index]
    second = client.runs.wait(thread["thread_id"], "echo", input=say("again"))
    assert second["messages"][-1]["content"] == "You said: hello | again"  # type: ignore[index]

    state = client.threads.get_state(thread["thread_id"])
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "human", "ai"]
    assert state["next"] == [] and state["checkpoint"]["thread_id"] == thread["thread_id"]
    history = client.threads.get_history(thread["thread_id"], limit=100)
    assert history[0]["checkpoint"] == state["checkpoint"]
    assert [len(h["values"].get("messages", [])) for h in history][:2] == [4, 3]

    record = client.threads.get(thread["thread_id"])
    assert record["status"] == "idle"
    assert record["metadata"]["graph_id"] == "echo" and record["metadata"]["user"] == "ada"
    assert record["values"] == state["values"]
    found = client.threads.search(metadata={"user": "ada"})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]]


def test_a_run_creates_its_thread_when_asked(client: SyncLangGraphClient) -> None:
    result = client.runs.wait("made-by-a-run", "echo", input=say("hi"), if_not_exists="create")
    assert result["messages"][-1]["content"] == "You said: hi"  # type: ignore[index]
    assert client.threads.get("made-by-a-run")["status"] == "idle"


def test_an_interrupt_and_a_resume_through_the_sdk(client: SyncLangGraphClient) -> None:
    thread = client.threads.create()
    parts = list(client.runs.stream(thread["thread_id"], "booking", input=say("fly me"),
                                    stream_mode="updates"))
    asked = [part.data["__interrupt__"] for part in parts
             if part.event == "updates" and "__interrupt__" in part.data]
    assert asked and asked[0][0]["value"] == {"question": "Book a flight to Paris?"}
    record = client.threads.get(thread["thread_id"])
    assert record["status"] == "interrupted"
    assert next(iter(record["interrupts"].values()))[0]["id"] == asked[0][0]["id"]
    state = client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["tools"] and state["interrupts"][0]["id"] == asked[0][0]["id"]

    result = client.runs.wait(thread["thread_id"], "booking", command={"resume": "yes"})
    assert result["messages"][-1]["content"] == "Done: booked to Paris"  # type: ignore[index]
    assert client.threads.get(thread["thread_id"])["status"] == "idle"


def test_a_stateless_run_leaves_no_thread(client: SyncLangGraphClient) -> None:
    before = {t["thread_id"] for t in client.threads.search(limit=1000)}
    client.runs.wait(None, "echo", input=say("hi"))
    assert {t["thread_id"] for t in client.threads.search(limit=1000)} == before


def test_deleting_a_thread_forgets_its_conversation(client: SyncLangGraphClient) -> None:
    thread = client.threads.create()["thread_id"]
    client.runs.wait(thread, "echo", input=say("secret"))
    client.threads.delete(thread)
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client.threads.get(thread)
    assert gone.value.response.status_code == 404
    # A thread of the same id starts afresh.
    result = client.runs.wait(thread, "echo", input=say("hi"), if_not_exists="create")
    assert result["messages"][-1]["content"] == "You said: hi"  # type: ignore[index]


def test_assistants_and_info(client: SyncLangGraphClient, url: str) -> None:
    found = client.assistants.search(limit=100)
    assert sorted(a["graph_id"] for a in found) == sorted(
        ["weather", "echo", "tokens", "gated", "booking", "broken", "crashing", "flood",
         "nested", "context"])
    echo = client.assistants.search(graph_id="echo")
    assert [a["graph_id"] for a in echo] == ["echo"]
    by_id = client.assistants.get(echo[0]["assistant_id"])
    assert by_id == client.assistants.get("echo") == echo[0]
    # A run may name the assistant by its id.
    result = client.runs.wait(None, echo[0]["assistant_id"], input=say("by id"))
    assert result["messages"][-1]["content"] == "You said: by id"  # type: ignore[index]
    info = httpx.get(f"{url}/info").json()
    assert info["version"] and info["flags"]["assistants"] is True
    assert httpx.get(f"{url}/ok").json() == {"ok": True}
