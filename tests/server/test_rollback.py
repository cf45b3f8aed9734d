"""``multitask_strategy="rollback"`` and cancelling with ``action="rollback"``: the run on the
thread is cancelled, then forgotten with the checkpoints it wrote, so that the thread is as it
was before it; in memory and in SQLite (on Redis: ``test_redis.py``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from rxagent.checkpoint import BaseCheckpointSaver, InMemorySaver
from rxagent.checkpoint.sqlite import SqliteSaver
from rxagent.server import create_app

from .agents import echo_agent, gated_agent, new_gate
from .conftest import ServerThread


def say(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


def texts(state: Any) -> list[str]:
    return [message["content"] for message in state["values"]["messages"]]


class _LangGraphSignature(InMemorySaver):
    """A saver of one's own written to LangGraph's signatures, which have no ``threads``."""

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:  # type: ignore[override]
        super().delete_for_runs(run_ids)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:  # type: ignore[override]
        self.delete_for_runs(run_ids)


@pytest.fixture(scope="module", params=["memory", "sqlite", "LangGraph's signature"])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SyncLangGraphClient]:
    saver: BaseCheckpointSaver = (
        InMemorySaver() if request.param == "memory"
        else _LangGraphSignature() if request.param == "LangGraph's signature"
        else SqliteSaver(tmp_path_factory.mktemp("rollback") / "threads.db"))
    app = create_app({"echo": echo_agent(), "gated": gated_agent()}, checkpointer=saver)
    with saver, ServerThread(app) as server, get_sync_client(url=server.url,
                                                             timeout=30) as sdk:
        yield sdk


def started_gated_run(client: SyncLangGraphClient) -> tuple[str, str, list[str], Any]:
    """A thread with one finished run, and a second one held at its gate: the thread, the held
    run's id, the thread's messages before it, and the gate."""
    gate = new_gate()
    thread = client.threads.create()["thread_id"]
    client.runs.wait(thread, "echo", input=say("first"))
    before = texts(client.threads.get_state(thread))
    held = client.runs.create(thread, "gated", input=say(gate.key))
    assert gate.started.wait(10)
    return thread, held["run_id"], before, gate


def run_ids_in_history(client: SyncLangGraphClient, thread: str) -> set[str]:
    return {state["metadata"]["run_id"]
            for state in client.threads.get_history(thread, limit=100)}


def test_the_rollback_strategy_starts_the_new_run_on_the_thread_as_it_was(
    client: SyncLangGraphClient,
) -> None:
    thread, held, before, gate = started_gated_run(client)
    assert before == ["first", "You said: first"]
    try:
        result = client.runs.wait(thread, "echo", input=say("now"),
                                  multitask_strategy="rollback")
    finally:
        gate.open()
    # The held run's message is gone from the conversation the new run saw.
    assert result["messages"][-1]["content"] == "You said: first | now"  # type: ignore[index]
    assert texts(client.threads.get_state(thread)) == [*before, "now", "You said: first | now"]
    # The run itself is gone, and so are its checkpoints.
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client.runs.get(thread, held)
    assert gone.value.response.status_code == 404
    assert held not in [run["run_id"] for run in client.runs.list(thread)]
    assert held not in run_ids_in_history(client, thread)
    assert gate.produced == 1  # cancelled at its gate, not let on


def test_cancel_with_rollback_leaves_the_thread_as_before_the_run(
    client: SyncLangGraphClient,
) -> None:
    thread, held, before, gate = started_gated_run(client)
    try:
        client.runs.cancel(thread, held, action="rollback")
    finally:
        gate.open()
    assert texts(client.threads.get_state(thread)) == before
    assert held not in run_ids_in_history(client, thread)
    assert client.threads.get(thread)["status"] == "idle"
    with pytest.raises(httpx.HTTPStatusError) as gone:
        client.runs.get(thread, held)
    assert gone.value.response.status_code == 404
    # The thread goes on from where it was.
    result = client.runs.wait(thread, "echo", input=say("again"))
    assert result["messages"][-1]["content"] == "You said: first | again"  # type: ignore[index]


def test_cancel_with_interrupt_keeps_what_the_run_wrote(client: SyncLangGraphClient) -> None:
    # What the rollback tests above take away is there without it.
    thread, held, before, gate = started_gated_run(client)
    try:
        client.runs.cancel(thread, held, action="interrupt", wait=True)
    finally:
        gate.open()
    assert texts(client.threads.get_state(thread))[: len(before) + 1] == [*before, gate.key]
    assert held in run_ids_in_history(client, thread)


class _NoRunDeletion(InMemorySaver):
    delete_for_runs = BaseCheckpointSaver.delete_for_runs  # as a saver without it has


def test_rollback_with_a_saver_that_cannot_delete_runs_is_refused() -> None:
    app = create_app({"echo": echo_agent()}, checkpointer=_NoRunDeletion())
    with ServerThread(app) as server:
        thread = httpx.post(f"{server.url}/threads", json={}).json()["thread_id"]
        refused = httpx.post(f"{server.url}/threads/{thread}/runs/wait", json={
            "assistant_id": "echo", "input": say("hi"), "multitask_strategy": "rollback"})
        assert refused.status_code == 422
        assert "delete_for_runs" in refused.json()["detail"]


class _RecordingThreads(InMemorySaver):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def delete_for_runs(self, run_ids: Sequence[str], *, threads: Sequence[str] = ()) -> None:
        self.threads.extend(threads)
        super().delete_for_runs(run_ids)


def test_a_rollback_names_the_runs_thread_to_the_saver() -> None:
    # Where RedisSaver looks for checkpoints put before its run index (checkpoints.md).
    saver = _RecordingThreads()
    app = create_app({"echo": echo_agent(), "gated": gated_agent()}, checkpointer=saver)
    with ServerThread(app) as server, get_sync_client(url=server.url, timeout=30) as sdk:
        thread, held, before, gate = started_gated_run(sdk)
        try:
            sdk.runs.cancel(thread, held, action="rollback")
        finally:
            gate.open()
        assert texts(sdk.threads.get_state(thread)) == before
    assert saver.threads == [thread]
