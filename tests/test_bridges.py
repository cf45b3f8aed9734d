"""Observable ⇄ iterator bridges: bounded buffers, errors last, cancellation on early exit."""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import anyio
import pytest
import reactivex
import reactivex.operators as ops

from rxagent import UsageError, create_agent, from_async_iterable, to_async_iterator, to_iterator
from rxagent import operators as rxo
from rxagent._demand import Demand  # the demand unit, on purpose
from rxagent._fast_rx import observable_from_async
from rxagent.messages import AIMessage
from rxagent.testing import FunctionChatModel, ScriptedChatModel
from rxagent.tools import tool

HI = [{"role": "user", "content": "Hi"}]


class Producer:
    """A producer that honours demand and records how far ahead of the consumer it got."""

    def __init__(self, count: int, *, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.produced = 0
        self.cancelled = threading.Event()
        self.finished = False

    async def __call__(self, on_next: Callable[[int], None], demand: Demand) -> None:
        try:
            for i in range(self.count):
                if i == self.fail_at:
                    raise RuntimeError(f"failed at {i}")
                if not demand.ready:
                    await demand.wait()
                self.produced += 1
                on_next(i)
                if i % 7 == 0:
                    await anyio.sleep(0)  # sometimes suspend, like a socket read
            self.finished = True
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise


def test_to_iterator_keeps_the_producer_within_the_buffer() -> None:
    producer = Producer(2000)
    consumed = 0
    lead = 0
    for value in to_iterator(observable_from_async(producer), max_buffer=16):
        assert value == consumed
        consumed += 1
        lead = max(lead, producer.produced - consumed)
    assert consumed == 2000 and producer.finished
    assert lead <= 16, f"the producer got {lead} items ahead of a buffer of 16"


def test_to_iterator_raises_after_every_item_before_the_error() -> None:
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="failed at 30"):
        for value in to_iterator(observable_from_async(Producer(100, fail_at=30))):
            seen.append(value)
    assert seen == list(range(30))


def test_leaving_a_for_loop_early_cancels_the_producer() -> None:
    producer = Producer(10**9)
    for value in to_iterator(observable_from_async(producer), max_buffer=4):
        if value == 10:
            break
    gc.collect()
    assert producer.cancelled.wait(10)
    assert not producer.finished


def test_to_iterator_inside_a_running_loop_uses_the_background_loop() -> None:
    async def main() -> list[int]:
        # A notebook cell: this thread runs a loop that the iterator cannot drive.
        return list(to_iterator(observable_from_async(Producer(50)), max_buffer=8))

    assert asyncio.run(main()) == list(range(50))


def test_to_iterator_of_a_plain_observable() -> None:
    assert list(to_iterator(reactivex.from_iterable(range(5)))) == [0, 1, 2, 3, 4]


def test_max_buffer_must_be_positive() -> None:
    with pytest.raises(UsageError, match="max_buffer"):
        to_iterator(reactivex.empty(), max_buffer=0)


@pytest.mark.anyio
async def test_to_async_iterator_keeps_the_producer_within_the_buffer() -> None:
    producer = Producer(1000)
    consumed = 0
    lead = 0
    async for value in to_async_iterator(observable_from_async(producer), max_buffer=10):
        assert value == consumed
        consumed += 1
        lead = max(lead, producer.produced - consumed)
        if consumed % 50 == 0:
            await anyio.sleep(0)
    assert consumed == 1000
    assert lead <= 10


@pytest.mark.anyio
async def test_to_async_iterator_raises_after_the_items_before_the_error() -> None:
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="failed at 12"):
        async for value in to_async_iterator(observable_from_async(Producer(50, fail_at=12))):
            seen.append(value)
    assert seen == list(range(12))


@pytest.mark.anyio
async def test_aclose_cancels_the_producer_and_waits_for_it() -> None:
    producer = Producer(10**9)
    iterator = to_async_iterator(observable_from_async(producer), max_buffer=4)
    async for value in iterator:
        if value == 5:
            break
    await iterator.aclose()
    assert producer.cancelled.is_set(), "aclose returns once the producer is cancelled"


@pytest.mark.anyio
async def test_dropping_an_async_iterator_cancels_the_producer() -> None:
    producer = Producer(10**9)
    async for value in to_async_iterator(observable_from_async(producer), max_buffer=4):
        if value == 5:
            break
    gc.collect()
    with anyio.fail_after(10):
        while not producer.cancelled.is_set():
            await anyio.sleep(0.001)


@pytest.mark.anyio
async def test_from_async_iterable_is_not_pulled_while_demand_is_held() -> None:
    pulled = 0

    async def numbers() -> AsyncIterator[int]:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield i

    got: list[int] = []
    async for value in to_async_iterator(from_async_iterable(numbers()), max_buffer=5):
        got.append(value)
        assert pulled - len(got) <= 5
    assert got == list(range(100))


# -- iterating what a model or an agent streams, and .run() on a running loop ---------------


def test_a_model_stream_is_iterated_as_in_langchain() -> None:
    model = ScriptedChatModel(["Hello there, friend."])
    # Not by accident: reactivex's __getitem__ alone would make Python loop forever.
    assert isinstance(model.stream("Hello"), Iterable)
    chunks = list(model.stream("Hello"))
    assert "".join(chunk.text for chunk in chunks) == "Hello there, friend."
    assert chunks[-1].chunk_position == "last"


@pytest.mark.anyio
async def test_a_model_stream_is_iterated_with_async_for() -> None:
    model = ScriptedChatModel(["Hello there, friend."] * 2)
    texts = [chunk.text async for chunk in model.stream("Hello")]
    assert "".join(texts) == "Hello there, friend."
    # LangChain's async name for it.
    texts = [chunk.text async for chunk in model.astream("Hello")]
    assert "".join(texts) == "Hello there, friend."


def test_an_agents_observable_is_iterated_too() -> None:
    agent = create_agent(ScriptedChatModel(["Hi."]))
    types = [part["type"] for part in agent.observe({"messages": ["Hello"]})]
    assert types[0] == "values" and "messages" in types and types[-1] == "values"


@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_run_inside_a_running_loop_works_on_the_background_loop(library: str) -> None:
    agent = create_agent(ScriptedChatModel(["Streaming, one token at a time."]))
    words: list[Any] = []

    async def main() -> None:
        # .run() blocks this thread, whose loop would never run the agent: the run goes to
        # the background loop instead (a deadlock, silently, before).
        words.extend(agent.observe({"messages": ["Hi"]}).pipe(
            rxo.text(), ops.filter(bool), ops.to_list()
        ).run())

    thread = threading.Thread(target=anyio.run, args=(main,), kwargs={"backend": library},
                              daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), ".run() inside a running loop deadlocked"
    assert words == ["Streaming,", " one", " token", " at", " a", " time."]


def test_run_on_the_background_loop_itself_is_a_usage_error() -> None:
    inner = ScriptedChatModel(["inner"])

    @tool(thread=False)  # in place: on the loop the run is on
    def blocking() -> str:
        """Run a model call to the end, blocking."""
        return str(inner.stream("Hi").pipe(ops.to_list()).run())

    agent = create_agent(ScriptedChatModel([
        AIMessage(content="", tool_calls=[{"name": "blocking", "args": {}, "id": "b1"}]), "ok",
    ]), tools=[blocking])

    updates: list[Any] = []

    async def main() -> None:
        # With a loop running in this thread, stream() runs the agent on the background loop.
        updates.extend(agent.stream({"messages": ["Hi"]}, stream_mode="updates"))

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), ".run() on the background loop deadlocked"
    (result,) = [m for u in updates for m in u.get("tools", {}).get("messages", [])]
    assert result.status == "error" and "UsageError" in result.text
    assert "background loop" in result.text
def never_suspending(pulled: list[int], count: int = 2000) -> Any:
    """A model call that never suspends on its own (as a local model), counting its pulls."""

    def tokens(messages: Any, tools: Any) -> Iterator[str]:
        for _ in range(count):
            pulled[0] += 1
            yield "w "

    return FunctionChatModel(tokens).stream(HI)


def test_the_first_item_goes_out_at_once_then_the_producer_runs_a_full_buffer_ahead() -> None:
    pulled = [0]
    ahead: list[int] = []  # how far the producer was ahead when each item was taken
    for _ in to_iterator(never_suspending(pulled), max_buffer=16):
        ahead.append(pulled[0] - len(ahead) - 1)
    assert ahead[0] == 0, "the first item was handed over before a second was made"
    assert max(ahead) == 15, "once going, the producer fills the whole buffer of 16"


@pytest.mark.anyio
async def test_an_async_iterator_too_hands_over_the_first_item_at_once() -> None:
    pulled = [0]
    ahead: list[int] = []
    async for _ in to_async_iterator(never_suspending(pulled), max_buffer=16):
        ahead.append(pulled[0] - len(ahead) - 1)
    assert ahead[0] == 0
    assert max(ahead) == 15


@pytest.mark.anyio
async def test_the_producer_goes_on_once_the_consumer_is_down_to_half_the_buffer() -> None:
    pulled = [0]
    ahead: list[int] = []
    async for _ in to_async_iterator(never_suspending(pulled), max_buffer=16):
        ahead.append(pulled[0] - len(ahead) - 1)
        await anyio.sleep(0)  # the producer's turn, if it is free to go on
    steady = ahead[100:1900]  # past the first windows, before the end
    assert max(steady) == 15
    # Released at 8 left; trio may let the consumer take one more before the producer's turn.
    assert min(steady) in (7, 8)


# -- Ctrl-C ---------------------------------------------------------------------------------

_STUCK_TOOL_RUN = """
import signal
import threading
# A shell without job control starts background jobs with SIGINT ignored: Python's own
# handler, whatever this process was given.
signal.signal(signal.SIGINT, signal.default_int_handler)
from rxagent import create_agent
from rxagent.messages import AIMessage
from rxagent.testing import ScriptedChatModel

def wait_forever(city: str) -> str:
    \"\"\"A tool that never returns.\"\"\"
    print("\\ntool started", flush=True)
    if TO_TOOL_THREAD:  # the kernel's choice of thread for a process's signal, made here
        threading.Event().wait(0.3)  # (once the main thread waits for us, most likely)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
    threading.Event().wait()
    return "never"

call = {"name": "wait_forever", "args": {"city": "SF"}, "id": "call_1"}
model = ScriptedChatModel([AIMessage(content="", tool_calls=[call]), "done"])
agent = create_agent(model, tools=[wait_forever])
try:
    if HOW == "invoke":
        agent.invoke({"messages": ["hi"]})
    elif HOW == "in a loop":  # as in a notebook: this thread runs a loop, the run another
        import asyncio

        async def cell():
            for part in agent.stream({"messages": ["hi"]}, stream_mode="updates"):
                print(part, flush=True)

        asyncio.new_event_loop().run_until_complete(cell())
    elif HOW == "with":
        with agent.stream({"messages": ["hi"]}, stream_mode="updates") as stream:
            for part in stream:
                print(part, flush=True)
    else:
        for part in agent.stream({"messages": ["hi"]}, stream_mode="updates"):
            print(part, flush=True)
except KeyboardInterrupt:
    if HOW != "uncaught":
        print("\\ninterrupted", flush=True)
    else:
        raise
print("after", flush=True)
"""


@pytest.mark.parametrize("how", ["uncaught", "caught", "with"])
def test_ctrl_c_during_a_sync_tool_ends_the_iteration_without_waiting_for_the_tool(
    how: str,
) -> None:
    # The interrupt must leave the loop at once, and neither the iterator's end nor the
    # process's may then wait for a tool that no cancellation can stop (both waited forever).
    with subprocess.Popen(
        [sys.executable, "-c", f"HOW = {how!r}\nTO_TOOL_THREAD = False\n" + _STUCK_TOOL_RUN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:  # (other output may share the line)
                if "tool started" in line:
                    break
            else:
                raise AssertionError("the tool never started")
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
    if how != "uncaught":
        assert process.returncode == 0, stderr
        assert stdout.split()[-2:] == ["interrupted", "after"], stdout
    else:
        assert "KeyboardInterrupt" in stderr
        assert process.returncode == -signal.SIGINT


@pytest.mark.parametrize("how", ["caught", "with", "invoke", "in a loop"])
def test_ctrl_c_delivered_to_the_tools_thread_still_interrupts_the_main_thread(how: str) -> None:
    # The kernel gives a process's SIGINT to any of its threads. Python's handler runs in the
    # main thread, which slept in the loop's selector waiting for the tool: nothing woke it,
    # and Ctrl-C did nothing (seen in CI, once in a few hundred runs).
    completed = subprocess.run(
        [sys.executable, "-c", f"HOW = {how!r}\nTO_TOOL_THREAD = True\n" + _STUCK_TOOL_RUN],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split()[-2:] == ["interrupted", "after"], completed.stdout
    assert completed.stderr == ""  # nor a task's KeyboardInterrupt logged as never retrieved
