"""``ModelCallLimitMiddleware`` and ``ToolCallLimitMiddleware``: the same programs under
LangChain 1.5.2 and rxagent stream the same steps; their errors and arguments."""

from __future__ import annotations

from typing import Any

import pytest

import rxagent
from rxagent.messages import ToolMessage
from rxagent.middleware import (
    ModelCallLimitExceededError,
    ModelCallLimitMiddleware,
    ToolCallLimitExceededError,
    ToolCallLimitMiddleware,
)

from .test_parity import CONFIG, LIBS, QUESTION, Ids, message_shape, model, prompts, stream

AGAIN = {"messages": [{"role": "user", "content": "And in Oslo?"}]}


def call(name: str, id: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": id}


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def clock(city: str) -> str:
    """The time in a city."""
    return f"noon in {city}"


def agent_with(name: str, replies: list[Any], middleware: list[Any],
               checkpointer: bool = False) -> tuple[Any, Any]:
    lib = LIBS[name]
    fake = model(name, replies)
    agent = lib.agents.create_agent(
        fake, tools=[lib.base.tool(weather), lib.base.tool(clock)], middleware=middleware,
        checkpointer=lib.saver() if checkpointer else None)
    return agent, fake


def both(program: Any, *inputs: Any, modes: list[str] | None = None) -> None:
    """Run ``program(lib name)`` under both libraries on ``inputs`` in turn (one thread);
    the streams, the thread's state and the prompts are the same."""
    results = {}
    for name in LIBS:
        agent, fake, thread = program(name)
        number = Ids()
        config = CONFIG if thread else None
        runs = [settled([without_thread_id(event) for event in
                         stream(agent, given, modes or ["updates", "values"], number, config)])
                for given in inputs]
        state = None
        if thread:
            values = agent.get_state(CONFIG).values
            # LangGraph's snapshot keeps the last "jump_to" written; rxagent's drops it once
            # read (the core's choice, not these middleware's).
            state = {key: [message_shape(m, number) for m in value] if key == "messages"
                     else value for key, value in values.items() if key != "jump_to"}
        results[name] = (runs, state, prompts(fake.seen, number))
    ours, theirs = results["rxagent"], results["langchain"]
    assert [[e for e in run if e[0] == "updates"] for run in ours[0]] == \
        [[e for e in run if e[0] == "updates"] for run in theirs[0]]
    assert ours == theirs


def without_thread_id(event: Any) -> Any:
    """A ``messages`` part's metadata without ``thread_id``: LangGraph copies the config's
    ``configurable`` there and rxagent does not (the core's choice, not these middleware's)."""
    mode, data = event
    if mode != "messages":
        return event
    return mode, (data[0], {k: v for k, v in data[1].items() if k != "thread_id"})


def settled(events: list[Any]) -> list[Any]:
    """``events`` with each run of parallel tool calls' parts (their updates, their messages
    without the task's namespace) in a fixed order: both libraries show them as the calls
    finish, which is up to the threads they run in."""
    out: list[Any] = []
    run: list[Any] = []
    for event in [*events, None]:
        if event is not None and event[0] == "updates" and list(event[1]) == ["tools"]:
            run.append(event)
            continue
        if event is not None and event[0] == "messages" and event[1][0][0] == "ToolMessage":
            metadata = {k: v for k, v in event[1][1].items()
                        if k not in ("langgraph_checkpoint_ns", "checkpoint_ns")}
            run.append(("messages", (event[1][0], metadata)))
            continue
        out.extend(sorted(run, key=repr))
        run = []
        if event is not None:
            out.append(event)
    return out


MODES = [["updates", "values"], ["updates", "messages"]]

# -- model calls ------------------------------------------------------------------------------


@pytest.mark.parametrize("modes", MODES)
def test_a_run_limit_ends_the_run_with_a_message_as_in_langchain(modes: list[str]) -> None:
    def program(name: str) -> tuple[Any, Any, bool]:
        limit = LIBS[name].mw.ModelCallLimitMiddleware(run_limit=2)
        replies = [[call("weather", "w1", city="Paris")], [call("clock", "c1", city="Paris")],
                   "Never said."]
        return *agent_with(name, replies, [limit]), False

    both(program, QUESTION, modes=modes)


@pytest.mark.parametrize("modes", MODES)
def test_a_thread_limit_counts_across_runs_as_in_langchain(modes: list[str]) -> None:
    """Two runs on one thread: the thread's count goes on, the run's starts again (the
    second run ends at the thread's limit, not its own)."""
    def program(name: str) -> tuple[Any, Any, bool]:
        limit = LIBS[name].mw.ModelCallLimitMiddleware(thread_limit=3, run_limit=2)
        replies = [[call("weather", "w1", city="Paris")], "Sunny.",
                   [call("weather", "w2", city="Oslo")], "Never said."]
        return *agent_with(name, replies, [limit], checkpointer=True), True

    both(program, QUESTION, AGAIN, modes=modes)


def test_the_error_behaviour_raises_the_same_error_as_langchain() -> None:
    texts = {}
    for name in LIBS:
        limit = LIBS[name].mw.ModelCallLimitMiddleware(run_limit=1, exit_behavior="error")
        agent, _ = agent_with(name, [[call("weather", "w1", city="Paris")], "No."], [limit])
        with pytest.raises(Exception, match="Model call limits exceeded") as raised:
            list(agent.stream(QUESTION))
        texts[name] = str(raised.value)
    assert texts["rxagent"] == texts["langchain"] == \
        "Model call limits exceeded: run limit (1/1)"


def test_the_error_carries_the_counts() -> None:
    agent, _ = agent_with("rxagent", [[call("weather", "w1", city="Paris")], "No."],
                          [ModelCallLimitMiddleware(thread_limit=1, exit_behavior="error")])
    with pytest.raises(ModelCallLimitExceededError) as raised:
        agent.invoke(QUESTION)
    error = raised.value
    assert isinstance(error, rxagent.RunError)
    assert (error.thread_count, error.run_count, error.thread_limit, error.run_limit) == \
        (1, 1, 1, None)


def test_the_thread_keeps_its_count_but_not_the_runs() -> None:
    agent, _ = agent_with("rxagent", ["Hi.", "Hi again."],
                          [ModelCallLimitMiddleware(thread_limit=5, run_limit=5)],
                          checkpointer=True)
    agent.invoke(QUESTION, CONFIG)
    agent.invoke(AGAIN, CONFIG)
    values = agent.get_state(CONFIG).values
    # The run's count is never checkpointed; the thread's is.
    assert values["thread_model_call_count"] == 2
    assert "run_model_call_count" not in values


def test_the_counts_stay_out_of_invokes_result() -> None:
    for name in LIBS:
        limit = LIBS[name].mw.ModelCallLimitMiddleware(thread_limit=5)
        agent, _ = agent_with(name, ["Hi."], [limit])
        assert set(agent.invoke(QUESTION)) == {"messages"}, name


@pytest.mark.anyio
async def test_the_limit_ends_an_async_run() -> None:
    agent, _ = agent_with("rxagent", [[call("weather", "w1", city="Paris")], "Never said."],
                          [ModelCallLimitMiddleware(run_limit=1)])
    steps = [update async for update in agent.astream(QUESTION, stream_mode="updates")]
    assert [list(step) for step in steps] == [
        ["ModelCallLimitMiddleware.before_model"], ["model"],
        ["ModelCallLimitMiddleware.after_model"], ["tools"],
        ["ModelCallLimitMiddleware.before_model"]]
    last = steps[-1]["ModelCallLimitMiddleware.before_model"]
    assert last["jump_to"] == "end"
    assert last["messages"][0].content == "Model call limits exceeded: run limit (1/1)"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, "At least one limit"),
    ({"run_limit": 1, "exit_behavior": "continue"}, "exit_behavior"),
    ({"run_limit": -1}, "run_limit"),
    ({"thread_limit": 1.5}, "thread_limit"),
])
def test_model_call_limit_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(rxagent.UsageError, match=match):
        ModelCallLimitMiddleware(**kwargs)


# -- tool calls -------------------------------------------------------------------------------


@pytest.mark.parametrize("modes", MODES)
def test_continue_blocks_the_calls_past_the_limit_as_in_langchain(modes: list[str]) -> None:
    """One weather call of two runs; the clock call is not limited; the model goes on."""
    def program(name: str) -> tuple[Any, Any, bool]:
        limit = LIBS[name].mw.ToolCallLimitMiddleware(tool_name="weather", run_limit=1)
        replies = [[call("weather", "w1", city="Paris"), call("clock", "c1", city="Paris"),
                    call("weather", "w2", city="Oslo")],
                   [call("weather", "w3", city="Rome")], "Done."]
        return *agent_with(name, replies, [limit]), False

    both(program, QUESTION, modes=modes)


@pytest.mark.parametrize("modes", MODES)
def test_end_stops_before_any_call_of_the_reply_runs_as_in_langchain(modes: list[str]) -> None:
    def program(name: str) -> tuple[Any, Any, bool]:
        limit = LIBS[name].mw.ToolCallLimitMiddleware(thread_limit=2, exit_behavior="end")
        replies = [[call("weather", "w1", city="Paris")],
                   [call("clock", "c1", city="Paris"), call("weather", "w2", city="Oslo")],
                   "Never said."]
        return *agent_with(name, replies, [limit], checkpointer=True), True

    both(program, QUESTION, modes=modes)


def test_two_limiters_share_the_counts_as_in_langchain() -> None:
    """A limiter of every tool and one of a single tool, on one thread over two runs."""
    def program(name: str) -> tuple[Any, Any, bool]:
        mw = LIBS[name].mw
        limits = [mw.ToolCallLimitMiddleware(thread_limit=4),
                  mw.ToolCallLimitMiddleware(tool_name="weather", run_limit=1)]
        replies = [[call("weather", "w1", city="Paris"), call("clock", "c1", city="Paris")],
                   "Sunny.",
                   [call("weather", "w2", city="Oslo"), call("weather", "w3", city="Rome"),
                    call("clock", "c2", city="Oslo"), call("clock", "c3", city="Rome")],
                   "Done."]
        return *agent_with(name, replies, limits, checkpointer=True), True

    both(program, QUESTION, AGAIN)


def test_tool_limit_error_is_langchains() -> None:
    texts = {}
    for name in LIBS:
        limit = LIBS[name].mw.ToolCallLimitMiddleware(tool_name="weather", run_limit=1,
                                                      exit_behavior="error")
        replies = [[call("weather", "w1", city="Paris"), call("weather", "w2", city="Oslo")]]
        agent, _ = agent_with(name, replies, [limit])
        with pytest.raises(Exception, match="call limit reached") as raised:
            list(agent.stream(QUESTION))
        texts[name] = str(raised.value)
    assert texts["rxagent"] == texts["langchain"]
    assert texts["rxagent"] == "'weather' tool call limit reached: run limit exceeded (2/1 calls)."


def test_tool_limit_error_carries_the_counts() -> None:
    agent, _ = agent_with("rxagent", [[call("clock", "c1", city="Paris")] * 1 + [
        call("clock", "c2", city="Oslo")]], [ToolCallLimitMiddleware(thread_limit=1,
                                                                     exit_behavior="error")])
    with pytest.raises(ToolCallLimitExceededError) as raised:
        agent.invoke(QUESTION)
    error = raised.value
    assert isinstance(error, rxagent.RunError)
    assert (error.thread_count, error.run_count, error.tool_name) == (2, 2, None)


@pytest.mark.anyio
async def test_continue_in_an_async_run() -> None:
    agent, _ = agent_with("rxagent", [
        [call("weather", "w1", city="Paris"), call("weather", "w2", city="Oslo")], "Done."],
        [ToolCallLimitMiddleware(tool_name="weather", run_limit=1)])
    result = await agent.ainvoke(QUESTION)
    answers = {m.tool_call_id: (m.status, m.content) for m in result["messages"]
               if isinstance(m, ToolMessage)}
    assert answers == {
        "w1": ("success", "sunny in Paris"),
        "w2": ("error", "Tool call limit exceeded. Do not call 'weather' again."),
    }
    assert result["messages"][-1].content == "Done."


def test_names_tell_limiters_apart() -> None:
    assert ToolCallLimitMiddleware(run_limit=1).name == "ToolCallLimitMiddleware"
    assert ToolCallLimitMiddleware(tool_name="weather", run_limit=1).name == \
        "ToolCallLimitMiddleware[weather]"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, "At least one limit"),
    ({"run_limit": 1, "exit_behavior": "stop"}, "exit_behavior"),
    ({"run_limit": 3, "thread_limit": 2}, "cannot exceed"),
    ({"run_limit": "3"}, "run_limit"),
])
def test_tool_call_limit_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(rxagent.UsageError, match=match):
        ToolCallLimitMiddleware(**kwargs)
