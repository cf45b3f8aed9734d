"""``ModelRetryMiddleware``: the same programs under LangChain 1.5.2 and rxagent stream the
same steps and tokens (the failed attempt's too); cancelling during a wait or an attempt
stops the retries; its arguments and defaults."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

import rxagent
from rxagent.messages import AIMessage, AIMessageChunk, HumanMessage
from rxagent.middleware import (
    AgentMiddleware,
    ModelRequest,
    ModelResponse,
    ModelRetryMiddleware,
    wrap_model_call,
)
from rxagent.testing import FunctionChatModel

from .failing import Fail, failing
from .test_parity import LIBS, QUESTION, Ids, prompts, stream, weather

NEVER = 10.0  # seconds: a wait no passing test sees end (a broken one does, then fails)


def retrying(name: str, replies: list[Any], **kwargs: Any) -> tuple[Any, Any]:
    lib = LIBS[name]
    fake = failing(name, replies)
    retry = lib.mw.ModelRetryMiddleware(initial_delay=0, jitter=False, **kwargs)
    agent = lib.agents.create_agent(fake, tools=[lib.base.tool(weather)], middleware=[retry])
    return agent, fake


def both(replies: list[Any], modes: list[str], **kwargs: Any) -> Any:
    results = {}
    for name in LIBS:
        agent, fake = retrying(name, replies, **kwargs)
        number = Ids()
        results[name] = (stream(agent, QUESTION, modes, number), prompts(fake.seen, number))
    ours, theirs = results["rxagent"], results["langchain"]
    assert [e for e in ours[0] if e[0] == "updates"] == \
        [e for e in theirs[0] if e[0] == "updates"]
    assert ours == theirs
    return ours[0]


MODES = [["updates", "values"], ["updates", "messages"]]
BOOM = RuntimeError("boom")


@pytest.mark.parametrize("modes", MODES)
def test_a_retry_streams_both_attempts_as_in_langchain(modes: list[str]) -> None:
    events = both([Fail("It is", BOOM), [{"name": "weather", "args": {"city": "Paris"},
                                          "id": "w1"}],
                   Fail("", BOOM), "It is sunny."], modes)
    if "messages" in modes:
        tokens = [data[0][1] for mode, data in events
                  if mode == "messages" and data[0][0] == "AIMessageChunk" and data[0][1]]
        # The failed attempt's tokens, then the retry's, in both model steps.
        assert tokens == ["It ", "is", "It ", "is ", "sunny."]


@pytest.mark.parametrize("modes", [
    MODES[0],
    MODES[1],
])
def test_attempts_running_out_continue_with_a_message_as_in_langchain(modes: list[str]) -> None:
    events = both([Fail("Hm", BOOM), Fail("Hm", BOOM), Fail("Hm", BOOM)], modes)
    update = [data for mode, data in events if mode == "updates"][-1]
    assert update["model"]["messages"][0][1] == \
        "Model call failed after 3 attempts with RuntimeError: boom"


def test_on_failure_text_and_retry_count_as_in_langchain() -> None:
    both([Fail("Hm", BOOM), Fail("", ValueError("nope"))], ["updates", "values"],
         max_retries=1, on_failure=lambda exc: f"Sorry ({exc})")


def test_a_failure_retry_on_refuses_is_raised_at_once_as_in_langchain() -> None:
    for name in LIBS:
        agent, fake = retrying(name, [Fail("Hm", KeyError("k")), "never"],
                               retry_on=(RuntimeError,))
        with pytest.raises(KeyError):
            list(agent.stream(QUESTION))
        assert len(fake.seen) == 1, name


def test_on_failure_error_raises_the_last_failure() -> None:
    agent, fake = retrying("rxagent", [Fail("", BOOM), Fail("", ValueError("last"))],
                           max_retries=1, on_failure="error")
    with pytest.raises(ValueError, match="last"):
        agent.invoke(QUESTION)
    assert len(fake.seen) == 2


# -- cancelling ----------------------------------------------------------------------------


class Attempts:
    """A model whose first attempt streams a token and fails, and whose later attempts
    stream a token and then wait (until cancelled); it counts attempts and cancellations."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    async def __call__(self, messages: Any, tools: Any) -> AsyncIterator[AIMessageChunk]:
        self.started += 1
        yield AIMessageChunk(content=f"attempt {self.started} ")
        if self.started == 1:
            raise RuntimeError("first attempt fails")
        try:
            with anyio.fail_after(NEVER):  # a broken cancellation fails, and is retried
                await anyio.sleep_forever()
        finally:
            self.cancelled += 1


@wrap_model_call
async def tell_failures(request: ModelRequest[Any], handler: Any) -> ModelResponse:
    """Inside the retries: a failed attempt is told on the ``custom`` mode before the retry
    middleware sees it (and starts its wait)."""
    try:
        response: ModelResponse = await handler(request)
    except Exception:
        request.runtime.stream_writer("failed")
        raise
    return response


class SyncRetry(ModelRetryMiddleware):
    """Only the sync form: the run calls it in a worker thread, its handler blocking."""

    awrap_model_call = AgentMiddleware.awrap_model_call  # type: ignore[assignment]


def cancellable(model: Attempts, delay: float, form: str = "async") -> Any:
    kind = SyncRetry if form == "sync" else ModelRetryMiddleware
    retry = kind(max_retries=5, initial_delay=delay, backoff_factor=0, jitter=False)
    return rxagent.create_agent(FunctionChatModel(model), [], middleware=[retry, tell_failures])


def leave_when(event: tuple[str, Any], during: str) -> bool:
    mode, data = event
    if during == "backoff":
        return mode == "custom" and data == "failed"
    return mode == "messages" and data[0].content == "attempt 2 "


@pytest.mark.parametrize("form", ["async", "sync"])
@pytest.mark.parametrize(("during", "delay"), [("backoff", NEVER), ("second attempt", 0)])
def test_leaving_stream_during_a_retry_stops_it(during: str, delay: float, form: str) -> None:
    model = Attempts()
    parts = cancellable(model, delay, form).stream(QUESTION, stream_mode=["messages", "custom"])
    seen = []
    for event in parts:
        seen.append(event)
        if leave_when(event, during):
            break
    else:
        pytest.fail(f"the stream ended without reaching the {during}")
    parts.close()  # the sync iterator waits for its run to stop
    assert model.started == (1 if during == "backoff" else 2)
    assert model.cancelled == (0 if during == "backoff" else 1)
    assert [e[1][0].content for e in seen if e[0] == "messages"] == \
        ["attempt 1 ", "attempt 2 "][:model.started]


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["async", "sync"])
@pytest.mark.parametrize(("during", "delay"), [("backoff", NEVER), ("second attempt", 0)])
async def test_cancelling_astream_during_a_retry_stops_it(
    during: str, delay: float, form: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    model = Attempts()
    agent = cancellable(model, delay, form)
    reached = anyio.Event()

    async def consume() -> None:
        async for event in agent.astream(QUESTION, stream_mode=["messages", "custom"]):
            if leave_when(event, during):
                reached.set()
        pytest.fail(f"the stream ended without reaching the {during}")

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await reached.wait()
        group.cancel_scope.cancel()
    if during == "second attempt":
        # The attempt stops when the cancellation reaches it: on the worker thread's loop for
        # the sync form. Under asyncio its generator, stopped, is closed by the cycle
        # collector only, when the consumer's task was cancelled (the core's, with or without
        # middleware; leaving with break closes it at once).
        with anyio.fail_after(NEVER):
            while not model.cancelled:
                gc.collect()
                await anyio.sleep(0.01)
    for _ in range(20):  # a later attempt would have started by now
        await anyio.sleep(0)
    assert model.started == (1 if during == "backoff" else 2)
    assert model.cancelled == (0 if during == "backoff" else 1)


# -- the parts -------------------------------------------------------------------------------


def test_default_retries_what_another_attempt_may_cure() -> None:
    def fails_with(error: Exception) -> int:
        calls = []

        def fn(messages: Any, tools: Any) -> Iterator[str]:
            calls.append(1)
            raise error
            yield "never"

        agent = rxagent.create_agent(FunctionChatModel(fn), [], middleware=[
            ModelRetryMiddleware(max_retries=2, initial_delay=0)])
        with contextlib.suppress(Exception):
            agent.invoke(QUESTION)
        return len(calls)

    assert fails_with(rxagent.ServerError("503", status_code=503)) == 3
    assert fails_with(rxagent.RateLimitError("429", status_code=429)) == 3
    assert fails_with(rxagent.APIConnectionError("reset")) == 3
    assert fails_with(RuntimeError("unclassified")) == 3
    assert fails_with(rxagent.APIStatusError("400", status_code=400)) == 1
    assert fails_with(rxagent.MissingAPIKeyError("no key")) == 1


def test_the_sync_form_retries_too() -> None:
    """The sync form (rxagent's run uses the async one) for code that calls it itself."""
    retry = ModelRetryMiddleware(max_retries=2, initial_delay=0)
    request = ModelRequest(model=FunctionChatModel(lambda m, t: "x"),
                           messages=[HumanMessage(content="hi")])
    failures = [RuntimeError("one"), RuntimeError("two")]

    def handler(request: ModelRequest[Any]) -> ModelResponse:
        if failures:
            raise failures.pop(0)
        return ModelResponse(result=[AIMessage(content="ok")])

    assert retry.wrap_model_call(request, handler).result[0].content == "ok"  # type: ignore[union-attr]
    failures[:] = [RuntimeError(str(n)) for n in range(3)]
    failed = retry.wrap_model_call(request, handler)
    assert failed.result[0].content == \
        "Model call failed after 3 attempts with RuntimeError: 2"  # type: ignore[union-attr]


def test_backoff_grows_and_is_capped() -> None:
    retry = ModelRetryMiddleware(initial_delay=1.0, backoff_factor=2.0, max_delay=5.0,
                                 jitter=False)
    assert [retry._delay(n) for n in range(4)] == [1.0, 2.0, 4.0, 5.0]
    constant = ModelRetryMiddleware(initial_delay=2.0, backoff_factor=0, jitter=False)
    assert [constant._delay(n) for n in range(3)] == [2.0, 2.0, 2.0]
    jittered = ModelRetryMiddleware(initial_delay=4.0, backoff_factor=1.0)
    assert all(3.0 <= jittered._delay(0) <= 5.0 for _ in range(50))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"max_retries": -1}, "max_retries"),
    ({"initial_delay": -1}, "initial_delay"),
    ({"max_delay": -0.5}, "max_delay"),
    ({"backoff_factor": -2}, "backoff_factor"),
    ({"retry_on": RuntimeError}, "retry_on"),
    ({"on_failure": "ignore"}, "on_failure"),
])
def test_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(rxagent.UsageError, match=match):
        ModelRetryMiddleware(**kwargs)
