"""share() and replay(n): one run, many subscribers, demand from all of them."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import reactivex
import reactivex.operators as ops
from reactivex.subject import Subject

from rxagent import UsageError, create_agent, to_async_iterator
from rxagent import operators as rxo

# How a shared run's demand links to its subscribers': private units, on purpose.
from rxagent._demand import Demand, subscription_demand
from rxagent._fast_rx import observable_from_async
from rxagent.testing import FunctionChatModel, ScriptedChatModel

HI = {"messages": ["Hi"]}


def test_share_joins_live_and_a_subscriber_after_the_end_starts_again() -> None:
    subject: Subject[int] = Subject()
    shared = subject.pipe(rxo.share())
    first: list[Any] = []
    second: list[Any] = []
    shared.subscribe(first.append, on_completed=lambda: first.append("|"))
    subject.on_next(1)
    shared.subscribe(second.append, on_completed=lambda: second.append("|"))
    subject.on_next(2)
    subject.on_completed()
    assert first == [1, 2, "|"]
    assert second == [2, "|"]


def test_replay_gives_a_late_subscriber_what_it_missed_then_live() -> None:
    subject: Subject[int] = Subject()
    shared = subject.pipe(rxo.replay(2))
    early: list[Any] = []
    late: list[Any] = []
    shared.subscribe(early.append)
    for i in range(5):
        subject.on_next(i)
    shared.subscribe(late.append)
    subject.on_next(5)
    assert early == [0, 1, 2, 3, 4, 5]
    assert late == [3, 4, 5]


def test_one_run_many_subscribers_and_replay_after_the_end() -> None:
    # One reply in the script: a second run would fail with ScriptExhaustedError.
    agent = create_agent(ScriptedChatModel(["one run for everybody"]))
    run = agent.observe(HI).pipe(rxo.replay(100))
    texts = run.pipe(rxo.text(), ops.to_list())
    both = reactivex.zip(texts, texts).run()
    assert "".join(both[0]) == "one run for everybody"
    assert both[0] == both[1]
    after = run.pipe(rxo.text(), ops.to_list()).run()
    assert after == both[0], "a subscriber after the end gets the replay, not a new run"


def test_the_last_subscriber_leaving_cancels_the_run() -> None:
    stopped = threading.Event()

    async def endless(messages: Any, tools: Any) -> AsyncIterator[str]:
        try:
            while True:
                yield "tick "
                await anyio.sleep(0.001)
        finally:
            stopped.set()

    shared = create_agent(FunctionChatModel(endless)).observe(HI).pipe(rxo.share())
    ticks = threading.Event()
    first = shared.pipe(rxo.text()).subscribe()
    second = shared.pipe(rxo.text()).subscribe(lambda _: ticks.set())
    assert ticks.wait(10)
    first.dispose()
    ticks.clear()
    assert ticks.wait(10), "the run goes on while one subscriber is left"
    assert not stopped.is_set()
    second.dispose()
    assert stopped.wait(10)


def test_every_subscribers_demand_holds_the_shared_run() -> None:
    seen: list[Demand] = []

    async def produce(emit: Any, demand: Demand) -> None:
        seen.append(demand)
        await anyio.sleep_forever()

    shared = observable_from_async(produce).pipe(rxo.share())
    slow, fast = Demand(), Demand()
    subscriptions = []
    for demand in (slow, fast):
        token = subscription_demand.set(demand)
        try:
            subscriptions.append(shared.subscribe())
        finally:
            subscription_demand.reset(token)
    for _ in range(1000):
        if seen:
            break
        threading.Event().wait(0.01)
    (run_demand,) = seen
    assert run_demand.ready
    slow.hold()
    assert not run_demand.ready, "the slowest subscriber paces the run"
    fast.hold()
    slow.release()
    assert not run_demand.ready
    fast.release()
    assert run_demand.ready
    for subscription in subscriptions:
        subscription.dispose()


@pytest.mark.anyio
@pytest.mark.parametrize("sharing", ["share", "replay"])
async def test_the_slowest_iterator_on_a_shared_run_holds_the_model(sharing: str) -> None:
    pulled = 0

    def tokens(messages: Any, tools: Any) -> Iterator[str]:
        nonlocal pulled
        for i in range(3_000):
            pulled += 1
            yield f"{i} "

    shared = create_agent(FunctionChatModel(tokens)).observe(HI).pipe(
        rxo.text(), rxo.share() if sharing == "share" else rxo.replay(4)
    )
    ahead = 0
    got: dict[str, int] = {}

    async def take(name: str, turns: int) -> None:
        nonlocal ahead
        count = 0
        async for text in to_async_iterator(shared, max_buffer=8):
            count += 1
            if name == "slow":  # how far the model is ahead of the slow one
                ahead = max(ahead, pulled - (int(text) + 1))
            for _ in range(turns):
                await anyio.sleep(0)
        got[name] = count

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(take, "fast", 0)
            group.start_soon(take, "slow", 3)
    assert got["fast"] > 2_900 and got["slow"] > 2_900  # the one that joined second may
    assert ahead <= 8 + 1, "the slow one paces the run"  # miss the first few


def test_replay_size_must_be_a_non_negative_int() -> None:
    with pytest.raises(UsageError):
        rxo.replay(-1)
