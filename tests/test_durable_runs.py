"""A run survives its process: killed with SIGKILL mid-run, it goes on in another process from
its last checkpoint, and the tool calls that had finished do not run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rxagent.checkpoint.sqlite import SqliteSaver

# The agent of both processes: its model answers from the conversation (so a new process needs
# no script position), and a tool counts its calls in a file.
AGENT = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    from rxagent import create_agent
    from rxagent.checkpoint.sqlite import SqliteSaver
    from rxagent.messages import AIMessage, HumanMessage
    from rxagent.testing import FunctionChatModel

    here = Path(sys.argv[1])

    def reply(messages, tools):
        if isinstance(messages[-1], HumanMessage):
            return AIMessage(content="", tool_calls=[
                {"name": "count", "args": {"what": "a"}, "id": "c1"},
                {"name": "hold", "args": {}, "id": "h1"},
            ])
        return "Both done."

    def count(what: str) -> str:
        """Count a call."""
        with open(here / "calls.txt", "a") as calls:
            calls.write(what + "\\n")
        return f"counted {what}"

    def hold() -> str:
        """Hold the run until the test has seen count's result saved."""
        if os.environ.get("HOLD"):
            (here / "holding").write_text("yes")
            time.sleep(600)
        return "held"

    agent = create_agent(FunctionChatModel(reply), [count, hold],
                         checkpointer=SqliteSaver(str(here / "threads.db")))
    config = {"configurable": {"thread_id": "t1"}}
    source = {"messages": [("user", "go")]} if sys.argv[2] == "start" else None
    for update in agent.stream(source, config, stream_mode="updates",
                               durability=sys.argv[3]):
        print(sorted(update), flush=True)
    print("FINAL", [m.type for m in agent.get_state(config).values["messages"]], flush=True)
''')


def run_agent(here: Path, how: str, durability: str, hold: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "HOLD": "1" if hold else ""}
    return subprocess.Popen(
        [sys.executable, "-c", AGENT, str(here), how, durability],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def count_result_saved(db: Path) -> bool:
    """Whether the count call's result is in the thread's newest checkpoint's writes."""
    if not db.exists():
        return False
    with SqliteSaver(str(db)) as saver:
        item = saver.get("t1")
        return item is not None and any(
            write.channel == "messages" and write.value[0]["content"] == "counted a"
            for write in item.pending_writes
        )


@pytest.mark.parametrize("durability", ["sync", "async"])
def test_a_killed_run_goes_on_in_another_process_without_repeating_finished_tools(
    tmp_path: Path, durability: str
) -> None:
    first = run_agent(tmp_path, "start", durability, hold=True)
    try:
        deadline = time.monotonic() + 60
        while not ((tmp_path / "holding").exists() and count_result_saved(
                tmp_path / "threads.db")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the run never reached the held tool"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate(timeout=30)  # reaps it and closes its pipes
    assert first.returncode == -signal.SIGKILL

    second = run_agent(tmp_path, "resume", durability, hold=False)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    # The count call finished before the kill: it is not run again, and its result comes back
    # (marked as kept, as LangGraph marks it: {"__metadata__": {"cached": True}}).
    assert (tmp_path / "calls.txt").read_text().splitlines() == ["a"]
    lines = out.splitlines()
    assert lines[-1] == "FINAL ['human', 'ai', 'tool', 'tool', 'ai']"
    assert lines[:-1] == ["['__metadata__', 'tools']", "['tools']", "['model']"]
