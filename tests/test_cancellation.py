"""Cancellation that lands at once (issue 14, item 5): after ``dispose()`` from a plain thread
no new model request starts and the run ends; leaving ``async for`` with ``break`` cancels the
producer without the cyclic garbage collector."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator
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


# -- leaving a loop early, with the cyclic garbage collector off -----------------------------


class Endless:
    """A model that streams until it is cancelled, and records that it was."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    async def __call__(self, messages: list[BaseMessage], tools: Any) -> Any:
        self.started.set()
        try:
            for i in range(1_000_000):
                yield f"t{i} "
                await anyio.sleep(0)
        finally:
            self.cancelled.set()


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """Only reference counting frees objects here: what a cycle holds stays held."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _leave_async(backend: str, make: Callable[[], Any], skip: int, how: str) -> bool:
    """Iterate with ``async for``, leave after ``skip`` items (``break``, or raising from the
    loop's body), then give the loop a few turns: whether the producer was cancelled."""
    endless_started, endless_cancelled = make.started, make.cancelled  # type: ignore[attr-defined]

    async def main() -> bool:
        seen = 0
        try:
            async for _ in make():
                seen += 1
                if seen > skip and endless_started.is_set():
                    if how == "break":
                        break
                    raise LookupError("left")
        except LookupError:
            pass
        for _ in range(20):  # a cancellation that landed ends the producer within a few turns
            if endless_cancelled.is_set():
                return True
            await anyio.sleep(0)
        return endless_cancelled.is_set()

    with collector_off():
        return anyio.run(main, backend=backend)


class _Source:
    """What to iterate, made afresh per loop, with the model's flags at hand."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.model = Endless()
        self.started, self.cancelled = self.model.started, self.model.cancelled

    def __call__(self) -> Any:
        model = FunctionChatModel(self.model)
        if self.kind == "model":
            return model.stream("hi")
        agent = create_agent(model, [ping])
        if self.kind == "observe":
            return agent.observe({"messages": ["hi"]})
        return agent.astream({"messages": ["hi"]}, stream_mode=["messages", "updates"])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", ["astream", "observe", "model"])
@pytest.mark.parametrize("how", ["break", "raise"])
def test_leaving_async_for_cancels_the_producer_without_the_garbage_collector(
    backend: str, kind: str, how: str
) -> None:
    for skip in (0, 5):
        source = _Source(kind)
        assert _leave_async(backend, source, skip, how), (
            f"the producer was still running after leaving async for ({kind}, {skip} items)"
        )


@pytest.mark.parametrize("kind", ["stream", "observe", "model"])
def test_leaving_a_for_loop_cancels_the_producer_without_the_garbage_collector(
    kind: str,
) -> None:
    for skip in (0, 5):
        source = _Source(kind)
        model = FunctionChatModel(source.model)
        iterable: Any = (
            create_agent(model, [ping]).stream({"messages": ["hi"]}, stream_mode="messages")
            if kind == "stream"
            else create_agent(model, [ping]).observe({"messages": ["hi"]})
            if kind == "observe"
            else model.stream("hi")
        )
        with collector_off():
            for seen, _ in enumerate(iterable, start=1):
                if seen > skip and source.started.is_set():
                    break
            del iterable
            # The sync iterator waits for its run to stop when it is dropped.
            assert source.cancelled.is_set(), f"{kind}: still running after the break"


@pytest.mark.anyio
async def test_breaking_out_of_a_run_over_http_closes_the_socket_without_the_collector() -> None:
    from rxagent.chat_models import ChatOpenAI

    from .chat_models.loopback import STALL, Reply, serve
    from .chat_models.transcripts import openai_chunk, sse

    body = [sse(openai_chunk({"role": "assistant", "content": "It's"}), done=False), STALL]
    async with serve(Reply(body)) as server:
        model = ChatOpenAI("gpt-4o-mini", base_url=server.url + "/v1", api_key="sk-test")
        agent = create_agent(model, [ping])
        with collector_off(), anyio.fail_after(WAIT):
            async for chunk, _ in agent.astream({"messages": ["hi"]}, stream_mode="messages"):
                assert chunk.content == "It's"
                break
            # Reference counting alone must reach the socket: the server sees the client go.
            await server.wait_disconnects(1, timeout=WAIT)
