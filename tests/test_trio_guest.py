"""A sync ``agent.stream()`` called from async code that runs under trio: under
``anyio.run(backend="trio")`` (which marks its tasks "trio" in sniffio's context variable, as
anyio's pytest runner does), and with trio as a guest of an asyncio loop
(``trio.lowlevel.start_guest_run``), where the running asyncio loop is the host's.

Each case runs in a subprocess with a time bound, because the fault these guard against was a
deadlock: the sync stream waited for a producer that never ran.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent('''
    import asyncio, sys
    import anyio, sniffio, trio
    from rxagent import create_agent
    from rxagent.messages import AIMessage, HumanMessage
    from rxagent.testing import FunctionChatModel
    from rxagent.tools import tool

    @tool
    async def nap(seconds: float) -> str:
        """Sleep, and tell which async library the tool ran under."""
        await anyio.sleep(seconds)
        return sniffio.current_async_library()

    def reply(messages, tools):
        if isinstance(messages[-1], HumanMessage):
            return AIMessage(content="", tool_calls=[
                {"name": "nap", "args": {"seconds": 0.001}, "id": "call_1"}])
        return "done: " + messages[-1].text

    agent = create_agent(FunctionChatModel(reply), [nap])
    ask = {"messages": [{"role": "user", "content": "hi"}]}

    def answer(parts):
        return parts[-1]["messages"][-1].text

    async def sync_stream():
        return answer(list(agent.stream(ask, stream_mode="values")))

    async def async_stream():
        return answer([part async for part in agent.astream(ask, stream_mode="values")])

    async def as_guest(main):
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        trio.lowlevel.start_guest_run(
            main, run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=done.set_result, host_uses_signal_set_wakeup_fd=True)
        return (await done).unwrap()

    how, which = sys.argv[1:]
    main = {"sync": sync_stream, "async": async_stream}[which]
    if how == "guest":
        print(asyncio.run(as_guest(main)))
    else:
        print(anyio.run(main, backend=how))
''')


@pytest.mark.parametrize(("how", "which", "runs_on"), [
    # A sync stream in async code runs on rxagent's background loop (asyncio's), whatever
    # the caller's library; an async one runs on the caller's loop, trio's even as a guest.
    ("asyncio", "sync", "asyncio"),
    ("asyncio", "async", "asyncio"),
    ("trio", "sync", "asyncio"),
    ("trio", "async", "trio"),
    ("guest", "sync", "asyncio"),
    ("guest", "async", "trio"),
])
def test_a_stream_from_async_code_under_trio_ends(how: str, which: str, runs_on: str) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, how, which], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"done: {runs_on}"
