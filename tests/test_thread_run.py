"""How a run holds its thread on a saver (``rxagent/_thread_run.py``): where it starts without
reading."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

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


@pytest.mark.anyio
async def test_async_writes_reach_the_saver_on_asyncio_and_trio(tmp_path: Path) -> None:
    with SqliteSaver(tmp_path / "t.db") as saver:
        agent = echo_agent(saver)
        await agent.ainvoke({"messages": "one"}, CONFIG)
        result = await agent.ainvoke({"messages": "two"}, CONFIG)
        assert [m.text for m in result["messages"]][-1] == "3 messages"
    assert stored(tmp_path / "t.db") == 6
