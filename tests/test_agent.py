"""The agent run as an Rx event stream: modes, shapes, bridges, cancellation and errors."""

from __future__ import annotations

import asyncio
import gc
import re
import sys
import threading
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import reactivex
import reactivex.operators as ops

from rxagent import (
    DEFAULT_MAX_BUFFER,
    ModelCallError,
    RecursionLimitError,
    ScriptExhaustedError,
    StreamWriter,
    UsageError,
    create_agent,
    get_stream_writer,
    to_iterator,
)
from rxagent import operators as rxo
from rxagent.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from rxagent.testing import FunctionChatModel, ScriptedChatModel
from rxagent.tools import tool
from tests.conftest import FakeClock

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in SF?"}]}
_ID = r"(lc_run--)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # random ids
# LangGraph 1.2's keys, in its order (an unnamed agent has no lc_agent_name, and no tags
# means no "tags" key); lc_versions is left out: it names LangChain's own packages.
METADATA_KEYS = [
    "ls_integration", "langgraph_step", "langgraph_node", "langgraph_triggers",
    "langgraph_path", "langgraph_checkpoint_ns", "checkpoint_ns", "ls_provider",
    "ls_model_type", "ls_model_name",
]


def call(name: str, call_id: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


def get_weather(city: str) -> str:
    """Get weather for a given city."""
    get_stream_writer()(f"looking up {city}")
    return f"It's always sunny in {city}!"


def weather_agent(**model_options: Any) -> Any:
    model = ScriptedChatModel(
        [call("get_weather", "call_1", city="SF"), "Sunny in SF."], **model_options
    )
    return create_agent(model, tools=[get_weather])


# -- shapes ---------------------------------------------------------------------------------


def test_values_start_with_the_input_state_and_follow_each_step() -> None:
    states = list(weather_agent().stream(QUESTION, stream_mode="values"))
    assert [len(state["messages"]) for state in states] == [1, 2, 3, 4]
    assert isinstance(states[0]["messages"][0], HumanMessage)
    assert isinstance(states[2]["messages"][2], ToolMessage)
    assert states[3]["messages"][3].text == "Sunny in SF."


def test_invoke_returns_the_final_state() -> None:
    state = weather_agent().invoke(QUESTION)
    assert [type(m).__name__ for m in state["messages"]] == [
        "HumanMessage", "AIMessage", "ToolMessage", "AIMessage",
    ]


def test_a_list_of_one_mode_gives_pairs() -> None:
    items = list(weather_agent().stream(QUESTION, stream_mode=["custom"]))
    assert items == [("custom", "looking up SF")]


def test_v2_gives_part_dicts() -> None:
    parts = list(weather_agent().stream(QUESTION, stream_mode=["updates", "custom"],
                                        version="v2"))
    assert [(p["type"], p["ns"]) for p in parts] == [
        ("updates", ()), ("custom", ()), ("updates", ()), ("updates", ()),
    ]
    assert parts[1]["data"] == "looking up SF"


def test_v2_values_parts_carry_interrupts_as_langgraphs_do() -> None:
    parts = list(weather_agent().stream(QUESTION, stream_mode=["values", "updates"],
                                        version="v2"))
    assert [list(p) for p in parts if p["type"] == "values"] == [
        ["type", "ns", "data", "interrupts"]
    ] * 4
    assert all(p["interrupts"] == () for p in parts if p["type"] == "values")
    assert all(list(p) == ["type", "ns", "data"] for p in parts if p["type"] == "updates")


def test_subgraphs_adds_the_namespace() -> None:
    single = list(weather_agent().stream(QUESTION, stream_mode="custom", subgraphs=True))
    assert single == [((), "looking up SF")]
    several = list(weather_agent().stream(QUESTION, stream_mode=["custom"], subgraphs=True))
    assert several == [((), "custom", "looking up SF")]


def test_unknown_stream_mode_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="stream_mode"):
        weather_agent().stream(QUESTION, stream_mode="tokens")  # type: ignore[arg-type]


def test_input_must_be_a_messages_dict() -> None:
    with pytest.raises(UsageError, match="'messages'"):
        list(weather_agent().stream({"question": "hi"}))


def test_messages_metadata_has_langgraph_keys_and_one_dict_per_call() -> None:
    pairs = list(weather_agent().stream(QUESTION, stream_mode="messages"))
    model_calls = [meta for chunk, meta in pairs if meta["langgraph_node"] == "model"]
    assert list(model_calls[0]) == METADATA_KEYS
    assert model_calls[0]["ls_integration"] == "langchain_chat_model"
    assert model_calls[0]["checkpoint_ns"] == model_calls[0]["langgraph_checkpoint_ns"]
    assert model_calls[0]["ls_provider"] == "scripted"
    assert model_calls[0]["ls_model_type"] == "chat"
    distinct = {id(meta) for meta in model_calls}
    assert len(distinct) == 2, "all chunks of one call share the call's metadata"
    steps = [meta["langgraph_step"] for _, meta in pairs]
    assert steps == sorted(steps) and steps[0] == 1 and steps[-1] == 3
    last_chunks = [c for c, m in pairs if isinstance(c, AIMessageChunk)
                   and c.chunk_position == "last"]
    assert len(last_chunks) == 2 and all(c.content_blocks == [] for c in last_chunks)


def test_tool_messages_metadata_is_langgraphs_one_task_per_call() -> None:
    model = ScriptedChatModel([
        AIMessage(content="", tool_calls=[
            {"name": "get_weather", "args": {"city": "SF"}, "id": "c1"},
            {"name": "get_weather", "args": {"city": "LA"}, "id": "c2"},
        ]),
        "Sunny.",
    ])
    agent = create_agent(model, tools=[get_weather])
    tool_metadata = [meta for message, meta in agent.stream(QUESTION, stream_mode="messages")
                     if isinstance(message, ToolMessage)]
    assert [list(meta) for meta in tool_metadata] == [[
        "ls_integration", "langgraph_step", "langgraph_node", "langgraph_triggers",
        "langgraph_path", "langgraph_checkpoint_ns",
    ]] * 2
    assert {meta["ls_integration"] for meta in tool_metadata} == {"langchain_create_agent"}
    assert sorted(meta["langgraph_path"] for meta in tool_metadata) == [
        ("__pregel_push", 0, False), ("__pregel_push", 1, False),
    ]
    task_nss = {meta["langgraph_checkpoint_ns"] for meta in tool_metadata}
    assert len(task_nss) == 2 and all(ns.startswith("tools:") for ns in task_nss)


def test_metadata_names_the_agent_and_tags_only_when_there_are_some() -> None:
    model = ScriptedChatModel(["Hello there."], tags=["fast"])
    agent = create_agent(model, name="greeter")
    metadata = next(iter(agent.stream(QUESTION, {"tags": ["web"]}, stream_mode="messages")))[1]
    keys = list(metadata)
    assert keys[:2] == ["ls_integration", "lc_agent_name"] and keys[-1] == "tags"
    assert metadata["lc_agent_name"] == "greeter"
    assert metadata["tags"] == ["web", "fast"]


def test_a_nodes_messages_come_before_its_update_and_custom_before_the_tool_update() -> None:
    order = [mode for mode, _ in weather_agent().stream(
        QUESTION, stream_mode=["messages", "updates", "custom"])]
    first_update = order.index("updates")
    assert set(order[:first_update]) == {"messages"}
    tool_update = [i for i, m in enumerate(order) if m == "updates"][1]
    assert order.index("custom") < tool_update


# -- one run, one Observable -------------------------------------------------------------


def _collect(source: reactivex.Observable[Any]) -> list[Any]:
    """Everything ``source`` emits, subscribed outside any loop; a failure if it never ends."""
    items: list[Any] = []
    ended: list[Any] = []
    done = threading.Event()
    source.subscribe(items.append, lambda error: (ended.append(error), done.set()), done.set)
    assert done.wait(60), "the stream did not end"
    if ended:
        raise ended[0]
    return items


def test_observe_is_cold_and_each_subscription_is_one_run() -> None:
    model = ScriptedChatModel(["First run.", "Second run."])
    run = create_agent(model).observe(QUESTION)
    assert model.calls == [], "nothing runs before a subscription"
    first = _collect(run.pipe(rxo.text()))
    second = _collect(run.pipe(rxo.text()))
    assert ("".join(first), "".join(second)) == ("First run.", "Second run.")
    assert len(model.calls) == 2


def test_one_subscription_emits_every_mode_as_v2_parts() -> None:
    parts = _collect(weather_agent().observe(QUESTION))
    assert all(set(part) == ({"type", "ns", "data", "interrupts"} if part["type"] == "values"
                             else {"type", "ns", "data"}) for part in parts)
    assert {part["type"] for part in parts} == set(rxo.MODES)
    assert {part["ns"] for part in parts} == {()}


@pytest.mark.parametrize("mode", ["values", "updates", "messages", "custom"])
def test_a_mode_operator_is_a_filter_on_the_parts(mode: str) -> None:
    parts = _collect(weather_agent().observe(QUESTION))
    picked = _collect(weather_agent().observe(QUESTION).pipe(getattr(rxo, mode)()))
    filtered = [part["data"] for part in parts if part["type"] == mode]
    assert picked, "the run has parts of this mode"
    assert list(map(_comparable, picked)) == list(map(_comparable, filtered))


def _streamed_then_waiting(where: str) -> tuple[Any, anyio.Event]:
    """An agent whose model (or a model its tool calls) sends one token, then waits until
    the consumer has seen it before it sends the rest."""
    seen_first = anyio.Event()

    async def reply(messages: Any, tools: Any) -> AsyncIterator[str]:
        yield "first"
        with anyio.fail_after(10):  # were the token held back until the end: a failure
            await seen_first.wait()
        yield " last"

    if where == "the agent's own call":
        return create_agent(FunctionChatModel(reply)), seen_first
    inner = FunctionChatModel(reply)

    async def ask_inner() -> str:
        """Asks another model."""
        return (await inner.ainvoke([{"role": "user", "content": "q"}])).text

    agent = create_agent(ScriptedChatModel([call("ask_inner", "c1"), "ok"]), tools=[ask_inner])
    return agent, seen_first


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["the agent's own call", "a call inside a tool"])
async def test_a_calls_chunks_reach_the_consumer_while_the_call_goes_on(where: str) -> None:
    agent, seen_first = _streamed_then_waiting(where)
    texts = []
    async for chunk, _ in agent.astream(QUESTION, stream_mode="messages"):
        texts.append(chunk.text)
        if chunk.text == "first":
            seen_first.set()
    assert "first" in texts and " last" in texts


def _asks_a_model_from_a_thread() -> Any:
    inner = ScriptedChatModel(["inner words here"])

    @tool(thread=True)
    def ask_inner() -> str:
        """Asks a model from a worker thread."""
        return inner.invoke([{"role": "user", "content": "q"}]).text

    script = [call("ask_inner", "c1"), "Three words here."]
    return create_agent(ScriptedChatModel(script), tools=[ask_inner])


@pytest.mark.parametrize(
    "stream_mode", ["messages", ["messages"]], ids=["handed over directly", "through the filter"]
)
def test_every_chunk_of_a_call_carries_the_calls_one_metadata_dict(stream_mode: Any) -> None:
    items = list(_asks_a_model_from_a_thread().stream(QUESTION, stream_mode=stream_mode))
    pairs = [item[1] if isinstance(stream_mode, list) else item for item in items]
    by_call: dict[str, set[int]] = {}
    for chunk, metadata in pairs:
        if isinstance(chunk, AIMessageChunk):
            by_call.setdefault(str(chunk.id), set()).add(id(metadata))
    assert len(by_call) == 3, "two calls of the agent's model, one from the tool's thread"
    assert all(len(dicts) == 1 for dicts in by_call.values()), "one dict per call"
    assert len(set.union(*by_call.values())) == 3, "and a dict of its own for each call"


def test_parts_written_in_a_worker_thread_reach_the_subscriber_on_the_runs_loop() -> None:
    tool_threads: list[int] = []

    @tool(thread=True)
    def work() -> str:
        """Reports from its worker thread."""
        tool_threads.append(threading.get_ident())
        writer = get_stream_writer()
        for i in range(300):
            writer(i)
        return "done"

    agent = create_agent(ScriptedChatModel([call("work", "c1"), "ok"]), tools=[work])
    threads: set[int] = set()
    custom: list[Any] = []
    done = threading.Event()

    def on_next(part: Any) -> None:
        threads.add(threading.get_ident())
        if part["type"] == "custom":
            custom.append(part["data"])

    agent.observe(QUESTION).subscribe(on_next, lambda error: done.set(), done.set)
    assert done.wait(60)
    assert custom == list(range(300))
    assert len(threads) == 1, "every part is delivered on one thread, the run's loop"
    assert tool_threads[0] not in threads


# -- where the work runs ---------------------------------------------------------------------


def _thread_recording_agent(threads: dict[str, list[int]]) -> Any:
    """An agent recording the threads its model and its async tool run on."""

    def reply(messages: Any, tools: Any) -> Any:
        threads.setdefault("model", []).append(threading.get_ident())
        return call("note", "c1") if len(messages) == 1 else "noted"

    async def note() -> str:
        """Notes the thread."""
        threads.setdefault("tool", []).append(threading.get_ident())
        return "ok"

    return create_agent(FunctionChatModel(reply), tools=[note])


@pytest.mark.anyio
async def test_subscribing_inside_an_event_loop_runs_the_run_on_that_loop() -> None:
    threads: dict[str, list[int]] = {}
    delivered: set[int] = set()
    done = threading.Event()
    _thread_recording_agent(threads).observe(QUESTION).subscribe(
        lambda part: delivered.add(threading.get_ident()), lambda error: done.set(), done.set
    )
    with anyio.fail_after(60):
        while not done.is_set():
            await anyio.sleep(0.001)
    here = threading.get_ident()
    assert threads == {"model": [here, here], "tool": [here]}
    assert delivered == {here}


def _run_outside_any_loop(agent: Any) -> None:
    done = threading.Event()
    agent.observe(QUESTION).subscribe(on_error=lambda error: done.set(), on_completed=done.set)
    assert done.wait(60)


def test_outside_any_loop_every_run_goes_on_one_shared_background_loop_thread() -> None:
    threads: dict[str, list[int]] = {}
    agent = _thread_recording_agent(threads)
    _run_outside_any_loop(agent)
    _without_hanging(lambda: _run_outside_any_loop(agent))  # from another thread, too
    (background,) = set(threads["model"]) | set(threads["tool"])
    assert background != threading.get_ident()
    assert len(threads["model"]) == 4


def test_stream_runs_the_run_in_the_consumers_own_thread() -> None:
    threads: dict[str, list[int]] = {}
    agent = _thread_recording_agent(threads)

    def consume() -> tuple[int, list[Any]]:
        return threading.get_ident(), list(agent.stream(QUESTION, stream_mode="updates"))

    consumer, updates = _without_hanging(consume)
    assert len(updates) == 3
    assert threads == {"model": [consumer, consumer], "tool": [consumer]}, "no worker thread"


def test_stream_in_a_thread_that_runs_a_loop_works_on_the_background_loop() -> None:
    threads: dict[str, list[int]] = {}
    agent = _thread_recording_agent(threads)
    _run_outside_any_loop(agent)
    (background,) = set(threads.pop("model"))
    threads.clear()

    async def notebook_cell() -> list[Any]:
        return list(agent.stream(QUESTION, stream_mode="updates"))

    assert len(asyncio.run(notebook_cell())) == 3
    assert threads == {"model": [background, background], "tool": [background]}


# -- Rx ----------------------------------------------------------------------------------


def test_observe_with_operators() -> None:
    texts = weather_agent().observe(QUESTION).pipe(
        rxo.messages(),
        ops.filter(lambda pair: isinstance(pair[0], AIMessageChunk)),
        ops.map(lambda pair: pair[0].text),
        ops.filter(bool),
        ops.to_list(),
    ).run()
    assert "".join(texts) == "Sunny in SF."


def test_merged_single_mode_projections_equal_asking_for_several_modes() -> None:
    asked = list(weather_agent().stream(QUESTION, stream_mode=["updates", "custom"]))
    shared = weather_agent().observe(QUESTION).pipe(ops.publish())
    merged: list[Any] = []
    done = threading.Event()
    reactivex.merge(
        shared.pipe(rxo.updates(), ops.map(lambda d: ("updates", d))),
        shared.pipe(rxo.custom(), ops.map(lambda d: ("custom", d))),
    ).subscribe(merged.append, on_completed=done.set)
    shared.connect()
    assert done.wait(10)
    assert [mode for mode, _ in merged] == [mode for mode, _ in asked]
    assert _strip_ids(merged) == _strip_ids(asked), "the same payloads, message ids aside"


def _busy_agent() -> Any:
    """Every source of parts at once: a streaming model, sync tools writing from their threads,
    an async tool writing on the loop, a nested agent streaming under its namespace, and a
    model called from a worker thread."""

    async def tally(n: int) -> str:
        """Counts aloud."""
        for i in range(n):
            await get_stream_writer().asend(f"tally {i}")
        return str(n)

    inner = ScriptedChatModel(["inner words here"])

    @tool(thread=True)
    def ask_inner() -> str:
        """Asks a model from a worker thread."""
        return inner.invoke([{"role": "user", "content": "q"}]).text

    @tool(thread=True)
    def count_off(n: int) -> str:
        """Counts aloud from a worker thread."""
        writer = get_stream_writer()
        for i in range(n):
            writer(f"count {i}")
        return str(n)

    helper = create_agent(ScriptedChatModel(["helper says hi"]), name="helper")
    reply = AIMessage(content="On it.", tool_calls=[
        {"name": "get_weather", "args": {"city": "SF"}, "id": "c1"},
        {"name": "tally", "args": {"n": 3}, "id": "c2"},
        {"name": "helper", "args": {"request": "hi"}, "id": "c3"},
        {"name": "ask_inner", "args": {}, "id": "c4"},
        {"name": "count_off", "args": {"n": 5}, "id": "c5"},
    ])
    return create_agent(ScriptedChatModel([reply, "All done."]),
                        tools=[get_weather, tally, helper, ask_inner, count_off])


def _comparable(payload: Any) -> str:
    if isinstance(payload, tuple):  # (message, metadata): the metadata names random task ids
        message, metadata = payload
        payload = type(message).__name__, message.text, metadata["langgraph_node"]
    return re.sub(_ID, "<id>", str(payload))


@pytest.mark.parametrize("mode", ["messages", "custom", "updates", "values"])
def test_one_mode_handed_over_directly_equals_it_through_the_filter(mode: str) -> None:
    # stream_mode=mode lets the run hand payloads straight to the consumer; [mode] goes
    # through the general filter. Parallel tools make the order of their parts vary.
    direct = list(_busy_agent().stream(QUESTION, stream_mode=mode))
    filtered = [payload for _, payload in _busy_agent().stream(QUESTION, stream_mode=[mode])]
    assert sorted(map(_comparable, direct)) == sorted(map(_comparable, filtered))
    assert len(direct) > 3


# -- bounded memory: the demand ------------------------------------------------------------
# How far a producer got ahead of the consumer is counted as items made minus items taken.

BUFFER = 8
QUEUE = 1024  # the parts a worker thread may queue for the run's loop before it waits


def _writes_from_a_thread(count: int, written: list[int]) -> Any:
    def chatty() -> str:
        """Writes a lot, from its worker thread (a tool that asks for its writer runs there)."""
        writer = get_stream_writer()
        for i in range(count):
            writer(i)
            written[0] += 1
        return "done"

    return create_agent(ScriptedChatModel([call("chatty", "c1"), "ok"]), tools=[chatty])


@pytest.mark.anyio
async def test_a_sync_tools_writer_waits_while_the_consumer_is_behind() -> None:
    written = [0]
    agent = _writes_from_a_thread(5000, written)
    taken = ahead = 0
    with anyio.fail_after(60):
        async for item in agent.astream(QUESTION, stream_mode="custom", max_buffer=BUFFER):
            assert item == taken
            taken += 1
            ahead = max(ahead, written[0] - taken)
            for _ in range(2):  # slower than the tool, and the loop runs meanwhile
                await anyio.sleep(0)
    assert taken == 5000
    # The buffer, and the batch of parts from the tool's thread that lands in it at once.
    assert ahead <= BUFFER + QUEUE + 1


def test_a_worker_threads_queue_for_the_loop_holds_at_most_1024_parts() -> None:
    written, received, ahead = [0], [0], [0]
    done = threading.Event()

    def on_next(part: Any) -> None:
        if part["type"] == "custom":
            received[0] += 1
            ahead[0] = max(ahead[0], written[0] - received[0])
            sum(range(2000))  # slower than the tool

    # A bare subscriber has no buffer and never holds the run: the queue is the only bound.
    _writes_from_a_thread(5000, written).observe(QUESTION).subscribe(
        on_next, lambda error: done.set(), done.set
    )
    assert done.wait(60)
    assert received[0] == 5000
    assert ahead[0] <= QUEUE + 1


@pytest.mark.anyio
async def test_an_async_tools_asend_waits_while_the_consumer_is_behind() -> None:
    written = [0]

    async def chatty() -> str:
        """Writes a lot, waiting for room."""
        writer = get_stream_writer()
        for i in range(2000):
            await writer.asend(i)
            written[0] += 1
        return "done"

    agent = create_agent(ScriptedChatModel([call("chatty", "c1"), "ok"]), tools=[chatty])
    taken = ahead = 0
    with anyio.fail_after(60):
        async for _ in agent.astream(QUESTION, stream_mode="custom", max_buffer=BUFFER):
            taken += 1
            ahead = max(ahead, written[0] - taken)
            await anyio.sleep(0)
    assert taken == 2000
    assert ahead <= BUFFER + 1


@pytest.mark.anyio
async def test_concurrent_producers_each_add_at_most_one_item_past_a_full_buffer() -> None:
    written = [0]

    async def chatty(n: int) -> str:
        """Writes n items, waiting for room."""
        writer = get_stream_writer()
        for i in range(n):
            await writer.asend(i)
            written[0] += 1
        return "done"

    reply = AIMessage(content="", tool_calls=[
        {"name": "chatty", "args": {"n": 1000}, "id": f"c{i}"} for i in range(3)
    ])
    agent = create_agent(ScriptedChatModel([reply, "ok"]), tools=[chatty])
    taken = ahead = 0
    with anyio.fail_after(60):
        async for _ in agent.astream(QUESTION, stream_mode="custom", max_buffer=BUFFER):
            taken += 1
            ahead = max(ahead, written[0] - taken)
            await anyio.sleep(0)
    assert taken == 3000
    assert ahead <= BUFFER + 3


def _pulls_counted(pulled: list[int], count: int) -> FunctionChatModel:
    """A model that never suspends on its own (as a local model), counting its pulls."""

    def tokens(messages: Any, tools: Any) -> Iterator[str]:
        for _ in range(count):
            pulled[0] += 1
            yield "w "

    return FunctionChatModel(tokens)


@pytest.mark.parametrize("tokens", [1_000, 10_000])
def test_a_model_runs_at_most_a_buffer_ahead_however_long_its_answer(tokens: int) -> None:
    pulled = [0]
    agent = create_agent(_pulls_counted(pulled, tokens))
    taken = ahead = 0
    for mode, _ in agent.stream(QUESTION, stream_mode=["messages", "updates", "values"],
                                max_buffer=BUFFER):
        if mode == "messages":
            taken += 1
            ahead = max(ahead, pulled[0] - taken)
    assert taken == tokens + 1  # and the last chunk
    assert ahead <= BUFFER + 1


def test_the_iterators_demand_reaches_the_model_through_rx_operators() -> None:
    pulled = [0]
    source = create_agent(_pulls_counted(pulled, 3000)).observe(QUESTION).pipe(
        rxo.messages(),
        ops.map(lambda pair: pair[0]),
        ops.filter(lambda chunk: bool(chunk.text)),
    )
    taken = ahead = 0
    for _ in to_iterator(source, max_buffer=BUFFER):
        taken += 1
        ahead = max(ahead, pulled[0] - taken)
    assert taken == 3000
    assert ahead <= BUFFER + 1


@pytest.mark.anyio
@pytest.mark.parametrize("caller", ["async tool", "sync tool in a thread"])
async def test_a_model_called_inside_a_tool_waits_for_the_consumer_too(caller: str) -> None:
    pulled = [0]
    inner = _pulls_counted(pulled, 3000)

    async def ask_async() -> str:
        """Asks another model."""
        return (await inner.ainvoke([{"role": "user", "content": "q"}])).text

    @tool(thread=True)
    def ask_sync() -> str:
        """Asks another model, blocking its worker thread."""
        return inner.invoke([{"role": "user", "content": "q"}]).text

    chosen = ask_async if caller == "async tool" else ask_sync
    name = "ask_async" if caller == "async tool" else "ask_sync"
    agent = create_agent(ScriptedChatModel([call(name, "c1"), "ok"]), tools=[chosen])
    taken = ahead = 0
    with anyio.fail_after(60):
        async for chunk, metadata in agent.astream(QUESTION, stream_mode="messages",
                                                   max_buffer=BUFFER):
            if metadata["langgraph_node"] == "tools" and isinstance(chunk, AIMessageChunk):
                taken += 1
                ahead = max(ahead, pulled[0] - taken)
            for _ in range(2):
                await anyio.sleep(0)
    assert taken == 3001
    # From a worker thread, the queue's batch may land in the buffer at once.
    assert ahead <= (BUFFER + 1 if caller == "async tool" else BUFFER + QUEUE + 1)


def test_stream_and_astream_buffer_256_items_by_default() -> None:
    assert DEFAULT_MAX_BUFFER == 256

    def sync_ahead() -> int:
        pulled = [0]
        taken = ahead = 0
        for _ in create_agent(_pulls_counted(pulled, 2000)).stream(
            QUESTION, stream_mode="messages"
        ):
            taken += 1
            ahead = max(ahead, pulled[0] - taken)
        assert taken == 2001, "paused, not dropped: every token arrives"
        return ahead

    async def async_ahead() -> int:
        pulled = [0]
        taken = ahead = 0
        async for _ in create_agent(_pulls_counted(pulled, 2000)).astream(
            QUESTION, stream_mode="messages"
        ):
            taken += 1
            ahead = max(ahead, pulled[0] - taken)
        assert taken == 2001
        return ahead

    assert sync_ahead() == 255, "the producer filled a buffer of 256"
    assert anyio.run(async_ahead) == 255


# -- async -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_astream_and_ainvoke() -> None:
    custom = [c async for c in weather_agent().astream(QUESTION, stream_mode="custom")]
    assert custom == ["looking up SF"]
    state = await weather_agent().ainvoke(QUESTION)
    assert state["messages"][-1].text == "Sunny in SF."


@pytest.mark.anyio
async def test_async_tools_run_concurrently_and_updates_come_as_each_finishes() -> None:
    second_started = anyio.Event()

    async def slow(x: int) -> str:
        """Waits for the fast one to start, so the calls must overlap."""
        with anyio.fail_after(10):
            await second_started.wait()
        return f"slow {x}"

    async def fast(x: int) -> str:
        """Returns at once."""
        second_started.set()
        return f"fast {x}"

    reply = AIMessage(content="", tool_calls=[
        {"name": "slow", "args": {"x": 1}, "id": "a"},
        {"name": "fast", "args": {"x": 2}, "id": "b"},
    ])
    agent = create_agent(ScriptedChatModel([reply, "done"]), tools=[slow, fast])
    updates = [u async for u in agent.astream(QUESTION, stream_mode="updates")]
    tool_updates = [u["tools"]["messages"][0].content for u in updates if "tools" in u]
    assert tool_updates == ["fast 2", "slow 1"], "each update arrives as its call finishes"


# -- cancellation ------------------------------------------------------------------------


def test_leaving_the_loop_cancels_a_tool_that_waits_forever() -> None:
    _without_hanging(_leave_a_loop_while_a_tool_waits_forever)


def _leave_a_loop_while_a_tool_waits_forever() -> None:
    cancelled = threading.Event()

    async def wait_forever() -> str:
        """Never returns on its own."""
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return "unreachable"

    agent = create_agent(ScriptedChatModel([call("wait_forever", "w")]), tools=[wait_forever])
    seen = []
    for mode, _ in agent.stream(QUESTION, stream_mode=["updates", "messages"]):
        seen.append(mode)
        if mode == "updates":
            break  # the model step is done; the tool is now waiting
    gc.collect()
    assert cancelled.wait(10)
    assert seen[-1] == "updates"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_aclose_cancels_the_model_call_in_flight(backend: str) -> None:
    cancelled = threading.Event()

    async def endless(messages: Any, tools: Any) -> AsyncIterator[str]:
        try:
            while True:
                yield "tick "
                await anyio.sleep(0)
        finally:
            cancelled.set()

    async def take_twenty() -> None:
        agent = create_agent(FunctionChatModel(endless))
        stream = agent.astream(QUESTION, stream_mode="messages")
        count = 0
        async for _ in stream:
            count += 1
            if count == 20:
                break
        await stream.aclose()  # type: ignore[attr-defined]

    _without_hanging(lambda: anyio.run(take_twenty, backend=backend))
    assert cancelled.is_set()


# -- errors --------------------------------------------------------------------------------


def test_an_error_comes_after_every_event_before_it() -> None:
    agent = create_agent(ScriptedChatModel([call("get_weather", "c", city="SF")]),
                         tools=[get_weather])
    seen: list[str] = []

    def consume() -> None:
        with pytest.raises(ScriptExhaustedError, match="script has 1 replies"):
            for mode, _ in agent.stream(QUESTION, stream_mode=["updates", "custom"]):
                seen.append(mode)

    _without_hanging(consume)  # an error that never arrived would leave the stream open
    assert seen == ["updates", "custom", "updates"]


def test_a_failing_model_call_keeps_its_partial_message() -> None:
    def failing(messages: Any, tools: Any) -> Iterator[str]:
        yield "Half"
        yield " an"
        raise ModelCallError("connection dropped")

    tokens: list[str] = []
    with pytest.raises(ModelCallError) as caught:
        for chunk, _ in create_agent(FunctionChatModel(failing)).stream(
            QUESTION, stream_mode="messages"
        ):
            tokens.append(chunk.text)
    assert tokens == ["Half", " an"]
    assert caught.value.partial is not None and caught.value.partial.text == "Half an"


def test_observe_delivers_the_error_to_on_error() -> None:
    agent = create_agent(ScriptedChatModel([]))
    errors: list[Exception] = []
    done = threading.Event()
    agent.observe(QUESTION).subscribe(on_error=lambda e: (errors.append(e), done.set()))
    assert done.wait(10)
    assert isinstance(errors[0], ScriptExhaustedError)


def test_recursion_limit_ends_a_runaway_loop() -> None:
    looping = FunctionChatModel(lambda messages, tools: call("get_weather", f"c{len(messages)}",
                                                             city="SF"))
    agent = create_agent(looping, tools=[get_weather])
    with pytest.raises(RecursionLimitError, match="Recursion limit of 5"):
        agent.invoke(QUESTION, {"recursion_limit": 5})


@pytest.mark.parametrize("rounds", [1, 2, 5])
def test_a_recursion_limit_of_n_lets_exactly_n_steps_run(rounds: int) -> None:
    # Each round of tool calls is two steps (model, tools); the final answer is one more.
    steps = 2 * rounds + 1

    def agent() -> Any:
        script: list[Any] = [call("get_weather", f"c{i}", city="SF") for i in range(rounds)]
        return create_agent(ScriptedChatModel([*script, "Done."]), tools=[get_weather])

    final = agent().invoke(QUESTION, {"recursion_limit": steps})
    assert final["messages"][-1].text == "Done.", f"{steps} steps pass a limit of {steps}"
    seen: list[str] = []
    with pytest.raises(RecursionLimitError, match=f"Recursion limit of {steps - 1} "):
        for update in agent().stream(QUESTION, {"recursion_limit": steps - 1},
                                     stream_mode="updates"):
            seen.extend(update)
    assert len(seen) == steps - 1, "step N + 1 fails before it starts; the N before it ran"


def test_a_runaway_loop_stops_at_the_step_past_the_limit() -> None:
    looping = FunctionChatModel(lambda messages, tools: call("get_weather", f"c{len(messages)}",
                                                             city="SF"))
    agent = create_agent(looping, tools=[get_weather])
    seen: list[str] = []
    with pytest.raises(RecursionLimitError):
        for update in agent.stream(QUESTION, {"recursion_limit": 5}, stream_mode="updates"):
            seen.extend(update)
    assert seen == ["model", "tools", "model", "tools", "model"]


def test_tool_errors_and_unknown_tools_become_error_tool_messages() -> None:
    def broken(x: int) -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    reply = AIMessage(content="", tool_calls=[
        {"name": "broken", "args": {"x": 1}, "id": "a"},
        {"name": "missing", "args": {}, "id": "b"},
        {"name": "broken", "args": {"x": "not a number"}, "id": "c"},
    ])
    agent = create_agent(ScriptedChatModel([reply, "sorry"]), tools=[broken])
    messages = agent.invoke(QUESTION)["messages"]
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    assert all(m.status == "error" for m in results.values())
    assert "disk on fire" in results["a"].text
    assert "'missing' is not a valid tool" in results["b"].text
    assert "x" in results["c"].text
    assert messages[-1].text == "sorry", "the run goes on after tool errors"


# -- disable streaming ----------------------------------------------------------------------


def _messages_and_rest(agent: Any) -> tuple[list[Any], list[Any]]:
    items = list(agent.stream(QUESTION, stream_mode=["messages", "updates", "values"]))
    messages = [data for mode, data in items if mode == "messages"]
    rest = [(mode, repr(data)) for mode, data in items if mode != "messages"]
    return messages, rest


def _strip_ids(items: list[Any]) -> list[Any]:
    return [(mode, re.sub(_ID, "<id>", str(data))) for mode, data in items]


def test_disable_streaming_true_gives_one_whole_message_per_call() -> None:
    streamed, rest = _messages_and_rest(weather_agent())
    whole, rest_whole = _messages_and_rest(weather_agent(disable_streaming=True))
    model_messages = [c for c, m in whole if m["langgraph_node"] == "model"]
    assert [type(m) for m in model_messages] == [AIMessage, AIMessage], "whole, not chunks"
    assert model_messages[0].tool_calls[0]["args"] == {"city": "SF"}
    assert model_messages[1].text == "Sunny in SF."
    assert len(streamed) > len(whole)
    assert _strip_ids(rest) == _strip_ids(rest_whole), "updates and values do not change"


def test_disable_streaming_tool_calling_streams_text_but_whole_tool_calls() -> None:
    reply = AIMessage(content="Let me check.", tool_calls=[
        {"name": "get_weather", "args": {"city": "SF"}, "id": "c1"}])
    agent = create_agent(
        ScriptedChatModel([reply, "Sunny."], disable_streaming="tool_calling"),
        tools=[get_weather],
    )
    chunks = [c for c, m in agent.stream(QUESTION, stream_mode="messages")
              if m["langgraph_node"] == "model"]
    texts = [c.text for c in chunks if c.text]
    assert texts == ["Let", " me", " check.", "Sunny."]
    calls = [c.tool_call_chunks for c in chunks if c.tool_call_chunks]
    assert calls == [[{"name": "get_weather", "args": '{"city":"SF"}', "id": "c1", "index": 0,
                       "type": "tool_call_chunk"}]]


def test_disable_streaming_tool_calling_sends_each_call_just_before_the_last_chunk() -> None:
    reply = AIMessage(content="Let me check.", tool_calls=[
        {"name": "get_weather", "args": {"city": "SF"}, "id": "c1"},
        {"name": "get_weather", "args": {"city": "LA"}, "id": "c2"},
    ])

    def agent(disable_streaming: Any, first: AIMessage = reply) -> Any:
        model = ScriptedChatModel([first, "Sunny."], disable_streaming=disable_streaming)
        return create_agent(model, tools=[get_weather])

    chunks = [c for c, m in agent("tool_calling").stream(QUESTION, stream_mode="messages")
              if m["langgraph_node"] == "model" and m["langgraph_step"] == 1]
    kinds = ["call" if c.tool_call_chunks else "last" if c.chunk_position == "last"
             else "text" for c in chunks]
    assert kinds[-3:] == ["call", "call", "last"], "whole calls, then the last chunk"
    assert set(kinds[:-3]) <= {"text"}
    # One call here: two run in parallel and may finish in either order, run to run.
    single = AIMessage(content="Let me check.", tool_calls=reply.tool_calls[:1])
    _, rest = _messages_and_rest(agent(False, single))
    _, rest_whole_calls = _messages_and_rest(agent("tool_calling", single))
    assert _strip_ids(rest) == _strip_ids(rest_whole_calls), "updates and values do not change"


def test_nostream_model_is_left_out_of_messages_only() -> None:
    model = ScriptedChatModel([call("get_weather", "c1", city="SF"), "Sunny."])
    model.tags.append("nostream")
    agent = create_agent(model, tools=[get_weather])
    items = list(agent.stream(QUESTION, stream_mode=["messages", "updates"]))
    nodes = [data[1]["langgraph_node"] for mode, data in items if mode == "messages"]
    assert nodes == ["tools"]
    assert [mode for mode, _ in items].count("updates") == 3


# -- models and writers inside tools ---------------------------------------------------------


def test_a_model_called_inside_a_tool_streams_in_messages() -> None:
    inner = ScriptedChatModel(["inner answer"])

    async def ask_inner(question: str) -> str:
        """Asks another model."""
        reply = await inner.ainvoke([{"role": "user", "content": question}])
        return reply.text

    agent = create_agent(ScriptedChatModel([call("ask_inner", "c1", question="q"), "ok"]),
                         tools=[ask_inner])
    pairs = list(agent.stream(QUESTION, stream_mode="messages"))
    from_tools = [c.text for c, m in pairs
                  if m["langgraph_node"] == "tools" and isinstance(c, AIMessageChunk)]
    assert "".join(from_tools) == "inner answer"


def test_sync_tools_run_in_worker_threads_and_write_from_there() -> None:
    threads: list[int] = []

    def work(writer: StreamWriter) -> str:
        """Reports from its thread."""
        threads.append(threading.get_ident())
        for i in range(100):
            writer(i)
        return "done"

    agent = create_agent(ScriptedChatModel([call("work", "c1"), "ok"]), tools=[work])
    custom = list(agent.stream(QUESTION, stream_mode="custom", max_buffer=4))
    assert custom == list(range(100))
    assert threads and threads[0] != threading.get_ident()


def _switching_tool(threads: list[int]) -> Any:
    """A sync tool that is quick and quiet for two calls (it then runs in place), and writes
    1,000 items from its third on."""

    def work() -> str:
        """Works, and may report."""
        threads.append(threading.get_ident())
        if len(threads) >= 3:
            writer = get_stream_writer()
            for i in range(1000):
                writer(i)
        return "done"

    return work


def test_a_tool_in_place_that_starts_writing_loses_nothing_and_goes_back_to_a_thread(
    clock: FakeClock,
) -> None:
    threads: list[int] = []
    script: list[Any] = [call("work", f"c{i}") for i in range(4)] + ["ok"]
    agent = create_agent(ScriptedChatModel(script), tools=[_switching_tool(threads)])

    def consume() -> tuple[int, list[Any]]:
        # The third call runs in place and writes more than the buffer of 4 holds.
        parts = list(agent.stream(QUESTION, stream_mode=["custom", "updates"], max_buffer=4))
        return threading.get_ident(), parts

    # Were its writer to wait for room, it would wait for the loop it holds: a deadlock.
    here, parts = _without_hanging(consume)
    assert [thread == here for thread in threads] == [False, False, True, False]
    custom = [data for mode, data in parts if mode == "custom"]
    assert custom == list(range(1000)) * 2  # calls 3 and 4, each one whole and in order
    third = [i for i, (mode, data) in enumerate(parts) if mode == "updates" and "tools" in data][2]
    assert [mode for mode, _ in parts[third - 1000:third]] == ["custom"] * 1000


def test_a_tool_in_place_that_starts_calling_a_model_does_not_wait_for_the_loop_it_holds(
    clock: FakeClock,
) -> None:
    tokens = 3000  # more than the run's queue for other threads and the consumer's buffer
    inner = ScriptedChatModel([" ".join(["w"] * tokens)] * 2)
    threads: list[int] = []

    def work() -> str:
        """Quick and quiet, until it asks another model (its third call: in place, after two
        quick ones)."""
        threads.append(threading.get_ident())
        asks = len(threads) == 3
        return inner.invoke([{"role": "user", "content": "q"}]).text if asks else "quiet"

    script: list[Any] = [call("work", f"c{i}") for i in range(4)] + ["ok"]
    agent = create_agent(ScriptedChatModel(script), tools=[work])

    def consume() -> tuple[int, list[Any]]:
        parts = []
        for mode, data in agent.stream(QUESTION, stream_mode=["messages", "updates"],
                                       max_buffer=8):
            parts.append((mode, data))
        return threading.get_ident(), parts

    here, parts = _without_hanging(consume)
    assert [thread == here for thread in threads] == [False, False, True, False]
    tool_updates = [i for i, (mode, data) in enumerate(parts)
                    if mode == "updates" and "tools" in data]
    third_call = [data[0].text for mode, data in parts[tool_updates[1]:tool_updates[2]]
                  if mode == "messages" and isinstance(data[0], AIMessageChunk)]
    assert "".join(third_call) == " ".join(["w"] * tokens), "all of it, before the update"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("thread", [False, True], ids=["in place", "in a thread"])
def test_a_model_called_from_a_sync_tool_streams_before_its_update(
    thread: bool, backend: str
) -> None:
    tokens = 3000  # more than the run's queue for other threads and the consumer's buffer
    inner = ScriptedChatModel([" ".join(["w"] * tokens)])

    @tool(thread=thread)
    def ask_inner() -> str:
        """Asks another model, blocking."""
        return inner.invoke([{"role": "user", "content": "q"}]).text

    agent = create_agent(ScriptedChatModel([call("ask_inner", "c1"), "ok"]), tools=[ask_inner])

    async def collect() -> list[Any]:
        return [part async for part in agent.astream(
            QUESTION, stream_mode=["messages", "updates"], max_buffer=8)]

    # In place, the call holds the loop: were the model to wait for it, a deadlock.
    parts = _without_hanging(lambda: anyio.run(collect, backend=backend))
    inner_text = "".join(
        chunk.text for mode, (chunk, *_) in ((m, d if m == "messages" else (None,))
                                             for m, d in parts)
        if mode == "messages" and isinstance(chunk, AIMessageChunk)
        and chunk.text and chunk.text != "ok"
    )
    assert inner_text == " ".join(["w"] * tokens)
    tool_update = next(i for i, (mode, data) in enumerate(parts)
                       if mode == "updates" and "tools" in data)
    last_inner = max(i for i, (mode, data) in enumerate(parts)
                     if mode == "messages" and data[1]["langgraph_node"] == "tools"
                     and isinstance(data[0], AIMessageChunk))
    assert last_inner < tool_update


def test_a_tool_in_place_on_the_background_loop_can_still_call_a_model() -> None:
    inner = ScriptedChatModel(["inner answer"])

    @tool(thread=False)
    def ask_inner() -> str:
        """Asks another model, blocking the loop it runs on."""
        return inner.invoke([{"role": "user", "content": "q"}]).text

    agent = create_agent(ScriptedChatModel([call("ask_inner", "c1"), "ok"]), tools=[ask_inner])
    parts: list[Any] = []
    done = threading.Event()
    agent.observe(QUESTION).subscribe(  # outside any loop: the run goes on the background loop
        on_next=parts.append, on_error=lambda e: done.set(), on_completed=done.set
    )
    assert done.wait(10)
    updates = [p["data"] for p in parts if p["type"] == "updates" and "tools" in p["data"]]
    assert [u["tools"]["messages"][0].content for u in updates] == ["inner answer"]


def test_a_sync_stream_inside_a_tool_on_the_background_loop_is_a_clear_error() -> None:
    helper = create_agent(ScriptedChatModel(["helped"]))

    @tool(thread=False)
    def ask_helper() -> str:
        """Runs another agent, blocking the loop it runs on."""
        return str(helper.invoke(QUESTION)["messages"][-1].text)

    agent = create_agent(ScriptedChatModel([call("ask_helper", "c1"), "ok"]), tools=[ask_helper])
    parts: list[Any] = []
    done = threading.Event()
    agent.observe(QUESTION).subscribe(
        on_next=parts.append, on_error=lambda e: done.set(), on_completed=done.set
    )
    assert done.wait(10)
    (update,) = [p["data"] for p in parts if p["type"] == "updates" and "tools" in p["data"]]
    message = update["tools"]["messages"][0]
    assert message.status == "error"
    assert "UsageError" in message.content and "background loop" in message.content


def _waiting_agent(cancelled: Any, started: threading.Event | None = None) -> Any:
    async def wait_forever() -> str:
        """Never returns on its own."""
        if started is not None:
            started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return "unreachable"

    return create_agent(ScriptedChatModel([call("wait_forever", "w")]), tools=[wait_forever])


@pytest.mark.anyio
async def test_breaking_out_of_async_for_cancels_the_run() -> None:
    cancelled = anyio.Event()
    async for mode, _ in _waiting_agent(cancelled).astream(QUESTION,
                                                          stream_mode=["updates", "custom"]):
        if mode == "updates":
            break  # the tool is now waiting; nothing else refers to the iterator
    with anyio.fail_after(10):
        await cancelled.wait()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_with_cancels_the_run_and_waits_for_it(backend: str) -> None:
    async def take_one() -> bool:
        cancelled = anyio.Event()
        async with _waiting_agent(cancelled).astream(QUESTION, stream_mode="updates") as stream:
            async for _ in stream:
                break
        return cancelled.is_set()

    assert _without_hanging(lambda: anyio.run(take_one, backend=backend)), (
        "aclose() waits until the run has stopped"
    )


def test_with_cancels_a_sync_stream_at_once() -> None:
    cancelled = threading.Event()

    def take_one() -> None:
        with _waiting_agent(cancelled).stream(QUESTION, stream_mode="updates") as stream:
            for _ in stream:
                break

    _without_hanging(take_one)
    assert cancelled.is_set()


def _writing_agent(events: int, finished: list[int]) -> Any:
    def chatty() -> str:
        """Writes a lot."""
        writer = get_stream_writer()
        for i in range(events):
            writer(i)
        finished.append(events)
        return "done"

    return create_agent(ScriptedChatModel([call("chatty", "c1"), "ok"]), tools=[chatty])


def _without_hanging(work: Any) -> Any:
    """Run ``work()`` in a thread: a deadlock fails the test instead of hanging the suite."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(work()), daemon=True)
    thread.start()
    thread.join(60)
    assert outcome, "deadlocked: the stream did not close"
    return outcome[0]


def test_closing_a_sync_stream_lets_a_waiting_sync_tool_finish() -> None:
    finished: list[int] = []
    agent = _writing_agent(20_000, finished)

    def take_five() -> list[Any]:
        with agent.stream(QUESTION, stream_mode="custom", max_buffer=8) as stream:
            return [item for item, _ in zip(stream, range(5), strict=False)]

    # The writer was waiting for room when the stream closed; closing let it go and waited for
    # the tool to return (a thread cannot be stopped), dropping what it still wrote.
    assert _without_hanging(take_five) == [0, 1, 2, 3, 4]
    assert finished == [20_000]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_closing_an_async_stream_lets_a_waiting_sync_tool_finish(backend: str) -> None:
    finished: list[int] = []
    agent = _writing_agent(20_000, finished)

    async def take_five() -> list[Any]:
        taken = []
        async with agent.astream(QUESTION, stream_mode="custom", max_buffer=8) as stream:
            async for item in stream:
                taken.append(item)
                if len(taken) == 5:
                    break
        return taken

    assert _without_hanging(lambda: anyio.run(take_five, backend=backend)) == [0, 1, 2, 3, 4]
    assert finished == [20_000]


@pytest.mark.parametrize("thread", [True, False], ids=["in a thread", "in place"])
def test_closing_a_stream_lets_a_model_called_by_a_sync_tool_finish(thread: bool) -> None:
    inner = ScriptedChatModel([" ".join(["w"] * 3000)])  # far more than the consumer's room
    finished: list[str] = []

    @tool(thread=thread)
    def ask_inner() -> str:
        """Asks another model, blocking."""
        finished.append(inner.invoke([{"role": "user", "content": "q"}]).text)
        return "asked"

    agent = create_agent(ScriptedChatModel([call("ask_inner", "c1"), "ok"]), tools=[ask_inner])

    def take_five() -> int:
        with agent.stream(QUESTION, stream_mode="messages", max_buffer=8) as stream:
            return len([item for item, _ in zip(stream, range(5), strict=False)])

    assert _without_hanging(take_five) == 5
    assert finished and finished[0].count("w") == 3000


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_closing_lets_go_of_a_model_on_a_tools_loop_that_waits_for_room(backend: str) -> None:
    pulled = [0]
    inner = _pulls_counted(pulled, 3000)
    finished: list[str] = []

    @tool(thread=True)
    def ask_inner() -> str:
        """Asks another model, which runs on this worker thread's own loop."""
        finished.append(inner.invoke([{"role": "user", "content": "q"}]).text)
        return "asked"

    agent = create_agent(ScriptedChatModel([call("ask_inner", "c1"), "ok"]), tools=[ask_inner])

    async def take_five_then_wait() -> int:
        taken = 0
        async with agent.astream(QUESTION, stream_mode="messages", max_buffer=8) as stream:
            async for _ in stream:
                taken += 1
                if taken == 5:
                    break
            # Take nothing more while the loop turns: the buffer fills and the model, on its
            # own loop, waits for room. Settled: 50 turns in a row without a new token (a
            # turn sleeps a little, so that the model's thread, too, gets its turns).
            quiet, last = 0, -1
            while quiet < 50:
                await anyio.sleep(0.001)
                quiet, last = (quiet + 1 if pulled[0] == last else 0), pulled[0]
        return last

    at_close = _without_hanging(lambda: anyio.run(take_five_then_wait, backend=backend))
    assert at_close < 3000, "the model was waiting for room when the stream closed"
    assert finished and finished[0].count("w") == 3000, "let go, it ran to its end"


def _counting_agent(pulled: list[int]) -> Any:
    """A model that never suspends (as a local one), counting the tokens pulled from it."""

    def reply(messages: Any, tools: Any) -> Iterator[str]:
        for i in range(100_000):
            pulled[0] += 1
            yield f"t{i} "

    return create_agent(FunctionChatModel(reply))


def test_closing_a_sync_stream_early_stops_a_model_that_never_suspends() -> None:
    pulled = [0]

    def take_five() -> list[Any]:
        with _counting_agent(pulled).stream(QUESTION, stream_mode="messages",
                                            max_buffer=8) as s:
            return [chunk for (chunk, _), _ in zip(s, range(5), strict=False)]

    taken = _without_hanging(take_five)
    assert len(taken) == 5
    assert pulled[0] < 100, "the model went on producing into a closed stream"


@pytest.mark.anyio
async def test_closing_an_async_stream_early_stops_a_model_that_never_suspends() -> None:
    pulled = [0]
    taken = 0
    stream = _counting_agent(pulled).astream(QUESTION, stream_mode="messages", max_buffer=8)
    async with stream:
        async for _ in stream:
            taken += 1
            if taken == 5:
                break
    assert pulled[0] < 100, "the model went on producing into a closed stream"


def test_a_closed_stream_gives_nothing_more() -> None:
    pulled = [0]
    stream = _counting_agent(pulled).stream(QUESTION, stream_mode="messages", max_buffer=8)
    taken = [chunk for (chunk, _), _ in zip(stream, range(5), strict=False)]
    assert len(taken) == 5 and pulled[0] > 5, "the buffer held more than was taken"
    stream.close()
    assert list(stream) == [], "what was buffered or still arrived is dropped"


@pytest.mark.anyio
async def test_a_closed_async_stream_gives_nothing_more() -> None:
    pulled = [0]
    stream = _counting_agent(pulled).astream(QUESTION, stream_mode="messages", max_buffer=8)
    taken = 0
    async for _ in stream:
        taken += 1
        if taken == 5:
            break
    assert pulled[0] > 5
    await stream.aclose()
    assert [item async for item in stream] == []


def test_breaking_out_of_a_for_loop_cancels_the_run_at_once() -> None:
    def leave() -> bool:
        cancelled = threading.Event()
        for mode, _ in _waiting_agent(cancelled).stream(QUESTION,
                                                         stream_mode=["updates", "custom"]):
            if mode == "updates":
                break  # the tool now waits; nothing else refers to the iterator
        return cancelled.is_set()  # in CPython the iterator was dropped at the break

    assert _without_hanging(leave), "the run was cancelled as the loop was left"


class _Recorder(reactivex.abc.ObserverBase[Any]):
    """An observer from outside rxagent: an object, not callables."""

    def __init__(self, on_part: Any) -> None:
        self.on_part = on_part
        self.ends: list[Any] = []

    def on_next(self, value: Any) -> None:
        self.on_part(value)

    def on_error(self, error: Exception) -> None:
        self.ends.append(error)

    def on_completed(self) -> None:
        self.ends.append("completed")


def test_nothing_arrives_after_dispose_even_from_a_model_that_is_still_producing() -> None:
    pulled = [0]
    stopped = threading.Event()

    def reply(messages: Any, tools: Any) -> Iterator[str]:
        try:
            for i in range(3000):  # never suspends: the cancellation lands only at the end
                pulled[0] += 1
                yield f"t{i} "
        finally:
            stopped.set()

    seen: list[Any] = []
    subscribed = threading.Event()
    subscription: list[Any] = []

    def on_part(part: Any) -> None:
        seen.append(part)
        if len([p for p in seen if p["type"] == "messages"]) == 5:
            assert subscribed.wait(60)
            subscription[0].dispose()  # on the run's own thread, in the middle of the call

    recorder = _Recorder(on_part)
    subscription.append(create_agent(FunctionChatModel(reply)).observe(QUESTION).subscribe(
        recorder
    ))
    subscribed.set()
    assert stopped.wait(60)
    assert pulled[0] > 5, "the model went on after dispose()"
    assert len([p for p in seen if p["type"] == "messages"]) == 5, "but nothing arrived"
    assert recorder.ends == []


def test_disposing_observe_cancels_the_run_and_nothing_arrives_after() -> None:
    cancelled = threading.Event()
    seen: list[Any] = []
    waiting = threading.Event()

    def on_next(part: Any) -> None:
        seen.append(part)
        if part["type"] == "updates":
            waiting.set()

    started = threading.Event()
    subscription = _waiting_agent(cancelled, started).observe(QUESTION).subscribe(on_next)
    assert waiting.wait(10)
    # Disposed while the tool is under way: disposed any earlier, the tool never starts.
    assert started.wait(10)
    subscription.dispose()
    at_dispose = len(seen)
    assert cancelled.wait(10)  # the cancelled tool unwound: nothing of the run is left
    assert len(seen) == at_dispose, "nothing arrives after dispose"
    assert not [p for p in seen if p["type"] == "updates" and "tools" in p["data"]]


@pytest.mark.anyio
async def test_astream_raises_after_the_events_before_the_error() -> None:
    seen: list[str] = []
    agent = create_agent(ScriptedChatModel([call("get_weather", "c", city="SF")]),
                         tools=[get_weather])
    with pytest.raises(ScriptExhaustedError):
        async for mode, _ in agent.astream(QUESTION, stream_mode=["updates", "custom"]):
            seen.append(mode)
    assert seen == ["updates", "custom", "updates"]


def test_system_prompt_goes_first_and_the_name_reaches_messages_and_metadata() -> None:
    model = ScriptedChatModel(["Hi."])
    agent = create_agent(model, system_prompt="Be brief.", name="greeter")
    pairs = list(agent.stream(QUESTION, stream_mode="messages"))
    sent = model.calls[0].messages
    assert [type(m).__name__ for m in sent] == ["SystemMessage", "HumanMessage"]
    assert sent[0].text == "Be brief."
    assert {meta["lc_agent_name"] for _, meta in pairs} == {"greeter"}
    state = create_agent(ScriptedChatModel(["Hi."]), name="greeter").invoke(QUESTION)
    assert state["messages"][-1].name == "greeter"
    assert all(m.type != "system" for m in state["messages"]), "the prompt is not state"


@pytest.mark.parametrize("bad", [7, None, [7], [["updates"]], {"updates": 1}.items()])
def test_a_stream_mode_that_is_no_mode_name_is_a_usage_error(bad: Any) -> None:
    with pytest.raises(UsageError, match="stream_mode"):
        weather_agent().stream(QUESTION, stream_mode=bad)


def test_a_half_imported_trio_does_not_break_subscribing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another thread importing trio leaves a module without ``lowlevel`` in sys.modules for
    # a while; subscribing from a plain thread meanwhile must not trip over it.
    monkeypatch.setitem(sys.modules, "trio", types.ModuleType("trio"))
    assert weather_agent().invoke(QUESTION)["messages"][-1].text == "Sunny in SF."
