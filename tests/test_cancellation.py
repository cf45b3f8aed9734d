"""Cancellation that lands at once (issue 14, item 5): after ``dispose()`` from a plain thread
no new model request starts and the run ends; leaving ``async for`` with ``break`` cancels the
producer without the cyclic garbage collector."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import anyio.to_thread
import pytest

from rxagent import create_agent
from rxagent._fast_rx import Trusted
from rxagent._loops import Spawned
from rxagent.messages import AIMessage, BaseMessage, ToolMessage
from rxagent.testing import FunctionChatModel

WAIT = 10.0  # seconds; only a broken run waits this long, and then the test fails


class Requests:
    """A model that records when each request would start: a tool call until the tool has
    answered twice, then a final answer."""

    def __init__(self) -> None:
        self.started: list[float] = []

    def __call__(self, messages: list[BaseMessage], tools: Any) -> AIMessage:
        self.started.append(time.monotonic())
        answered = sum(isinstance(m, ToolMessage) for m in messages)
        if answered >= 2:
            return AIMessage(content="done")
        return AIMessage(
            content="", tool_calls=[{"name": "ping", "args": {}, "id": f"call_{answered}"}]
        )


async def ping() -> str:
    """Answer pong."""
    return "pong"


class HoldOnToolResult(Trusted[Any]):
    """A subscriber that, on the loop's thread, holds the loop on the state that follows the
    first tool result, until the test has disposed: the run has then queued nothing yet, and
    goes on to its next model call as soon as the part is delivered."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()
        self.parts: list[Any] = []

    def on_next(self, part: Any) -> None:
        self.parts.append(part)
        if part["type"] == "values" and isinstance(part["data"]["messages"][-1], ToolMessage):
            self.holding.set()
            self.release.wait(WAIT)

    def on_error(self, error: Exception) -> None:
        self.parts.append(error)

    def on_completed(self) -> None:
        self.parts.append("completed")


def _dispose_while_held(
    observable: Any, subscriber: HoldOnToolResult, where: str
) -> tuple[Spawned, float]:
    """Subscribe ``subscriber`` (on the background loop from this plain thread, or on an
    asyncio or trio loop in this thread), dispose from another plain thread while the
    subscriber holds the loop, and wait for the run's end; the handle and when dispose()
    returned."""
    disposed: list[float] = []

    def dispose_from_a_thread(subscription: Spawned) -> threading.Thread:
        def dispose() -> None:
            try:
                if subscriber.holding.wait(WAIT):
                    subscription.dispose()
                    disposed.append(time.monotonic())
            finally:
                subscriber.release.set()

        thread = threading.Thread(target=dispose)
        thread.start()
        return thread

    if where == "background":
        subscription = observable.subscribe(subscriber)
        assert isinstance(subscription, Spawned)  # a Trusted subscriber gets the run's handle
        dispose_from_a_thread(subscription).join(WAIT)
        assert subscription.wait_done_blocking(WAIT), "the run did not end after dispose()"
    else:

        async def main() -> Spawned:
            subscription = observable.subscribe(subscriber)
            assert isinstance(subscription, Spawned)
            thread = dispose_from_a_thread(subscription)
            with anyio.fail_after(WAIT):  # the run did not end after dispose()
                await subscription.wait_done()
            await anyio.to_thread.run_sync(thread.join, WAIT)
            return subscription

        subscription = anyio.run(main, backend=where)
    assert disposed, "the run never reached the part the subscriber holds"
    return subscription, disposed[0]


@pytest.mark.parametrize("where", ["background", "asyncio", "trio"])
def test_after_dispose_from_a_plain_thread_no_model_request_starts_and_the_run_ends(
    where: str,
) -> None:
    requests = Requests()
    agent = create_agent(FunctionChatModel(requests), [ping])
    subscriber = HoldOnToolResult()
    subscription, disposed = _dispose_while_held(
        agent.observe({"messages": ["Ping twice."]}), subscriber, where
    )
    assert subscription.done
    assert len(requests.started) == 1
    late = [round((t - disposed) * 1000, 1) for t in requests.started if t >= disposed]
    assert late == [], f"model requests started {late} ms after dispose()"
    assert "completed" not in subscriber.parts


class HoldOnModelReply(HoldOnToolResult):
    """Holds the loop on the model's first reply (the one with the tool call)."""

    def on_next(self, part: Any) -> None:
        self.parts.append(part)
        if part["type"] == "updates" and "model" in part["data"]:
            self.holding.set()
            self.release.wait(WAIT)


@pytest.mark.parametrize("where", ["background", "asyncio", "trio"])
def test_after_dispose_from_a_plain_thread_no_tool_call_starts(where: str) -> None:
    calls: list[float] = []

    def ping_sync() -> str:
        """Answer pong."""
        calls.append(time.monotonic())
        return "pong"

    async def ping_async() -> str:
        """Answer pong."""
        calls.append(time.monotonic())
        return "pong"

    for ping_tool in (ping_sync, ping_async):
        calls.clear()

        def reply(messages: list[BaseMessage], tools: Any, name: str = ping_tool.__name__) -> Any:
            return AIMessage(content="", tool_calls=[{"name": name, "args": {}, "id": "c1"}])

        agent = create_agent(FunctionChatModel(reply), [ping_tool])
        subscriber = HoldOnModelReply()
        _dispose_while_held(agent.observe({"messages": ["Ping."]}), subscriber, where)
        assert calls == [], f"{ping_tool.__name__} was called after dispose()"
