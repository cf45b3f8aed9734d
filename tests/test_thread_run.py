"""How a run holds its thread on a saver (``rxagent/_thread_run.py``): where it starts without
reading, and how its writes reach a sync-only saver's thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

import rxagent._thread_run as thread_run
from rxagent import create_agent
from rxagent._thread_state import find_left, load_head
from rxagent.checkpoint import CheckpointTuple
from rxagent.checkpoint.sqlite import SqliteSaver
from rxagent.messages import AIMessage, BaseMessage, ToolMessage
from rxagent.testing import FunctionChatModel
from rxagent.tools import tool
from rxagent.types import Command, interrupt

CONFIG = {"configurable": {"thread_id": "t1"}}


class ReadCountingSaver(SqliteSaver):
    """A SqliteSaver that counts the reads it is asked for."""

    reads = 0

    def get(self, *args: Any, **kwargs: Any) -> CheckpointTuple | None:
        self.reads += 1
        return super().get(*args, **kwargs)

    def list(self, *args: Any, **kwargs: Any) -> Iterator[CheckpointTuple]:
        self.reads += 1
        return super().list(*args, **kwargs)


def echo_agent(saver: SqliteSaver, seen: list[list[str]] | None = None) -> Any:
    """Answers each question with how many messages it was given; notes their texts."""

    def reply(messages: Sequence[BaseMessage], tools: Any) -> str:
        if seen is not None:
            seen.append([m.text for m in messages])
        return f"{len(messages)} messages"

    return create_agent(FunctionChatModel(reply), [], checkpointer=saver)


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_a_run_going_on_where_this_process_left_the_thread_reads_nothing(
    tmp_path: Path, durability: str
) -> None:
    with ReadCountingSaver(tmp_path / "t.db") as saver:
        agent = echo_agent(saver)
        agent.invoke({"messages": "one"}, CONFIG, durability=durability)
        reads = saver.reads
        result = agent.invoke({"messages": "two"}, CONFIG, durability=durability)
        assert saver.reads == reads
        assert [m.text for m in result["messages"]] == ["one", "1 messages", "two", "3 messages"]


def test_a_write_through_another_connection_is_read(tmp_path: Path) -> None:
    seen: list[list[str]] = []
    with SqliteSaver(tmp_path / "t.db") as saver, SqliteSaver(tmp_path / "t.db") as other:
        agent = echo_agent(saver, seen)
        agent.invoke({"messages": "one"}, CONFIG)
        echo_agent(other).update_state(CONFIG, {"messages": [AIMessage("from elsewhere")]})
        agent.invoke({"messages": "two"}, CONFIG)
    assert seen[-1] == ["one", "1 messages", "from elsewhere", "two"]


_OTHER_PROCESS = textwrap.dedent("""
    import sys
    from rxagent import create_agent
    from rxagent.checkpoint.sqlite import SqliteSaver
    from rxagent.testing import FunctionChatModel

    with SqliteSaver(sys.argv[1]) as saver:
        agent = create_agent(FunctionChatModel(lambda messages, tools: "elsewhere"), [],
                             checkpointer=saver)
        agent.invoke({"messages": "from another process"},
                     {"configurable": {"thread_id": "t1"}})
""")


def test_a_run_of_another_process_is_read(tmp_path: Path) -> None:
    seen: list[list[str]] = []
    with SqliteSaver(tmp_path / "t.db") as saver:
        agent = echo_agent(saver, seen)
        agent.invoke({"messages": "one"}, CONFIG)
        subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(tmp_path / "t.db")],
                       check=True)
        agent.invoke({"messages": "two"}, CONFIG)
    assert seen[-1] == ["one", "1 messages", "from another process", "elsewhere", "two"]


def test_a_thread_deleted_through_the_saver_starts_again(tmp_path: Path) -> None:
    seen: list[list[str]] = []
    with SqliteSaver(tmp_path / "t.db") as saver:
        agent = echo_agent(saver, seen)
        agent.invoke({"messages": "one"}, CONFIG)
        saver.delete_thread("t1")
        agent.invoke({"messages": "two"}, CONFIG)
    assert seen[-1] == ["two"]


def test_a_look_at_an_earlier_checkpoint_leaves_the_newest_where_it_is(tmp_path: Path) -> None:
    seen: list[list[str]] = []
    with SqliteSaver(tmp_path / "t.db") as saver:
        agent = echo_agent(saver, seen)
        agent.invoke({"messages": "one"}, CONFIG)
        first = agent.get_state(CONFIG).config
        agent.invoke({"messages": "two"}, CONFIG)
        agent.invoke(None, first)  # nothing to run there: nothing written
        agent.invoke({"messages": "three"}, CONFIG)
    assert seen[-1] == ["one", "1 messages", "two", "3 messages", "three"]


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_the_checkpoint_kept_is_the_one_a_read_gives_back(
    tmp_path: Path, durability: str
) -> None:
    """Interrupted with a tool's result and an interrupt pending (tuples in them, which come
    back from JSON as lists): the head kept equals the head read back, field by field."""

    @tool
    def look(n: int) -> str:
        """Look."""
        return f"looked {n}"

    @tool
    def ask() -> str:
        """Ask."""
        return str(interrupt(("sure?", 1)))

    def reply(messages: Sequence[BaseMessage], tools: Any) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage("done")
        return AIMessage("", tool_calls=[{"name": "look", "args": {"n": 1}, "id": "c1"},
                                         {"name": "ask", "args": {}, "id": "c2"}])

    with SqliteSaver(tmp_path / "t.db") as saver:
        agent = create_agent(FunctionChatModel(reply), [look, ask], checkpointer=saver)
        for source in ({"messages": "go"}, Command(resume=("yes", 2))):
            agent.invoke(source, CONFIG, durability=durability)
            kept = find_left(saver, "t1", "", saver._write_mark("t1"))
            assert kept is not None
            read = anyio.run(lambda: load_head_fresh(tmp_path / "t.db"))
            assert read is not None
            for name in ("checkpoint_id", "parent_id", "step", "next", "metadata",
                         "created_at", "writes", "pending", "values"):
                assert getattr(kept, name) == getattr(read, name), name


async def load_head_fresh(path: Path) -> Any:
    with SqliteSaver(path) as fresh:  # another saver: nothing of this process's is known
        return await load_head(fresh, "t1", "", None)


# -- how writes reach the saver's thread ------------------------------------------------------


def stored(path: Path) -> int:
    with SqliteSaver(path) as reader:
        return len(list(reader.list("t1")))


def wait_for(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "it never happened"
        time.sleep(0.01)


def holding_agent(saver: SqliteSaver, release: threading.Event) -> Any:
    """Calls a tool that waits for ``release``, then answers."""

    @tool
    def hold() -> str:
        """Hold."""
        assert release.wait(30)
        return "held"

    def reply(messages: Sequence[BaseMessage], tools: Any) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage("done")
        return AIMessage("", tool_calls=[{"name": "hold", "args": {}, "id": "h1"}])

    return create_agent(FunctionChatModel(reply), [hold], checkpointer=saver)


def test_a_stream_read_slowly_still_has_its_checkpoints_stored(tmp_path: Path) -> None:
    """The loop stops while a sync stream's reader holds an item (and the run waits for a tool
    meanwhile): no loop timer wakes the saver's thread then, yet what the run finished is
    stored, by the thread looking on its own."""
    release = threading.Event()
    with SqliteSaver(tmp_path / "t.db") as saver:
        updates = holding_agent(saver, release).stream(
            {"messages": "one"}, CONFIG, stream_mode="updates")
        assert list(next(updates)) == ["model"]  # the loop stops here
        try:
            wait_for(lambda: stored(tmp_path / "t.db") >= 3)  # input, its start, the model
        finally:
            release.set()
        assert [list(update) for update in updates] == [["tools"], ["model"]]


def test_a_sleeping_saver_thread_is_woken_by_a_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_run, "LOOK_FOR", 0.0)  # stops looking on its own at once
    release = threading.Event()
    release.set()
    with SqliteSaver(tmp_path / "t.db") as saver:
        agent = holding_agent(saver, release)
        agent.invoke({"messages": "zero"}, CONFIG)
        before = stored(tmp_path / "t.db")
        saver_thread = thread_run._saver_thread(saver)
        wait_for(lambda: not saver_thread._looking)
        release.clear()
        # Going on where the last run left the thread: no read wakes the thread either.
        updates = agent.stream({"messages": "one"}, CONFIG, stream_mode="updates")
        assert list(next(updates)) == ["model"]
        try:
            wait_for(lambda: stored(tmp_path / "t.db") >= before + 3)
        finally:
            release.set()
        list(updates)


def test_writes_handed_over_are_stored_without_a_wake_up(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "t.db") as saver:
        saver_thread = thread_run._saver_thread(saver)
        assert saver_thread._looking
        stores = threading.Event()
        saver_thread.then(thread_run._Writes(), stores.set)
        assert stores.wait(10)
        put = ("put", (echo_checkpoint(),))
        saver_thread.write(thread_run._Writes(), put)
        assert saver_thread._queue.empty()  # nothing woke it
        wait_for(lambda: stored(tmp_path / "t.db") == 1)


def echo_checkpoint() -> Any:
    from rxagent.checkpoint.conformance import make_checkpoint

    return make_checkpoint("t1")


@pytest.mark.anyio
async def test_async_writes_reach_the_saver_on_asyncio_and_trio(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "t.db") as saver:
        agent = echo_agent(saver)
        await agent.ainvoke({"messages": "one"}, CONFIG)
        result = await agent.ainvoke({"messages": "two"}, CONFIG)
        assert [m.text for m in result["messages"]][-1] == "3 messages"
    assert stored(tmp_path / "t.db") == 6


@pytest.mark.anyio
async def test_a_cancelled_run_still_has_what_it_finished_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_run, "LOOK_EVERY", 1000.0)  # stored only when woken
    waiting = anyio.Event()

    @tool
    async def wait() -> str:
        """Wait."""
        waiting.set()
        await anyio.sleep_forever()
        return "never"

    def reply(messages: Sequence[BaseMessage], tools: Any) -> AIMessage:
        return AIMessage("", tool_calls=[{"name": "wait", "args": {}, "id": "w1"}])

    with SqliteSaver(tmp_path / "t.db") as saver:
        agent = create_agent(FunctionChatModel(reply), [wait], checkpointer=saver)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(agent.ainvoke, {"messages": "one"}, CONFIG)
                await waiting.wait()
                scope.cancel()
        deadline = time.monotonic() + 30
        while stored(tmp_path / "t.db") < 3:  # input, its start, the model's step
            assert time.monotonic() < deadline, "never stored"
            await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_a_runs_writes_are_stored_while_it_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's loop wakes the saver's thread WAKE_AFTER its first write not stored (on trio,
    at once): they are not left until the run ends."""
    monkeypatch.setattr(thread_run, "LOOK_EVERY", 1000.0)  # stored only when woken
    release = anyio.Event()

    @tool
    async def wait() -> str:
        """Wait."""
        await release.wait()
        return "waited"

    def reply(messages: Sequence[BaseMessage], tools: Any) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage("done")
        return AIMessage("", tool_calls=[{"name": "wait", "args": {}, "id": "w1"}])

    with SqliteSaver(tmp_path / "t.db") as saver:
        agent = create_agent(FunctionChatModel(reply), [wait], checkpointer=saver)
        async with anyio.create_task_group() as group:
            group.start_soon(agent.ainvoke, {"messages": "one"}, CONFIG)
            deadline = time.monotonic() + 30
            while stored(tmp_path / "t.db") < 3:  # input, its start, the model's step
                assert time.monotonic() < deadline, "not stored while the run waits"
                await anyio.sleep(0.01)
            release.set()
