"""``ToolRetryMiddleware``: the same programs under LangChain 1.5.2 and rxagent stream the
same steps; each attempt's writes stream; cancelling during a wait or an attempt stops the
retries; where rxagent answers a tool's failure instead of raising it."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import rxagent
from rxagent.middleware import ToolRetryMiddleware
from rxagent.tools import tool

from .test_parity import LIBS, QUESTION, Ids, model, prompts, stream

NEVER = 10.0  # seconds: a wait no passing test sees end (a broken one does, then fails)
CALL = [[{"name": "flaky", "args": {"city": "Paris"}, "id": "f1"}], "Done."]


class Flaky:
    """A tool body that fails its first ``failures`` calls, then answers; it counts calls."""

    def __init__(self, failures: int, error: type[Exception] = RuntimeError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self, city: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"down ({self.calls})")
        return f"sunny in {city}"


def agent_with(name: str, body: Flaky, replies: list[Any], **kwargs: Any) -> tuple[Any, Any]:
    lib = LIBS[name]

    def flaky(city: str) -> str:
        """The weather, sometimes."""
        return body(city)

    retry = lib.mw.ToolRetryMiddleware(initial_delay=0, jitter=False, **kwargs)
    fake = model(name, replies)
    return lib.agents.create_agent(fake, tools=[lib.base.tool(flaky)], middleware=[retry]), fake


def both(failures: int, modes: list[str], **kwargs: Any) -> Any:
    results = {}
    for name in LIBS:
        body = Flaky(failures)
        agent, fake = agent_with(name, body, CALL, **kwargs)
        number = Ids()
        results[name] = (stream(agent, QUESTION, modes, number), prompts(fake.seen, number),
                         body.calls)
    ours, theirs = results["rxagent"], results["langchain"]
    assert [e for e in ours[0] if e[0] == "updates"] == \
        [e for e in theirs[0] if e[0] == "updates"]
    assert ours == theirs
    return ours


MODES = [["updates", "values"], ["updates", "messages"]]


@pytest.mark.parametrize("modes", MODES)
def test_a_failing_call_is_retried_as_in_langchain(modes: list[str]) -> None:
    _, _, calls = both(2, modes)
    assert calls == 3


@pytest.mark.parametrize("modes", MODES)
def test_attempts_running_out_answer_with_a_message_as_in_langchain(modes: list[str]) -> None:
    events, _, calls = both(5, modes, max_retries=1)
    assert calls == 2
    answer = next(data["tools"]["messages"][0] for mode, data in events
                  if mode == "updates" and "tools" in data)
    assert answer[1] == "Tool 'flaky' failed after 2 attempts with RuntimeError: down (2). " \
                        "Please try again."


def test_on_failure_text_as_in_langchain() -> None:
    both(5, ["updates", "values"], on_failure=lambda exc: f"no luck: {exc}")


def test_on_failure_error_raises_the_tools_error_as_in_langchain() -> None:
    for name in LIBS:
        body = Flaky(5)
        agent, _ = agent_with(name, body, CALL, max_retries=1, on_failure="error")
        with pytest.raises(RuntimeError, match=r"down \(2\)"):
            list(agent.stream(QUESTION))
        assert body.calls == 2, name


# -- where rxagent answers instead of raising -------------------------------------------------


def test_a_failure_retry_on_refuses_is_answered_as_without_the_middleware() -> None:
    """LangChain raises it (its tools raise); an rxagent tool's failure is an error answer."""
    body = Flaky(5, KeyError)
    agent, _ = agent_with("rxagent", body, CALL, retry_on=(RuntimeError,))
    result = agent.invoke(QUESTION)
    answer = result["messages"][2]
    assert (answer.status, answer.content) == ("error", "Error: KeyError: 'down (1)'")
    assert body.calls == 1
    assert result["messages"][-1].content == "Done."


def test_only_the_tools_named_are_retried() -> None:
    body = Flaky(1)
    agent, _ = agent_with("rxagent", body, CALL, tools=["weather"])
    result = agent.invoke(QUESTION)
    assert result["messages"][2].content == "Error: RuntimeError: down (1)"
    assert body.calls == 1
    body = Flaky(1)
    agent, _ = agent_with("rxagent", body, CALL, tools=["flaky"])
    assert agent.invoke(QUESTION)["messages"][2].content == "sunny in Paris"
    assert body.calls == 2


def test_arguments_the_schema_refuses_are_not_retried() -> None:
    body = Flaky(0)
    replies = [[{"name": "flaky", "args": {"town": "Paris"}, "id": "f1"}], "Done."]
    agent, _ = agent_with("rxagent", body, replies)
    answer = agent.invoke(QUESTION)["messages"][2]
    assert answer.status == "error"
    assert "invalid arguments for tool 'flaky'" in answer.content
    assert body.calls == 0


def test_the_failure_message_keeps_the_exception() -> None:
    agent, _ = agent_with("rxagent", Flaky(5), CALL, max_retries=0)
    answer = agent.invoke(QUESTION)["messages"][2]
    assert answer.content.startswith("Tool 'flaky' failed after 1 attempt with RuntimeError")
    assert isinstance(answer.artifact, RuntimeError)


@pytest.mark.anyio
async def test_an_async_tool_is_retried() -> None:
    calls = []

    @tool
    async def lookup(city: str) -> str:
        """Look the weather up."""
        calls.append(city)
        if len(calls) == 1:
            raise ConnectionError("reset")
        return f"sunny in {city}"

    replies = [[{"name": "lookup", "args": {"city": "Oslo"}, "id": "l1"}], "Done."]
    agent = rxagent.create_agent(model("rxagent", replies), [lookup],
                                 middleware=[ToolRetryMiddleware(initial_delay=0)])
    result = await agent.ainvoke(QUESTION)
    assert result["messages"][2].content == "sunny in Oslo"
    assert calls == ["Oslo", "Oslo"]


# -- each attempt streams; cancelling stops the retries -------------------------------------


class Attempts:
    """An async tool body: each attempt writes to ``custom`` mode; the first fails, later
    ones wait until cancelled. It counts attempts and the ones cancelled."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    async def __call__(self, city: str) -> str:
        self.started += 1
        rxagent.get_stream_writer()(f"attempt {self.started}")
        if self.started == 1:
            raise RuntimeError("first attempt fails")
        try:
            with anyio.fail_after(NEVER):  # a broken cancellation fails, and is retried
                await anyio.sleep_forever()
        finally:
            self.cancelled += 1
        return "never"


def cancellable(body: Attempts, delay: float) -> Any:
    @tool
    async def flaky(city: str) -> str:
        """The weather, sometimes."""
        return await body(city)

    retry = ToolRetryMiddleware(max_retries=5, initial_delay=delay, backoff_factor=0,
                                jitter=False)
    return rxagent.create_agent(model("rxagent", CALL), [flaky], middleware=[retry])


@pytest.mark.parametrize(("during", "delay"), [("backoff", NEVER), ("second attempt", 0)])
def test_leaving_stream_during_a_retry_stops_it(during: str, delay: float) -> None:
    body = Attempts()
    parts = cancellable(body, delay).stream(QUESTION, stream_mode="custom")
    leave_at = "attempt 1" if during == "backoff" else "attempt 2"
    written = []
    for data in parts:
        written.append(data)
        if data == leave_at:
            break
    else:
        pytest.fail(f"the stream ended without reaching the {during}")
    parts.close()  # the sync iterator waits for its run to stop
    # Each attempt's writes streamed; no attempt started after the break.
    assert written == ["attempt 1", "attempt 2"][:body.started]
    assert body.started == (1 if during == "backoff" else 2)
    assert body.cancelled == (0 if during == "backoff" else 1)


@pytest.mark.anyio
async def test_cancelling_astream_during_a_retry_stops_it() -> None:
    body = Attempts()
    agent = cancellable(body, NEVER)
    reached = anyio.Event()

    async def consume() -> None:
        async for data in agent.astream(QUESTION, stream_mode="custom"):
            if data == "attempt 1":
                reached.set()
        pytest.fail("the stream ended without reaching the first attempt")

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await reached.wait()
        group.cancel_scope.cancel()
    for _ in range(20):  # a later attempt would have started by now
        await anyio.sleep(0)
    assert body.started == 1


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"max_retries": -1}, "max_retries"),
    ({"initial_delay": -1}, "initial_delay"),
    ({"tools": "flaky"}, "tools"),
    ({"tools": [3]}, "tools"),
    ({"on_failure": "skip"}, "on_failure"),
])
def test_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(rxagent.UsageError, match=match):
        ToolRetryMiddleware(**kwargs)


def test_langchains_older_on_failure_names_are_taken_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="'error'"):
        assert ToolRetryMiddleware(on_failure="raise").on_failure == "error"  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning, match="'continue'"):
        retry = ToolRetryMiddleware(on_failure="return_message")  # type: ignore[arg-type]
    assert retry.on_failure == "continue"
