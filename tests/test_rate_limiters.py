"""Rate limiters: the token bucket on a clock the test moves, and a model waiting for its limiter
before each call over loopback, under asyncio and trio."""

from __future__ import annotations

import threading
import types
from typing import Any

import anyio
import pytest
from langchain_core.rate_limiters import InMemoryRateLimiter as LangChainRateLimiter

from rxagent import UsageError, rate_limiters
from rxagent.chat_models import init_chat_model
from rxagent.rate_limiters import BaseRateLimiter, InMemoryRateLimiter

from .chat_models.loopback import Reply, serve
from .chat_models.transcripts import OPENAI_TEXT, OPENAI_TEXT_ANSWER


class Clock:
    """The limiter's clock; its sleeps move it instead of waiting."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await anyio.lowlevel.checkpoint()


def on_clock(limiter: InMemoryRateLimiter, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    limiter._clock = clock
    monkeypatch.setattr(rate_limiters, "time",
                        types.SimpleNamespace(sleep=clock.sleep, monotonic=clock))
    monkeypatch.setattr(rate_limiters, "anyio", types.SimpleNamespace(sleep=clock.asleep))


def test_the_bucket_starts_empty_and_fills_at_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(requests_per_second=4, max_bucket_size=1)
    on_clock(limiter, clock, monkeypatch)
    assert limiter.acquire(blocking=False) is False  # as LangChain's: the first call waits
    clock.now += 0.2
    assert limiter.acquire(blocking=False) is False
    clock.now += 0.05
    assert limiter.acquire(blocking=False) is True
    assert limiter.acquire(blocking=False) is False


def test_a_quiet_spell_saves_up_at_most_the_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(requests_per_second=1, max_bucket_size=3)
    on_clock(limiter, clock, monkeypatch)
    limiter.acquire(blocking=False)
    clock.now += 1000
    assert [limiter.acquire(blocking=False) for _ in range(4)] == [True, True, True, False]


def test_a_blocking_acquire_sleeps_until_its_token_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(requests_per_second=2, check_every_n_seconds=10)
    on_clock(limiter, clock, monkeypatch)
    assert limiter.acquire() is True
    assert clock.slept == [0.5]  # one sleep, to the moment: no polling
    clock.now += 0.2
    assert limiter.acquire() is True
    assert clock.slept == [0.5, pytest.approx(0.3)]
    # check_every_n_seconds bounds one sleep.
    short = InMemoryRateLimiter(requests_per_second=1, check_every_n_seconds=0.4)
    clock.slept.clear()
    short._clock = clock
    assert short.acquire() is True
    assert clock.slept == [0.4, 0.4, pytest.approx(0.2)]


@pytest.mark.anyio
async def test_aacquire_sleeps_the_task_until_its_token_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(requests_per_second=10, check_every_n_seconds=10,
                                  max_bucket_size=2)
    on_clock(limiter, clock, monkeypatch)
    assert await limiter.aacquire(blocking=False) is False
    assert await limiter.aacquire() is True
    assert clock.slept == [pytest.approx(0.1)]
    clock.now += 5
    assert [await limiter.aacquire(blocking=False) for _ in range(3)] == [True, True, False]


def test_threads_share_the_bucket_without_losing_or_doubling_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(requests_per_second=1, max_bucket_size=50)
    on_clock(limiter, clock, monkeypatch)
    limiter.acquire(blocking=False)
    clock.now += 50
    taken: list[bool] = []
    start = threading.Barrier(8)

    def take() -> None:
        start.wait()
        taken.extend(limiter.acquire(blocking=False) for _ in range(20))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken.count(True) == 50


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"requests_per_second": 0}, "requests_per_second"),
    ({"check_every_n_seconds": -1}, "check_every_n_seconds"),
    ({"max_bucket_size": 0.5}, "max_bucket_size"),
    ({"requests_per_second": "1"}, "requests_per_second"),
])
def test_bad_settings_are_refused_by_name(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(UsageError, match=named):
        InMemoryRateLimiter(**kwargs)


def test_a_model_refuses_what_is_no_rate_limiter() -> None:
    with pytest.raises(UsageError, match="rate_limiter"):
        init_chat_model("openai:gpt-5-nano", rate_limiter=object())


class Gate(BaseRateLimiter):
    """Lets a call go once the test opens it; counts the calls that asked."""

    def __init__(self) -> None:
        self.asked = 0
        self.opened = anyio.Event()

    def acquire(self, *, blocking: bool = True) -> bool:  # pragma: no cover - async here
        raise AssertionError("a model waits with aacquire")

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.asked += 1
        await self.opened.wait()
        return True


@pytest.mark.anyio
async def test_a_call_waits_for_its_limiter_before_its_request_once_for_all_retries() -> None:
    busy = Reply(['{"error": {"message": "busy", "type": "x"}}'], status=503,
                 headers={"retry-after": "0"}, content_type="application/json")
    async with serve(busy, Reply([OPENAI_TEXT], piece=5)) as server:
        gate = Gate()
        model = init_chat_model("openai:gpt-5-nano", base_url=server.url + "/v1", api_key="k",
                                rate_limiter=gate, max_retries=1)
        async with anyio.create_task_group() as group:
            replies: list[str] = []

            async def call() -> None:
                replies.append((await model.ainvoke("Hi")).text)

            group.start_soon(call)
            for _ in range(1000):
                if gate.asked or replies:
                    break
                await anyio.sleep(0.01)
            assert gate.asked == 1
            for _ in range(20):  # the loop's turns: a request would have gone out by now
                await anyio.sleep(0)
            assert server.requests == []
            gate.opened.set()
    assert replies == [OPENAI_TEXT_ANSWER]
    assert len(server.requests) == 2 and gate.asked == 1  # a retry asks no second token


@pytest.mark.anyio
async def test_langchains_limiter_works_under_either_loop() -> None:
    # Its aacquire sleeps with asyncio: rxagent asks it without blocking and waits itself.
    limiter = LangChainRateLimiter(requests_per_second=200, check_every_n_seconds=0.001)
    async with serve(Reply([OPENAI_TEXT]), Reply([OPENAI_TEXT])) as server:
        model = init_chat_model("openai:gpt-5-nano", base_url=server.url + "/v1", api_key="k",
                                rate_limiter=limiter)
        assert [(await model.ainvoke("Hi")).text for _ in range(2)] == [OPENAI_TEXT_ANSWER] * 2
    assert len(server.requests) == 2
