"""first_token_timeout() and idle_timeout(): in virtual time, and cancelling real runs."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
import reactivex
from reactivex import abc
from reactivex.disposable import BooleanDisposable, CompositeDisposable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.mockobserver import MockObserver

from rxagent import (
    FirstTokenTimeoutError,
    IdleTimeoutError,
    StreamPart,
    StreamTimeoutError,
    UsageError,
    create_agent,
)
from rxagent.chat_models import make_chunk
from rxagent.operators import first_token_timeout, idle_timeout
from rxagent.testing import FunctionChatModel

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe

HI = {"messages": ["Hi"]}
CALL: dict[str, Any] = {"langgraph_node": "model"}
VALUES: StreamPart = {"type": "values", "ns": (), "data": {"messages": []}}
CUSTOM: StreamPart = {"type": "custom", "ns": (), "data": "looking up"}


class SpyScheduler(TestScheduler):
    """A TestScheduler that keeps a flag per timer, set when the timer is disposed."""

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[BooleanDisposable] = []

    def schedule_relative(
        self, duetime: Any, action: abc.ScheduledAction[Any], state: Any = None
    ) -> abc.DisposableBase:
        flag = BooleanDisposable()
        self.timers.append(flag)
        return CompositeDisposable(super().schedule_relative(duetime, action, state), flag)


def token(text: str = "Hi") -> StreamPart:
    return {"type": "messages", "ns": (), "data": (make_chunk(text, id="run-1"), CALL)}


def timeline(observer: MockObserver[Any]) -> list[tuple[float, Any]]:
    out: list[tuple[float, Any]] = []
    for message in observer.messages:
        notification = message.value
        if notification.kind == "N":
            out.append((message.time, notification.value))
        elif notification.kind == "E":
            out.append((message.time, notification.exception))
        else:
            out.append((message.time, "|"))
    return out


def run_hot(
    operator: Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]],
    *messages: Any,
    scheduler: TestScheduler | None = None,
) -> tuple[MockObserver[Any], Any]:
    scheduler = scheduler or TestScheduler()
    source = scheduler.create_hot_observable(*messages)
    observer = scheduler.start(lambda: source.pipe(operator))
    return observer, source


def only_error(out: list[tuple[float, Any]]) -> tuple[float, Exception]:
    when, error = out[-1]
    assert isinstance(error, Exception)
    return when, error


# -- first_token_timeout -------------------------------------------------------------------------


def test_no_token_in_time_cancels_the_source_and_fails() -> None:
    observer, source = run_hot(
        first_token_timeout(5),
        on_next(201, VALUES), on_next(203, CUSTOM), on_next(210, token()),
    )
    out = timeline(observer)
    assert out[:2] == [(201, VALUES), (203, CUSTOM)], "items before the first token pass"
    when, error = only_error(out)
    assert len(out) == 3 and when == 205
    assert isinstance(error, FirstTokenTimeoutError)
    assert isinstance(error, StreamTimeoutError) and isinstance(error, TimeoutError)
    assert "5 s" in str(error)
    assert source.subscriptions == [subscribe(200, 205)]


@pytest.mark.parametrize("operator", [first_token_timeout(5), idle_timeout(5)])
def test_the_source_is_cancelled_before_the_error_is_sent(
    operator: Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]],
) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(300, token()))
    seen: list[Any] = []
    source.pipe(operator).subscribe(
        on_error=lambda error: seen.append((error, list(source.subscriptions))),
        scheduler=scheduler,
    )
    scheduler.advance_to(400)
    ((error, subscriptions),) = seen
    assert isinstance(error, StreamTimeoutError)
    assert subscriptions == [subscribe(0, 5)], "already unsubscribed when on_error runs"


def test_a_token_in_time_lets_everything_through() -> None:
    scheduler = SpyScheduler()
    first, later = token("a"), token("b")
    observer, source = run_hot(
        first_token_timeout(5),
        on_next(201, VALUES), on_next(204, first), on_next(300, later), on_completed(400),
        scheduler=scheduler,
    )
    assert timeline(observer) == [(201, VALUES), (204, first), (300, later), (400, "|")]
    assert source.subscriptions == [subscribe(200, 400)]
    assert len(scheduler.timers) == 1 and scheduler.timers[0].is_disposed


def test_anything_that_is_not_a_part_is_a_token() -> None:
    # After messages() or on a model's own stream: (chunk, metadata) pairs, or chunks.
    observer, _ = run_hot(
        first_token_timeout(5), on_next(203, "raw"), on_next(300, "more"), on_completed(400)
    )
    assert timeline(observer) == [(203, "raw"), (300, "more"), (400, "|")]


def test_a_tool_message_is_not_a_token() -> None:
    from rxagent.messages import ToolMessage

    tool_part: StreamPart = {
        "type": "messages", "ns": (), "data": (ToolMessage("x", tool_call_id="c"), CALL),
    }
    observer, _ = run_hot(first_token_timeout(5), on_next(202, tool_part))
    when, error = only_error(timeline(observer))
    assert when == 205 and isinstance(error, FirstTokenTimeoutError)


def test_a_custom_token_test() -> None:
    observer, _ = run_hot(
        first_token_timeout(5, is_token=lambda item: item["type"] == "custom"),
        on_next(201, VALUES), on_next(203, CUSTOM), on_next(300, VALUES), on_completed(400),
    )
    assert timeline(observer) == [(201, VALUES), (203, CUSTOM), (300, VALUES), (400, "|")]


def test_an_error_in_the_token_test_cancels_the_source_and_goes_to_on_error() -> None:
    def broken(item: Any) -> bool:
        raise KeyError("no type")

    observer, source = run_hot(
        first_token_timeout(5, is_token=broken), on_next(202, VALUES), on_next(203, VALUES)
    )
    when, error = only_error(timeline(observer))
    assert len(observer.messages) == 1 and when == 202
    assert isinstance(error, KeyError)
    assert source.subscriptions == [subscribe(200, 202)]


def test_completing_before_the_first_token_is_no_timeout() -> None:
    scheduler = SpyScheduler()
    observer, _ = run_hot(
        first_token_timeout(5), on_next(201, VALUES), on_completed(202), scheduler=scheduler
    )
    assert timeline(observer) == [(201, VALUES), (202, "|")]
    assert scheduler.timers[0].is_disposed


def test_an_upstream_error_passes_through() -> None:
    boom = RuntimeError("boom")
    observer, _ = run_hot(first_token_timeout(5), on_error(202, boom))
    assert timeline(observer) == [(202, boom)]


def test_first_token_timeout_uses_its_own_scheduler_when_given() -> None:
    own = TestScheduler()
    outer = TestScheduler()
    errors: list[Exception] = []
    source = outer.create_hot_observable(on_next(210, VALUES))
    source.pipe(first_token_timeout(5, scheduler=own)).subscribe(
        on_error=errors.append, scheduler=outer
    )
    outer.advance_to(400)
    assert errors == []
    own.advance_to(5)
    assert len(errors) == 1 and isinstance(errors[0], FirstTokenTimeoutError)


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), "5", True, None])
def test_first_token_timeout_checks_its_seconds(seconds: Any) -> None:
    with pytest.raises(UsageError, match="seconds"):
        first_token_timeout(seconds)


def test_first_token_timeout_checks_its_token_test() -> None:
    with pytest.raises(UsageError, match="is_token"):
        first_token_timeout(5, is_token="yes")  # type: ignore[arg-type]


class Hanging:
    """A FunctionChatModel reply that never sends a token (or sends one first, then hangs),
    with events telling when it hangs (all it sent was delivered) and when its ``finally``
    ran."""

    def __init__(self, *first: str) -> None:
        self.first = first
        self.hanging = threading.Event()
        self.finished = threading.Event()

    async def __call__(self, messages: Any, tools: Any) -> AsyncIterator[str]:
        try:
            for text in self.first:
                yield text
            self.hanging.set()
            await anyio.sleep_forever()
        finally:
            self.finished.set()


def test_first_token_timeout_cancels_a_real_run() -> None:
    reply = Hanging()
    agent = create_agent(FunctionChatModel(reply))
    clock = TestScheduler()
    got: list[StreamPart] = []
    errors: list[Exception] = []
    agent.observe(HI).pipe(first_token_timeout(30, scheduler=clock)).subscribe(
        got.append, errors.append
    )
    assert reply.hanging.wait(10)
    clock.advance_by(29)
    assert errors == []
    clock.advance_by(1)
    assert len(errors) == 1 and isinstance(errors[0], FirstTokenTimeoutError)
    assert reply.finished.wait(10), "the model call was cancelled"
    assert [part["type"] for part in got] == ["values"]


def test_first_token_timeout_raises_from_run() -> None:
    reply = Hanging()
    agent = create_agent(FunctionChatModel(reply))
    with pytest.raises(FirstTokenTimeoutError):
        agent.observe(HI).pipe(first_token_timeout(0.05)).run()
    assert reply.finished.wait(10), "the model call was cancelled"


# -- idle_timeout --------------------------------------------------------------------------------


def test_a_long_gap_cancels_the_source_and_fails() -> None:
    observer, source = run_hot(
        idle_timeout(5), on_next(203, "a"), on_next(206, "b"), on_next(212, "c")
    )
    out = timeline(observer)
    assert out[:2] == [(203, "a"), (206, "b")]
    when, error = only_error(out)
    assert len(out) == 3 and when == 211
    assert isinstance(error, IdleTimeoutError) and isinstance(error, TimeoutError)
    assert "5 s" in str(error)
    assert source.subscriptions == [subscribe(200, 211)]


def test_the_first_gap_counts_from_subscription() -> None:
    observer, _ = run_hot(idle_timeout(5), on_next(206, "late"))
    when, error = only_error(timeline(observer))
    assert len(observer.messages) == 1 and when == 205
    assert isinstance(error, IdleTimeoutError)


def test_short_gaps_pass_and_a_timer_is_not_scheduled_per_item() -> None:
    scheduler = SpyScheduler()
    items = [on_next(at, at) for at in range(201, 260)]
    observer, _ = run_hot(idle_timeout(5), *items, on_completed(262), scheduler=scheduler)
    assert timeline(observer) == [(at, at) for at in range(201, 260)] + [(262, "|")]
    # One timer, re-armed for what is left of the gap: about one per 4 ticks, not one per item.
    assert len(scheduler.timers) <= 20
    assert scheduler.timers[-1].is_disposed


def test_an_upstream_error_passes_through_idle_timeout() -> None:
    boom = RuntimeError("boom")
    observer, _ = run_hot(idle_timeout(5), on_next(202, 1), on_error(204, boom))
    assert timeline(observer) == [(202, 1), (204, boom)]


@pytest.mark.parametrize("seconds", [0, -0.5, float("nan"), float("inf"), "5", False])
def test_idle_timeout_checks_its_seconds(seconds: Any) -> None:
    with pytest.raises(UsageError, match="seconds"):
        idle_timeout(seconds)


def test_idle_timeout_cancels_a_real_run_that_goes_quiet() -> None:
    reply = Hanging("It's", " always")
    agent = create_agent(FunctionChatModel(reply))
    clock = TestScheduler()
    got: list[StreamPart] = []
    errors: list[Exception] = []
    agent.observe(HI).pipe(idle_timeout(10, scheduler=clock)).subscribe(
        got.append, errors.append
    )
    assert reply.hanging.wait(10)
    clock.advance_by(9)
    assert errors == []
    clock.advance_by(1)
    assert len(errors) == 1 and isinstance(errors[0], IdleTimeoutError)
    assert reply.finished.wait(10), "the model call was cancelled"
    assert [part["type"] for part in got] == ["values", "messages", "messages"]
