"""ShellToolMiddleware: a real bash session that lasts the run, under asyncio and trio, and
LangChain's docs examples (the host policy and redaction) run over the wire."""

from __future__ import annotations

import gc
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from rxagent import UsageError, create_agent
from rxagent.checkpoint import InMemorySaver
from rxagent.messages import ToolMessage
from rxagent.middleware import (
    HostExecutionPolicy,
    HumanInTheLoopMiddleware,
    RedactionRule,
    ShellToolMiddleware,
)
from rxagent.tools import ToolRuntime
from rxagent.types import Command

from ..chat_models.loopback import LoopbackServer
from .over_the_wire import calls, text


class Shell:
    """The middleware's tool driven as a run drives it: before_agent, calls, after_agent."""

    def __init__(self, middleware: ShellToolMiddleware) -> None:
        self.middleware = middleware
        self.state: dict[str, Any] = {}

    async def __call__(self, command: str | None = None, **args: Any) -> ToolMessage:
        runtime = ToolRuntime(state=self.state, tool_call_id="call_1")
        result = await self.middleware._shell(runtime, command, **args)
        assert isinstance(result, ToolMessage)
        return result


@pytest.fixture
async def shell(tmp_path: Path) -> AsyncIterator[Shell]:
    middleware = ShellToolMiddleware(
        tmp_path / "work",
        execution_policy=HostExecutionPolicy(command_timeout=3, max_output_lines=5),
        env={"GREETING": "hello", "COUNT": 3})
    driver = Shell(middleware)
    driver.state.update(await middleware.abefore_agent({}, None))
    yield driver
    await middleware.aafter_agent(driver.state, None)


@pytest.mark.anyio
async def test_the_session_persists_between_calls(shell: Shell, tmp_path: Path) -> None:
    assert (await shell("pwd")).content == str(tmp_path / "work")
    await shell("mkdir -p sub && cd sub && export MARK=kept")
    answer = await shell("pwd; echo $MARK $GREETING $COUNT")
    assert answer.content == f"{tmp_path / 'work' / 'sub'}\nkept hello 3"
    assert answer.status == "success" and answer.artifact["exit_code"] == 0


@pytest.mark.anyio
async def test_output_errors_and_limits(shell: Shell) -> None:
    both = await shell("echo out; echo err >&2")
    assert sorted(both.content.splitlines()) == ["[stderr] err", "out"]
    assert (await shell("true")).content == "<no output>"

    failed = await shell("echo partial; exit_code_of() { return 7; }; exit_code_of")
    assert failed.status == "error"
    assert failed.content == "partial\n\nExit code: 7"
    assert failed.artifact["exit_code"] == 7

    long = await shell("seq 1 12")
    assert long.content == "1\n2\n3\n4\n5\n\n... Output truncated at 5 lines (observed 12)."
    assert long.artifact["truncated_by_lines"] and long.artifact["total_lines"] == 12

    missing = await shell(None)
    assert missing.status == "error" and "'command'" in missing.content


@pytest.mark.anyio
async def test_byte_limit(tmp_path: Path) -> None:
    shell = Shell(ShellToolMiddleware(tmp_path, execution_policy=HostExecutionPolicy(
        max_output_bytes=10)))
    shell.state.update(await shell.middleware.abefore_agent({}, None))
    answer = await shell("echo 12345; echo 67890; echo more")
    assert answer.content == "12345\n\n... Output truncated at 10 bytes (observed 17)."
    await shell.middleware.aafter_agent(shell.state, None)


@pytest.mark.anyio
async def test_a_timeout_kills_the_command_and_restarts(shell: Shell, tmp_path: Path) -> None:
    answer = await shell("sleep 30 & echo $! > ../sleeper; wait")
    assert answer.status == "error"
    assert answer.content == "Error: Command timed out after 3.0 seconds."
    sleeper = int((tmp_path / "sleeper").read_text())
    assert not _alive(sleeper)  # the shell's process group went with it
    # A fresh session: back in the workspace.
    assert (await shell("pwd")).content == str(tmp_path / "work")


@pytest.mark.anyio
async def test_exit_ends_the_session_and_the_next_call_starts_one(shell: Shell,
                                                                   tmp_path: Path) -> None:
    await shell("cd /")
    assert (await shell("echo bye; exit 3")).content == "bye\n\nExit code: 3"
    assert (await shell("pwd")).content == str(tmp_path / "work")


@pytest.mark.anyio
async def test_restart_on_request(shell: Shell, tmp_path: Path) -> None:
    await shell("cd / && export MARK=gone")
    assert (await shell(restart=True)).content == "Shell session restarted."
    assert (await shell("pwd; echo ${MARK:-unset}")).content == f"{tmp_path / 'work'}\nunset"


@pytest.mark.anyio
async def test_cancelling_mid_command_kills_the_shell(shell: Shell, tmp_path: Path) -> None:
    with anyio.move_on_after(0.5):
        await shell("echo $$ > ../shell_pid; sleep 30")
    assert not _alive(int((tmp_path / "shell_pid").read_text()))
    assert (await shell("echo alive")).content == "alive"  # the next call starts afresh


@pytest.mark.anyio
async def test_startup_shutdown_limits_and_the_temporary_workspace(tmp_path: Path) -> None:
    marker = tmp_path / "shut"
    middleware = ShellToolMiddleware(
        startup_commands=["export STAGE=started", "cd /tmp"],
        shutdown_commands=f"touch {marker}",
        execution_policy=HostExecutionPolicy(cpu_time_seconds=5, memory_bytes=2**31))
    shell = Shell(middleware)
    shell.state.update(await middleware.abefore_agent({}, None))
    workspace = Path(shell.state["shell_session_resources"].workspace)
    assert workspace.name.startswith("rxagent-shell-") and workspace.is_dir()
    answer = await shell("echo $STAGE $(pwd) $(ulimit -t) $(ulimit -v)")
    assert answer.content == f"started /tmp 5 {2**31 // 1024}"
    await shell("cd / && unset STAGE")
    assert (await shell(restart=True)).content == "Shell session restarted."
    assert (await shell("echo $STAGE $(pwd)")).content == "started /tmp"  # set up again
    await shell("exit")
    assert (await shell("echo $STAGE $(pwd)")).content == "started /tmp"  # after an exit too
    await middleware.aafter_agent(shell.state, None)
    assert marker.exists()
    assert not workspace.exists()

    failing = ShellToolMiddleware(tmp_path, startup_commands=["false"])
    with pytest.raises(UsageError, match="startup command 'false' failed: exit code 1"):
        await failing.abefore_agent({}, None)


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="HostExecutionPolicy"):
        ShellToolMiddleware(tmp_path, execution_policy=object())  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="command_timeout"):
        HostExecutionPolicy(command_timeout=0)
    with pytest.raises(UsageError, match="at least one"):
        ShellToolMiddleware(tmp_path, shell_command=[])
    with pytest.raises(UsageError, match="unknown PII type"):
        ShellToolMiddleware(tmp_path, redaction_rules=[RedactionRule(pii_type="api_key")])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; it has finished all the same.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[-1][0] != "Z"


# --- LangChain's docs examples ---------------------------------------------------------------


def search_tool(query: str) -> str:
    """Search."""
    return "results"


def test_the_docs_host_example_streams_its_steps(server: LoopbackServer, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    agent = create_agent(
        model="gpt-5.4",
        tools=[search_tool],
        middleware=[
            ShellToolMiddleware(
                workspace_root=str(workspace),
                execution_policy=HostExecutionPolicy(),
            ),
        ],
    )
    server.add(calls(("shell", {"command": "mkdir -p src && cd src && echo made"})),
               calls(("shell", {"command": "pwd"})), text("Done."))
    steps = [next(iter(update)) for update in
             agent.stream({"messages": "Make src"}, stream_mode="updates")]
    assert steps == ["ShellToolMiddleware.before_agent", "model", "tools", "model", "tools",
                     "model", "ShellToolMiddleware.after_agent"]
    told = [message for message in server.requests[-1].json["messages"]
            if message["role"] == "tool"]
    assert [m["content"] for m in told] == ["made", str(workspace / "src")]
    offered = [t["function"]["name"] for t in server.requests[0].json["tools"]]
    assert offered == ["search_tool", "shell"]
    assert "command" in str(server.requests[0].json["tools"][1]["function"]["parameters"])
    assert "runtime" not in str(server.requests[0].json["tools"][1]["function"]["parameters"])


def test_the_docs_redaction_example(server: LoopbackServer, tmp_path: Path) -> None:
    # With output redaction (applied post execution)
    agent_redacted = create_agent(
        model="gpt-5.4",
        tools=[],
        middleware=[
            ShellToolMiddleware(
                workspace_root=str(tmp_path / "workspace"),
                redaction_rules=[
                    RedactionRule(pii_type="api_key", detector=r"sk-[a-zA-Z0-9]{32}"),
                ],
            ),
        ],
    )
    key = "sk-" + "Ab1" * 10 + "xy"
    server.add(calls(("shell", {"command": f"echo token={key}"})), text("Hidden."))
    result = agent_redacted.invoke({"messages": "Print the token"})
    (answer,) = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert answer.content == "token=[REDACTED_API_KEY]"
    told = [m["content"] for m in server.requests[1].json["messages"] if m["role"] == "tool"]
    assert told == ["token=[REDACTED_API_KEY]"]
    assert answer.artifact["redaction_matches"]["api_key"][0]["value"] == key


def test_a_run_resumed_after_an_interrupt_gets_a_session_and_closes_it(
        server: LoopbackServer, tmp_path: Path) -> None:
    marker = tmp_path / "closed"
    agent = create_agent(
        model="gpt-5.4", tools=[], checkpointer=InMemorySaver(),
        middleware=[ShellToolMiddleware(tmp_path / "workspace",
                                        shutdown_commands=[f"echo closed >> {marker}"]),
                    HumanInTheLoopMiddleware(interrupt_on={"shell": True})])
    config = {"configurable": {"thread_id": "t"}}
    server.add(calls(("shell", {"command": "echo $$"})))
    paused = agent.invoke({"messages": "Run it"}, config)
    assert "__interrupt__" in paused
    assert not marker.exists()  # a paused run has not ended (after_agent runs at the end)

    server.add(text("Ran."))
    done = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config)
    (answer,) = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    assert re.fullmatch(r"\d+", answer.content)
    assert not _alive(int(answer.content))  # the session the tool started was closed...
    assert marker.read_text() == "closed\n"  # ...by after_agent, with its shutdown command


# Killed, not closed: the pipes and the process object are left to the garbage collector,
# which warns about them (ResourceWarning, hidden by Python's default filters).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.anyio
async def test_a_session_nobody_closes_dies_with_its_last_reference(tmp_path: Path) -> None:
    middleware = ShellToolMiddleware(tmp_path)
    state = await middleware.abefore_agent({}, None)
    shell = Shell(middleware)
    shell.state.update(state)
    pid = int((await shell("echo $$")).content)
    assert _alive(pid)
    del state, shell
    gc.collect()
    assert not _alive(pid)
