"""Threads on the agent: memory across runs, state and its history, updates, branches,
interrupts with resume, durability, and runs that go on after a failure."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

import rxagent
from rxagent import create_agent
from rxagent.checkpoint import BaseCheckpointSaver, Checkpoint, InMemorySaver
from rxagent.messages import (
    REMOVE_ALL_MESSAGES,
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    ToolMessage,
)
from rxagent.testing import FunctionChatModel, ScriptedChatModel
from rxagent.tools import tool
from rxagent.types import Command, Interrupt, interrupt

CONFIG = {"configurable": {"thread_id": "1"}}


def calling(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[
            {"name": name, "args": args, "id": f"call_{index}"}
            for index, (name, args) in enumerate(calls)
        ],
    )


class CountingSaver(InMemorySaver):
    """An InMemorySaver that counts what it is asked to write."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[Checkpoint] = []
        self.task_writes: list[tuple[str, list[tuple[str, Any]]]] = []

    def put(self, checkpoint: Checkpoint) -> None:
        self.puts.append(checkpoint)
        super().put(checkpoint)

    def put_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str,
                   writes: Sequence[tuple[str, Any]]) -> None:
        self.task_writes.append((task_id, list(writes)))
        super().put_writes(thread_id, checkpoint_ns, checkpoint_id, task_id, writes)


class Delegating(BaseCheckpointSaver):
    """Another saver object over the same store: what a second process sees (nothing read or
    made by the first is remembered for it)."""

    def __init__(self, store: BaseCheckpointSaver) -> None:
        self.store = store

    def put(self, checkpoint: Checkpoint) -> None:
        self.store.put(checkpoint)

    def put_writes(self, *args: Any) -> None:
        self.store.put_writes(*args)

    def get(self, *args: Any) -> Any:
        return self.store.get(*args)

    def list(self, *args: Any, **kwargs: Any) -> Any:
        return self.store.list(*args, **kwargs)

    def delete_thread(self, thread_id: str) -> None:
        self.store.delete_thread(thread_id)


def simple(name: str, fn: Any) -> Any:
    """A tool named ``name`` that calls ``fn()``."""
    return tool(name=name, description=f"{name.title()}.")(fn)


def texts(messages: Sequence[BaseMessage]) -> list[str]:
    return [f"{m.type}:{m.text}" for m in messages]


# -- memory across runs -------------------------------------------------------------------------


def test_the_second_run_on_a_thread_remembers_the_first() -> None:
    model = ScriptedChatModel(["Hi Bob!", "Your name is Bob.", "new"])
    agent = create_agent(model, checkpointer=InMemorySaver())
    agent.invoke({"messages": [("user", "hi! I'm bob")]}, CONFIG)
    final = agent.invoke({"messages": [("user", "what's my name?")]}, CONFIG)
    assert texts(final["messages"]) == [
        "human:hi! I'm bob", "ai:Hi Bob!", "human:what's my name?", "ai:Your name is Bob.",
    ]
    # The model saw the first turn.
    assert texts(model.calls[1].messages) == texts(final["messages"][:3])
    # Another thread starts empty.
    other = agent.invoke({"messages": [("user", "hello")]}, {"configurable": {"thread_id": "2"}})
    assert texts(other["messages"]) == ["human:hello", "ai:new"]


def test_every_message_in_a_thread_gets_an_id() -> None:
    agent = create_agent(
        ScriptedChatModel([calling(("get", {})), "done"]),
        [simple("get", lambda: "ok")],
        checkpointer=InMemorySaver(),
    )
    final = agent.invoke({"messages": [("user", "go")]}, CONFIG)
    ids = [m.id for m in final["messages"]]
    assert all(ids) and len(set(ids)) == 4
    assert [m.id for m in agent.get_state(CONFIG).values["messages"]] == ids


def test_a_thread_id_without_a_checkpointer_is_an_error_not_ignored() -> None:
    agent = create_agent(ScriptedChatModel(["a"]))
    with pytest.raises(rxagent.UsageError, match="no checkpointer"):
        agent.invoke({"messages": [("user", "hi")]}, CONFIG)
    with pytest.raises(rxagent.UsageError, match="no checkpointer"):
        list(agent.stream({"messages": [("user", "hi")]}, CONFIG))
    with pytest.raises(rxagent.UsageError, match="keeps no threads"):
        agent.get_state(CONFIG)


def test_a_checkpointer_needs_a_thread_id_and_resuming_needs_a_thread() -> None:
    agent = create_agent(ScriptedChatModel(["a"]), checkpointer=InMemorySaver())
    with pytest.raises(rxagent.UsageError, match="thread_id"):
        agent.invoke({"messages": [("user", "hi")]})
    with pytest.raises(rxagent.UsageError, match="no checkpoint to go on from"):
        agent.invoke(None, CONFIG)
    with pytest.raises(rxagent.UsageError, match="answers an interrupt"):
        agent.invoke({"messages": [("user", "hi")]}, CONFIG)
        agent.invoke(Command(resume="x"), CONFIG)
    with pytest.raises(rxagent.UsageError, match="a saver"):
        create_agent(ScriptedChatModel(["a"]), checkpointer=object())  # type: ignore[arg-type]


# -- state and history --------------------------------------------------------------------------


def test_get_state_and_history_as_langgraph_gives_them() -> None:
    agent = create_agent(
        ScriptedChatModel([calling(("get", {})), "done"]),
        [simple("get", lambda: "ok")],
        checkpointer=InMemorySaver(),
    )
    agent.invoke({"messages": [("user", "go")]}, CONFIG)
    state = agent.get_state(CONFIG)
    assert state.next == () and state.tasks == () and state.interrupts == ()
    assert texts(state.values["messages"]) == ["human:go", "ai:", "tool:ok", "ai:done"]
    assert state.metadata is not None and state.metadata["source"] == "loop"
    assert state.metadata["step"] == 3 and state.created_at
    history = list(agent.get_state_history(CONFIG))
    assert [(h.metadata or {})["step"] for h in history] == [3, 2, 1, 0, -1]
    assert [h.next for h in history] == [(), ("model",), ("tools",), ("model",), ("__start__",)]
    assert [len(h.values["messages"]) for h in history] == [4, 3, 2, 1, 0]
    # Each checkpoint's parent is the next older one.
    for newer, older in itertools.pairwise(history):
        assert newer.parent_config == older.config
    assert history[-1].parent_config is None
    # A task's result is what it wrote in the next checkpoint.
    tools_task = history[2].tasks[0]
    assert tools_task.name == "tools" and tools_task.path == ("__pregel_push", 0, False)
    assert texts(tools_task.result["messages"]) == ["tool:ok"]
    assert [h.config for h in agent.get_state_history(CONFIG, limit=2)] == [
        h.config for h in history[:2]]
    assert [h.config for h in agent.get_state_history(CONFIG, before=history[1].config)] == [
        h.config for h in history[2:]]
    assert [(h.metadata or {})["source"] for h in agent.get_state_history(
        CONFIG, filter={"source": "input"})] == ["input"]
    # The state at an earlier checkpoint, by its id.
    assert texts(agent.get_state(history[2].config).values["messages"]) == ["human:go", "ai:"]


def test_a_state_read_by_another_saver_object_is_folded_from_the_steps() -> None:
    store = InMemorySaver()
    agent = create_agent(ScriptedChatModel(["one", "two"]), checkpointer=store)
    agent.invoke({"messages": [("user", "a")]}, CONFIG)
    agent.invoke({"messages": [("user", "b")]}, CONFIG)
    fresh = create_agent(ScriptedChatModel(["three"]), checkpointer=Delegating(store))
    assert texts(fresh.get_state(CONFIG).values["messages"]) == [
        "human:a", "ai:one", "human:b", "ai:two"]
    final = fresh.invoke({"messages": [("user", "c")]}, CONFIG)
    assert texts(final["messages"])[-2:] == ["human:c", "ai:three"]
    assert len(list(fresh.get_state_history(CONFIG))) == 9  # 3 a turn


def test_a_step_stores_what_it_added_not_the_whole_conversation() -> None:
    saver = CountingSaver()
    agent = create_agent(ScriptedChatModel([f"reply {n}" for n in range(30)]),
                         checkpointer=saver)
    for n in range(30):
        agent.invoke({"messages": [("user", f"turn {n}")]}, CONFIG)
    sizes = [sum(len(w[2]) for w in put.state["writes"] if w[1] == "messages")
             for put in saver.puts]
    # Every checkpoint holds at most the one message its step added.
    assert max(sizes) == 1 and len(saver.puts) == 90
    assert len(agent.get_state(CONFIG).values["messages"]) == 60


# -- updates and branches -----------------------------------------------------------------------


def test_update_state_adds_and_replaces_by_id_and_sets_what_runs_next() -> None:
    model = ScriptedChatModel(["first", "after tool"])
    agent = create_agent(model, [simple("get", lambda: "ok")],
                         checkpointer=InMemorySaver())
    agent.invoke({"messages": [("user", "hi")]}, CONFIG)
    first = agent.get_state(CONFIG).values["messages"][1]
    config = agent.update_state(CONFIG, {"messages": [AIMessage(content="edited", id=first.id)]})
    assert config["configurable"]["checkpoint_id"]
    state = agent.get_state(CONFIG)
    assert texts(state.values["messages"]) == ["human:hi", "ai:edited"]
    assert state.metadata is not None and state.metadata["source"] == "update"
    assert state.next == ()
    # As the model, with tool calls: the tools run next; going on runs them.
    agent.update_state(CONFIG, {"messages": [calling(("get", {}))]}, as_node="model")
    assert agent.get_state(CONFIG).next == ("tools",)
    final = agent.invoke(None, CONFIG)
    assert texts(final["messages"])[-3:] == ["ai:", "tool:ok", "ai:after tool"]
    with pytest.raises(rxagent.InvalidUpdateError, match="'mood'"):
        agent.update_state(CONFIG, {"mood": "happy"})
    with pytest.raises(rxagent.InvalidUpdateError, match="as_node"):
        agent.update_state(CONFIG, {"messages": []}, as_node="planner")


def test_a_run_from_an_earlier_checkpoint_branches() -> None:
    agent = create_agent(ScriptedChatModel(["one", "two", "again"]),
                         checkpointer=InMemorySaver())
    agent.invoke({"messages": [("user", "a")]}, CONFIG)
    agent.invoke({"messages": [("user", "b")]}, CONFIG)
    after_first = next(h for h in agent.get_state_history(CONFIG)
                       if texts(h.values["messages"]) == ["human:a", "ai:one"])
    final = agent.invoke({"messages": [("user", "c")]}, after_first.config)
    assert texts(final["messages"]) == ["human:a", "ai:one", "human:c", "ai:again"]
    assert texts(agent.get_state(CONFIG).values["messages"])[-1] == "ai:again"
    # Both branches stay in the history.
    assert sum(1 for h in agent.get_state_history(CONFIG) if "human:b" in texts(
        h.values["messages"])) == 2


# -- interrupts ---------------------------------------------------------------------------------


def test_an_interrupt_stops_the_run_and_a_resume_answers_it() -> None:
    calls: list[str] = []

    @tool
    def book(hotel: str) -> str:
        """Book a hotel."""
        calls.append(hotel)
        answer = interrupt({"confirm": hotel})
        return f"booked {hotel}: {answer}"

    agent = create_agent(ScriptedChatModel([calling(("book", {"hotel": "Ritz"})), "Booked."]),
                         [book], checkpointer=InMemorySaver())
    updates = list(agent.stream({"messages": [("user", "book")]}, CONFIG,
                                stream_mode="updates"))
    (stop,) = updates[-1]["__interrupt__"]
    assert isinstance(stop, Interrupt) and stop.value == {"confirm": "Ritz"}
    state = agent.get_state(CONFIG)
    assert state.next == ("tools",) and state.interrupts == (stop,)
    assert state.tasks[0].interrupts == (stop,)
    values = list(agent.stream(Command(resume="yes"), CONFIG, stream_mode="values"))
    assert texts(values[-1]["messages"])[-2:] == ["tool:booked Ritz: yes", "ai:Booked."]
    assert calls == ["Ritz", "Ritz"]  # the tool runs again from its start, as in LangGraph
    assert agent.get_state(CONFIG).interrupts == ()


def test_invoke_returns_the_interrupt_with_the_state() -> None:
    agent = create_agent(
        ScriptedChatModel([calling(("ask", {}))]),
        [simple("ask", lambda: interrupt("why?"))],
        checkpointer=InMemorySaver(),
    )
    final = agent.invoke({"messages": [("user", "go")]}, CONFIG)
    assert [i.value for i in final["__interrupt__"]] == ["why?"]
    assert texts(final["messages"]) == ["human:go", "ai:"]


def test_parallel_interrupts_are_resumed_by_id_and_finished_calls_do_not_run_again() -> None:
    runs: list[str] = []

    @tool
    def ask(who: str) -> str:
        """Ask someone."""
        runs.append(who)
        return f"{who} says {interrupt(f'ask {who}')}"

    @tool
    def fetch() -> str:
        """Fetch."""
        runs.append("fetch")
        return "fetched"

    agent = create_agent(
        ScriptedChatModel([calling(("ask", {"who": "ann"}), ("fetch", {}),
                                   ("ask", {"who": "bob"})), "done"]),
        [ask, fetch], checkpointer=InMemorySaver(),
    )
    first = agent.invoke({"messages": [("user", "go")]}, CONFIG)
    by_value = {i.value: i.id for i in first["__interrupt__"]}
    assert set(by_value) == {"ask ann", "ask bob"}
    with pytest.raises(rxagent.UsageError, match="2 interrupts pending"):
        agent.invoke(Command(resume="yes"), CONFIG)
    # Answer only ann: bob's stays pending, and ann's result is kept.
    partly = agent.invoke(Command(resume={by_value["ask ann"]: "yes"}), CONFIG)
    assert [i.value for i in partly["__interrupt__"]] == ["ask bob"]
    final = agent.invoke(Command(resume={by_value["ask bob"]: "no"}), CONFIG)
    assert texts(final["messages"])[2:] == [
        "tool:ann says yes", "tool:fetched", "tool:bob says no", "ai:done"]
    assert runs.count("fetch") == 1
    assert runs.count("ann") == 2 and runs.count("bob") == 3


def test_a_tool_that_asks_twice_gets_both_answers_in_order() -> None:
    @tool
    def form() -> str:
        """Fill a form."""
        name = interrupt("name?")
        age = interrupt("age?")
        return f"{name} is {age}"

    agent = create_agent(ScriptedChatModel([calling(("form", {})), "ok"]), [form],
                         checkpointer=InMemorySaver())
    asked = agent.invoke({"messages": [("user", "go")]}, CONFIG)["__interrupt__"]
    assert [i.value for i in asked] == ["name?"]
    asked = agent.invoke(Command(resume="Ann"), CONFIG)["__interrupt__"]
    assert [i.value for i in asked] == ["age?"]
    final = agent.invoke(Command(resume=41), CONFIG)
    assert texts(final["messages"])[-2:] == ["tool:Ann is 41", "ai:ok"]


def test_interrupt_outside_a_thread_is_the_tools_error() -> None:
    agent = create_agent(
        ScriptedChatModel([calling(("ask", {})), "fine"]),
        [simple("ask", lambda: interrupt("x"))],
    )
    final = agent.invoke({"messages": [("user", "go")]})
    assert "checkpointer" in final["messages"][2].text
    assert final["messages"][2].status == "error"


def test_interrupt_before_and_after_nodes() -> None:
    agent = create_agent(
        ScriptedChatModel([calling(("get", {})), "done"]),
        [simple("get", lambda: "ok")],
        checkpointer=InMemorySaver(), interrupt_before=["tools"],
    )
    updates = list(agent.stream({"messages": [("user", "go")]}, CONFIG, stream_mode="updates"))
    assert updates[-1] == {"__interrupt__": ()}
    assert agent.get_state(CONFIG).next == ("tools",)
    final = agent.invoke(None, CONFIG)
    assert texts(final["messages"])[-2:] == ["tool:ok", "ai:done"]

    after = create_agent(ScriptedChatModel(["one", "two"]), checkpointer=InMemorySaver(),
                         interrupt_after=["model"])
    # The model's step is its run's last, so nothing is left to stop before.
    assert texts(after.invoke({"messages": [("user", "a")]}, CONFIG)["messages"]) == [
        "human:a", "ai:one"]
    with pytest.raises(rxagent.UsageError, match="interrupt_before"):
        create_agent(ScriptedChatModel([]), interrupt_before=["planner"])


# -- durability and failures --------------------------------------------------------------------


class InThreads(Delegating):
    """A saver with sync methods only, as SQLite's and Redis's: a run calls it in a worker
    thread. It records the threads it was called in, and can be made to fail."""

    def __init__(self, store: BaseCheckpointSaver, fail_at: int = 0) -> None:
        super().__init__(store)
        self.threads: set[int] = set()
        self.fail_at = fail_at
        self.puts = 0

    def put(self, checkpoint: Checkpoint) -> None:
        self.threads.add(threading.get_ident())
        self.puts += 1
        if self.puts == self.fail_at:
            raise OSError("disk full")
        super().put(checkpoint)


class NativeAsync(Delegating):
    """A saver with async methods of its own (as over an async database driver)."""

    async def aput(self, checkpoint: Checkpoint) -> None:
        await anyio.sleep(0)
        self.put(checkpoint)

    async def aput_writes(self, *args: Any) -> None:
        await anyio.sleep(0)
        self.put_writes(*args)


@pytest.mark.parametrize("where", ["in place", "in threads", "native async"])
@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_each_durability_keeps_the_same_thread(durability: str, where: str) -> None:
    saver = CountingSaver()
    front: BaseCheckpointSaver = {
        "in place": saver, "in threads": InThreads(saver), "native async": NativeAsync(saver),
    }[where]
    agent = create_agent(
        ScriptedChatModel([calling(("get", {})), "done", "again"]),
        [simple("get", lambda: "ok")], checkpointer=front,
    )
    agent.invoke({"messages": [("user", "go")]}, CONFIG, durability=durability)  # type: ignore[arg-type]
    agent.invoke({"messages": [("user", "more")]}, CONFIG, durability=durability)  # type: ignore[arg-type]
    fresh = create_agent(ScriptedChatModel([]), checkpointer=Delegating(saver))
    assert texts(fresh.get_state(CONFIG).values["messages"]) == [
        "human:go", "ai:", "tool:ok", "ai:done", "human:more", "ai:again"]
    # exit writes one checkpoint a run; the others one a step (5 and 3 here).
    assert len(saver.puts) == (2 if durability == "exit" else 8)
    if isinstance(front, InThreads):  # never on the event loop's thread
        assert threading.get_ident() not in front.threads and front.threads
        if durability == "async":  # all on the saver's own writer thread
            assert len(front.threads) == 1


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_a_saver_that_fails_fails_the_run_after_its_events(durability: str) -> None:
    # The checkpoint after the model's reply; with "exit", the only one.
    saver = InThreads(InMemorySaver(), fail_at=1 if durability == "exit" else 3)
    agent = create_agent(ScriptedChatModel([calling(("get", {})), "done"]),
                         [simple("get", lambda: "ok")], checkpointer=saver)
    seen: list[str] = []
    with pytest.raises(OSError, match="disk full"):
        for update in agent.stream({"messages": [("user", "go")]}, CONFIG,
                                   stream_mode="updates", durability=durability):  # type: ignore[arg-type]
            seen.extend(update)
    assert seen[:1] == ["model"]  # what came before the failure was delivered


def test_a_failed_run_goes_on_from_its_last_step_without_running_finished_tools() -> None:
    ran: list[str] = []
    replies: list[Any] = [calling(("get", {})), RuntimeError("provider down"), "done"]

    def reply(messages: list[BaseMessage], tools: Any) -> Any:
        item = replies.pop(0)
        if isinstance(item, Exception):
            raise rxagent.ServerError("provider down", status_code=503)
        return item

    agent = create_agent(FunctionChatModel(reply),
                         [simple("get", lambda: ran.append("get") or "ok")],
                         checkpointer=InMemorySaver())
    seen: list[Any] = []
    with pytest.raises(rxagent.ServerError):
        for update in agent.stream({"messages": [("user", "go")]}, CONFIG,
                                   stream_mode="updates", durability="async"):
            seen.append(update)
    assert [next(iter(u)) for u in seen] == ["model", "tools"]
    assert agent.get_state(CONFIG).next == ("model",)
    final = agent.invoke(None, CONFIG)
    assert texts(final["messages"]) == ["human:go", "ai:", "tool:ok", "ai:done"]
    assert ran == ["get"]


def test_two_runs_on_one_thread_at_once_are_refused() -> None:
    started, release = threading.Event(), threading.Event()

    @tool
    def wait() -> str:
        """Wait."""
        started.set()
        release.wait(10)
        return "done"

    agent = create_agent(ScriptedChatModel([calling(("wait", {})), "ok", "other"]), [wait],
                         checkpointer=InMemorySaver())
    errors: list[BaseException] = []
    first = threading.Thread(
        target=lambda: agent.invoke({"messages": [("user", "a")]}, CONFIG))
    first.start()
    assert started.wait(10)
    try:
        with pytest.raises(rxagent.ThreadBusyError, match="already has a run"):
            agent.invoke({"messages": [("user", "b")]}, CONFIG)
        # Another thread is free.
        other = agent.invoke({"messages": [("user", "c")]}, {"configurable": {"thread_id": "2"}})
        assert texts(other["messages"])[-1] == "ai:ok"
    except BaseException as error:
        errors.append(error)
    finally:
        release.set()
        first.join(10)
    assert not first.is_alive() and not errors


# -- async forms --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_forms_on_asyncio_and_trio() -> None:
    agent = create_agent(
        ScriptedChatModel([calling(("ask", {})), "thanks"]),
        [simple("ask", lambda: f"got {interrupt('q')}")],
        checkpointer=InMemorySaver(),
    )
    first = await agent.ainvoke({"messages": [("user", "go")]}, CONFIG)
    assert [i.value for i in first["__interrupt__"]] == ["q"]
    assert (await agent.aget_state(CONFIG)).next == ("tools",)
    parts = [p async for p in agent.astream(Command(resume="a"), CONFIG,
                                            stream_mode="updates")]
    assert [next(iter(p)) for p in parts] == ["tools", "model"]
    history = [h async for h in agent.aget_state_history(CONFIG)]
    assert len(history) == 5
    await agent.aupdate_state(CONFIG, {"messages": [HumanMessage(content="note")]},
                              as_node="tools")
    assert (await agent.aget_state(CONFIG)).next == ("model",)
    await anyio.sleep(0)


def test_tool_messages_restored_on_resume_are_the_same_objects_as_saved() -> None:
    agent = create_agent(
        ScriptedChatModel([calling(("ask", {}), ("get", {})), "done"]),
        [simple("ask", lambda: interrupt("q")),
         simple("get", lambda: "ok")],
        checkpointer=InMemorySaver(),
    )
    agent.invoke({"messages": [("user", "go")]}, CONFIG)
    (task_get,) = [t for t in agent.get_state(CONFIG).tasks if t.result]
    saved = task_get.result["messages"][0]
    assert isinstance(saved, ToolMessage) and saved.text == "ok"
    final = agent.invoke(Command(resume="fine"), CONFIG)
    assert [m.id for m in final["messages"] if isinstance(m, ToolMessage)][1] == saved.id


def test_remove_message_takes_messages_out_of_the_thread() -> None:
    store = InMemorySaver()
    agent = create_agent(ScriptedChatModel(["one", "two", "three"]), checkpointer=store)
    agent.invoke({"messages": [("user", "a")]}, CONFIG)
    agent.invoke({"messages": [("user", "b")]}, CONFIG)
    first_two = agent.get_state(CONFIG).values["messages"][:2]
    agent.update_state(CONFIG, {"messages": [RemoveMessage(id=m.id) for m in first_two]})
    assert texts(agent.get_state(CONFIG).values["messages"]) == ["human:b", "ai:two"]
    # Another reader folds the same state from the steps.
    fresh = create_agent(ScriptedChatModel(["four"]), checkpointer=Delegating(store))
    assert texts(fresh.get_state(CONFIG).values["messages"]) == ["human:b", "ai:two"]
    final = agent.invoke({"messages": [("user", "c")]}, CONFIG)
    assert texts(final["messages"]) == ["human:b", "ai:two", "human:c", "ai:three"]
    agent.update_state(CONFIG, {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES),
                                             HumanMessage(content="fresh start")]})
    assert texts(fresh.get_state(CONFIG).values["messages"]) == ["human:fresh start"]
    with pytest.raises(rxagent.InvalidUpdateError, match="no message with that id"):
        agent.update_state(CONFIG, {"messages": [RemoveMessage(id="nope")]})


class Preferences(rxagent.AgentState):
    user_id: str
    preferences: dict[str, Any]


def test_a_state_schema_keeps_more_keys_on_the_thread() -> None:
    store = InMemorySaver()
    agent = create_agent(ScriptedChatModel(["hi", "again", "third"]), checkpointer=store,
                         state_schema=Preferences)
    first = agent.invoke({"messages": [("user", "a")], "user_id": "u1",
                          "preferences": {"theme": "dark"}}, CONFIG)
    assert first["user_id"] == "u1" and first["preferences"] == {"theme": "dark"}
    values = list(agent.stream({"messages": [("user", "b")]}, CONFIG, stream_mode="values"))
    assert all(v["user_id"] == "u1" for v in values)
    agent.update_state(CONFIG, {"preferences": {"theme": "light"}})
    fresh = create_agent(ScriptedChatModel([]), checkpointer=Delegating(store),
                         state_schema=Preferences)
    state = fresh.get_state(CONFIG).values
    assert state["preferences"] == {"theme": "light"} and state["user_id"] == "u1"
    assert list(state) == ["messages", "user_id", "preferences"]
    with pytest.raises(rxagent.InvalidUpdateError, match="'mood'"):
        agent.invoke({"messages": [("user", "c")], "mood": "ok"}, CONFIG)
    with pytest.raises(rxagent.InvalidUpdateError, match="JSON-able"):
        agent.update_state(CONFIG, {"preferences": {"when": object()}})
    # Without a thread the keys pass through the run too.
    plain = create_agent(ScriptedChatModel(["x"]), state_schema=Preferences)
    assert plain.invoke({"messages": [("user", "a")], "user_id": "u2"})["user_id"] == "u2"
    with pytest.raises(rxagent.UsageError, match="state_schema"):
        create_agent(ScriptedChatModel([]), state_schema=dict)


def test_with_checkpointer_gives_the_same_agent_another_memory() -> None:
    plain = create_agent(ScriptedChatModel(["one", "two"]), name="helper",
                         state_schema=Preferences, interrupt_before=["tools"])
    agent = plain.with_checkpointer(InMemorySaver())
    assert agent.model is plain.model and agent.name == "helper"
    assert agent.interrupt_before == ("tools",) and agent.state_keys == plain.state_keys
    agent.invoke({"messages": [("user", "a")]}, CONFIG)
    final = agent.invoke({"messages": [("user", "b")]}, CONFIG)
    assert texts(final["messages"]) == ["human:a", "ai:one", "human:b", "ai:two"]
    with pytest.raises(rxagent.UsageError, match="no checkpointer"):
        plain.invoke({"messages": [("user", "a")]}, CONFIG)
    with pytest.raises(rxagent.UsageError, match="a saver"):
        plain.with_checkpointer("memory")  # type: ignore[arg-type]


def test_an_async_tool_interrupts_and_resumes_too() -> None:
    @tool
    async def approve(amount: int) -> str:
        """Ask for approval."""
        await anyio.sleep(0)
        verdict = interrupt({"amount": amount})
        return f"{amount}: {verdict}"

    agent = create_agent(ScriptedChatModel([calling(("approve", {"amount": 5})), "ok"]),
                         [approve], checkpointer=InMemorySaver())
    asked = agent.invoke({"messages": [("user", "pay")]}, CONFIG)["__interrupt__"]
    assert [i.value for i in asked] == [{"amount": 5}]
    final = agent.invoke(Command(resume="approved"), CONFIG)
    assert texts(final["messages"])[-2:] == ["tool:5: approved", "ai:ok"]


def test_a_checkpoint_of_another_format_or_damaged_is_a_checkpoint_error() -> None:
    saver = InMemorySaver()
    agent = create_agent(ScriptedChatModel(["one"]), checkpointer=saver)
    saver.put(Checkpoint("1", "", "01a24400-0000-7000-8000-000000000001", None,
                         "2026-12-05T00:00:00+00:00", {"v": 99, "step": 0, "next": [],
                                                       "writes": []}))
    with pytest.raises(rxagent.CheckpointError, match=r"format 99.*upgrade rxagent"):
        agent.get_state(CONFIG)
    saver.put(Checkpoint("2", "", "01a24400-0000-7000-8000-000000000002", None,
                         "2026-12-05T00:00:00+00:00", {"v": 1, "step": 0, "next": [],
                                                       "writes": [["t", "messages", [{}]]]}))
    with pytest.raises(rxagent.CheckpointError, match="unknown type"):
        agent.get_state({"configurable": {"thread_id": "2"}})
    saver.put(Checkpoint("3", "", "01a24400-0000-7000-8000-000000000003", None,
                         "2026-12-05T00:00:00+00:00", {"v": 1, "next": []}))
    with pytest.raises(rxagent.CheckpointError, match="damaged"):
        agent.invoke({"messages": [("user", "x")]}, {"configurable": {"thread_id": "3"}})


def test_update_state_on_a_new_thread_starts_it() -> None:
    agent = create_agent(ScriptedChatModel(["hi"]), checkpointer=InMemorySaver(),
                         state_schema=Preferences)
    agent.update_state(CONFIG, {"user_id": "u9"})
    state = agent.get_state(CONFIG)
    assert state.values == {"messages": [], "user_id": "u9"} and state.next == ("model",)
    final = agent.invoke(None, CONFIG)
    assert final["user_id"] == "u9" and texts(final["messages"]) == ["ai:hi"]
