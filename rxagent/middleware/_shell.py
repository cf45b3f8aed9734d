"""``ShellToolMiddleware``: a ``shell`` tool that runs commands in one persistent bash session.

The session starts when the run does (``before_agent``) and ends with it (``after_agent``), so a
``cd`` or an ``export`` in one call holds for the next. It lives in the run's state under an
untracked, private key (never checkpointed, never in the output): a run resumed after an
interrupt gets a fresh session, as in LangChain. A session that a failed or cancelled run never
closed is killed when it is garbage-collected, or when the process exits.

Each command is written to the shell's stdin followed by two markers, one on stderr and one on
stdout carrying ``$?``; reading both streams up to their marker gives the command's whole output
and its exit status, without racing the shell. Everything is async (anyio), so a cancelled run
stops waiting at once, under asyncio and trio alike.

Only :class:`HostExecutionPolicy` is here: the commands run on this machine, as this user, with
optional CPU-time and memory limits. Use it where the agent is already isolated (a container or
a VM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import signal
import tempfile
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired

import anyio
import anyio.abc

from .._exceptions import UsageError
from .._interrupts import Command
from .._messages import ToolMessage
from .._state_schema import AgentState, PrivateStateAttr, UntrackedValue
from .._tools import BaseTool, ToolRuntime
from ._pii import Detector, PIIDetectionError, PIIMatch, Strategy, _apply, _resolved
from ._types import AgentMiddleware

__all__ = ["HostExecutionPolicy", "RedactionRule", "ShellToolMiddleware", "ShellToolState"]

DEFAULT_TOOL_DESCRIPTION = (
    "Run a shell command in a persistent bash session: the working directory and environment "
    "carry over from one call to the next. Check where you are (pwd, ls) before acting, make "
    "parent directories first, prefer absolute paths and quote paths with spaces. Chain "
    "commands with && or ; rather than newlines. Long outputs are cut short, and a command "
    "that runs past its time limit is stopped (the session restarts). Pass restart=true to "
    "start a fresh session."
)
_STATE_KEY = "shell_session_resources"
_READ_SIZE = 65536
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)  # writing to a dead shell


@dataclasses.dataclass(frozen=True)
class HostExecutionPolicy:
    """Run the shell on this machine, with time, output and resource limits.

    Attributes:
        command_timeout: seconds a command may run before the session is restarted.
        startup_timeout: seconds each startup command may run.
        termination_timeout: seconds the shell gets to exit before it is killed.
        max_output_lines: lines of output kept per command (the rest is counted, not kept).
        max_output_bytes: bytes of output kept per command, or ``None`` for no byte limit.
        cpu_time_seconds: CPU seconds the shell and each command it starts may use
            (``RLIMIT_CPU``), or ``None``.
        memory_bytes: address space the shell and each command may use (``RLIMIT_AS``), or
            ``None``.
        create_process_group: start the shell in a process group of its own, so that a
            timeout kills the commands it started too.
    """

    command_timeout: float = 30.0
    startup_timeout: float = 30.0
    termination_timeout: float = 10.0
    max_output_lines: int = 100
    max_output_bytes: int | None = None
    cpu_time_seconds: int | None = None
    memory_bytes: int | None = None
    create_process_group: bool = True

    def __post_init__(self) -> None:
        for name in ("command_timeout", "startup_timeout", "termination_timeout",
                     "max_output_lines", "max_output_bytes", "cpu_time_seconds", "memory_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value <= 0):
                raise UsageError(f"HostExecutionPolicy.{name} must be positive, got {value!r}")


@dataclasses.dataclass(frozen=True)
class RedactionRule:
    """What to do with one kind of sensitive data in a command's output, as
    :class:`~rxagent.middleware.PIIMiddleware` does with messages.

    Attributes:
        pii_type: a built-in kind (``"email"``, ``"credit_card"``, ``"ip"``, ``"mac_address"``,
            ``"url"``) or a name of your own (then give ``detector``).
        strategy: ``"redact"``, ``"mask"``, ``"hash"``, or ``"block"`` (the tool answers with
            an error instead of the output).
        detector: a regex (a string or a compiled pattern) or a function from a text to a list
            of :class:`~rxagent.middleware.PIIMatch`.
    """

    pii_type: str
    strategy: Strategy = "redact"
    detector: Any = None

    def resolve(self) -> Detector:
        """The detector this rule runs (raises :class:`~rxagent.UsageError` if it is wrong)."""
        return _resolved(self.pii_type, self.detector)


class ShellToolState(AgentState):
    """The state key the session lives under: for the run only, never in the output."""

    shell_session_resources: NotRequired[Annotated[Any, UntrackedValue, PrivateStateAttr]]


@dataclasses.dataclass(frozen=True)
class _Result:
    output: str
    exit_code: int | None
    timed_out: bool = False
    truncated_by_lines: bool = False
    truncated_by_bytes: bool = False
    total_lines: int = 0
    total_bytes: int = 0


class _Stream:
    """One of the shell's output pipes, read line by line; a partial line waits for the rest."""

    def __init__(self, stream: anyio.abc.ByteReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def line(self) -> bytes | None:
        """The next line (without its newline), or ``None`` at the end of the stream."""
        while (end := self._buffer.find(b"\n")) == -1:
            try:
                self._buffer += await self._stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return None
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        return line


class _Session:
    """One bash process, its pipes, and its workspace."""

    def __init__(self, workspace: Path, policy: HostExecutionPolicy, command: Sequence[str],
                 env: Mapping[str, str] | None, startup: Sequence[str],
                 tempdir: tempfile.TemporaryDirectory[str] | None) -> None:
        self.workspace = workspace
        self.startup = list(startup)
        self.policy = policy
        self.command = list(command)
        self.env = dict(env) if env is not None else None
        self.tempdir = tempdir
        self._process: anyio.abc.Process | None = None
        self._stdout: _Stream | None = None
        self._stderr: _Stream | None = None
        self._lock = anyio.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True)
        process = await anyio.open_process(
            self.command, cwd=self.workspace, env=self.env,
            start_new_session=self.policy.create_process_group)
        _limit(process.pid, self.policy)
        assert process.stdout is not None and process.stderr is not None
        self._process = process
        self._stdout, self._stderr = _Stream(process.stdout), _Stream(process.stderr)
        # If the run never reaches after_agent (it failed, or was cancelled), the shell must
        # not outlive this object: killed on garbage collection, or at interpreter exit. (The
        # temporary workspace has a finalizer of its own.)
        self._finalizer = weakref.finalize(self, _kill, process, self.policy.create_process_group)
        # Every start runs them, a restart after a timeout or an ``exit`` too, so the session
        # always begins the same way.
        for command in self.startup:
            result: _Result | None = None
            with anyio.move_on_after(self.policy.startup_timeout):
                result = await self._run(command)
            if result is None or result.exit_code != 0:
                await self.stop(patience=0)
                raise UsageError(
                    f"startup command {command!r} failed: " + (
                        "timed out" if result is None else f"exit code {result.exit_code}"))

    async def execute(self, command: str, timeout: float) -> _Result:
        """Run one command and read its output, or restart the session if it takes too long."""
        async with self._lock:
            if not self.running:
                await self.start()
            try:
                with anyio.move_on_after(timeout):
                    return await self._run(command)
            except anyio.get_cancelled_exc_class():
                # The run was cancelled mid-command: the shell is in no state to reuse, and
                # the command must not run on unseen.
                with anyio.CancelScope(shield=True):
                    await self.stop(patience=0)
                raise
            # Timed out: the shell is busy with the command, so it would not read an exit.
            await self.stop(patience=0)
            await self.start()
            return _Result(output="", exit_code=None, timed_out=True)

    async def _run(self, command: str) -> _Result:
        assert self._process is not None and self._process.stdin is not None
        marker = f"__rxagent_shell_done_{uuid.uuid4().hex}"
        script = (f"{command.rstrip(chr(10))}\n__rxagent_status=$?\n"
                  f"printf '%s\\n' '{marker}' >&2\n"
                  f"printf '%s %s\\n' '{marker}' \"$__rxagent_status\"\n")
        collected = _Collected(self.policy)
        # If the shell is gone, what it printed, then its exit status, are read below.
        with contextlib.suppress(*_GONE):
            await self._process.stdin.send(script.encode())
        status: list[int | None] = []

        async def read_stdout() -> None:
            assert self._stdout is not None
            while (line := await self._stdout.line()) is not None:
                if line.startswith(marker.encode()):
                    status.append(_int(line[len(marker) + 1:]))
                    return
                collected.add(line, stderr=False)

        async def read_stderr() -> None:
            assert self._stderr is not None
            while (line := await self._stderr.line()) is not None:
                if line == marker.encode():
                    return
                collected.add(line, stderr=True)

        async with anyio.create_task_group() as readers:
            readers.start_soon(read_stdout)
            readers.start_soon(read_stderr)
        if not status:  # the command ended the shell (``exit 3``): its own status is the code
            status.append(await self._process.wait())
        return collected.result(status[0])

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def stop(self, patience: float | None = None) -> None:
        """Ask the shell to exit; kill it (and its process group) if it does not within
        ``patience`` seconds (the policy's ``termination_timeout`` by default; 0 kills at once)."""
        process, self._process = self._process, None
        if process is None:
            return
        if patience is None:
            patience = self.policy.termination_timeout
        if process.returncode is None and patience > 0:
            with contextlib.suppress(*_GONE):
                assert process.stdin is not None
                await process.stdin.send(b"exit\n")
            with anyio.move_on_after(patience):
                await process.wait()
        if self._finalizer is not None:
            self._finalizer.detach()  # killed now: nothing for it to do later
        _kill(process, self.policy.create_process_group)
        with anyio.CancelScope(shield=True):
            await process.aclose()

    async def close(self) -> None:
        await self.stop()
        if self.tempdir is not None:
            self.tempdir.cleanup()


class _Collected:
    """A command's output lines, cut at the policy's limits."""

    def __init__(self, policy: HostExecutionPolicy) -> None:
        self.policy = policy
        self.kept: list[str] = []
        self.total_lines = 0
        self.total_bytes = 0
        self.kept_bytes = 0
        self.by_lines = False
        self.by_bytes = False

    def add(self, line: bytes, *, stderr: bool) -> None:
        self.total_lines += 1
        self.total_bytes += len(line) + 1
        if self.total_lines > self.policy.max_output_lines:
            self.by_lines = True
            return
        limit = self.policy.max_output_bytes
        if limit is not None and self.kept_bytes + len(line) + 1 > limit:
            self.by_bytes = True
            return
        self.kept_bytes += len(line) + 1
        text = line.decode("utf-8", "replace")
        self.kept.append(f"[stderr] {text}" if stderr else text)

    def result(self, exit_code: int | None) -> _Result:
        return _Result(output="\n".join(self.kept), exit_code=exit_code,
                       truncated_by_lines=self.by_lines, truncated_by_bytes=self.by_bytes,
                       total_lines=self.total_lines, total_bytes=self.total_bytes)


class ShellToolMiddleware(AgentMiddleware[Any, Any]):
    """Give the agent a ``shell`` tool: commands in one bash session that lasts the run.

    The tool takes ``command`` (a string) or ``restart=True``. Its answer is the command's
    output (stdout, and stderr lines marked ``[stderr]``), ``<no output>`` when there is none,
    with a note when it was cut short and ``Exit code: N`` when the command failed (then the
    ``ToolMessage``'s status is ``"error"``). The message's ``artifact`` has the details
    (``exit_code``, ``timed_out``, the truncation counts, the redactions made).

    Args:
        workspace_root: the session's working directory (made if missing). Without one, a
            temporary directory is made for each session and removed when it ends.
        startup_commands: run, in order, whenever a session starts (a restart too); one that
            fails or times out fails the run (or the tool call that restarted the session).
        shutdown_commands: run, in order, before the session ends; failures are ignored.
        execution_policy: limits and where commands run (:class:`HostExecutionPolicy`, the
            default).
        redaction_rules: :class:`RedactionRule` s applied to each command's output before the
            model sees it. They do not stop a command from reading or sending a secret.
        tool_description: the tool's description for the model.
        tool_name: the tool's name (``"shell"``).
        shell_command: the shell to start (a path or an argument list; ``/bin/bash``).
        env: the session's environment variables (values made strings); without it, the
            session inherits this process's environment.

    Raises:
        UsageError: an execution policy other than :class:`HostExecutionPolicy`, an empty
            ``shell_command``, a non-string environment variable name, a bad redaction rule.
    """

    state_schema = ShellToolState

    def __init__(
        self,
        workspace_root: str | Path | None = None,
        *,
        startup_commands: Sequence[str] | str | None = None,
        shutdown_commands: Sequence[str] | str | None = None,
        execution_policy: HostExecutionPolicy | None = None,
        redaction_rules: Sequence[RedactionRule] | None = None,
        tool_description: str | None = None,
        tool_name: str = "shell",
        shell_command: Sequence[str] | str | None = None,
        env: Mapping[str, Any] | None = None,
    ) -> None:
        policy = execution_policy if execution_policy is not None else HostExecutionPolicy()
        if not isinstance(policy, HostExecutionPolicy):
            raise UsageError(f"execution_policy is a HostExecutionPolicy, got {policy!r} (the "
                             "Docker and Codex sandbox policies are not in rxagent)")
        command = ["/bin/bash"] if shell_command is None else [shell_command] \
            if isinstance(shell_command, str) else list(shell_command)
        if not command:
            raise UsageError("shell_command needs at least one argument")
        if env is not None and not all(isinstance(key, str) for key in env):
            raise UsageError("env's variable names must be strings")
        self.workspace_root = Path(workspace_root) if workspace_root else None
        self.startup_commands = _commands(startup_commands)
        self.shutdown_commands = _commands(shutdown_commands)
        self.execution_policy = policy
        self.redactions = [(rule, rule.resolve()) for rule in redaction_rules or ()]
        self.tool_name = tool_name
        self.shell_command = command
        self.env = {key: str(value) for key, value in env.items()} if env is not None else None
        self.tools = [BaseTool(self._shell, name=tool_name,
                               description=tool_description or DEFAULT_TOOL_DESCRIPTION)]

    async def abefore_agent(self, state: dict[str, Any], runtime: Any) -> dict[str, Any]:
        """Start the run's session (or keep the one the state already has)."""
        return {_STATE_KEY: await self._session(state)}

    async def aafter_agent(self, state: dict[str, Any], runtime: Any) -> None:
        """Run the shutdown commands and end the session."""
        session = state.get(_STATE_KEY)
        if not isinstance(session, _Session):
            return
        try:
            for command in self.shutdown_commands:
                with contextlib.suppress(OSError):
                    await session.execute(command, self.execution_policy.command_timeout)
        finally:
            await session.close()

    async def _session(self, state: Mapping[str, Any]) -> _Session:
        session = state.get(_STATE_KEY)
        if isinstance(session, _Session):
            return session
        tempdir = None if self.workspace_root else tempfile.TemporaryDirectory(
            prefix="rxagent-shell-")
        workspace = self.workspace_root or Path(tempdir.name)  # type: ignore[union-attr]
        session = _Session(workspace, self.execution_policy, self.shell_command, self.env,
                           self.startup_commands, tempdir)
        try:
            await session.start()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await session.close()
            raise
        return session

    async def _shell(self, runtime: ToolRuntime[Any, Any], command: str | None = None,
                     restart: bool = False) -> ToolMessage | Command:
        """Run a shell command in the persistent session.

        Args:
            command: the command to run.
            restart: start a fresh session instead (the working directory and environment
                go back to how they began).
        """
        started = not isinstance(runtime.state.get(_STATE_KEY), _Session)
        session = await self._session(runtime.state)
        message = await self._answer(session, runtime, command, restart)
        if started:
            # A session started here (the run resumed after an interrupt, whose state keeps no
            # session) goes into the state, so that after_agent closes it.
            return Command(update={_STATE_KEY: session, "messages": [message]})
        return message

    async def _answer(self, session: _Session, runtime: ToolRuntime[Any, Any],
                      command: str | None, restart: bool) -> ToolMessage:
        if restart:
            await session.restart()
            return self._message("Shell session restarted.", runtime, "success", {})
        if not command:
            return self._message("The shell tool needs a 'command' string (or restart=true).",
                                 runtime, "error", {})
        policy = self.execution_policy
        result = await session.execute(command, policy.command_timeout)
        if result.timed_out:
            return self._message(f"Error: Command timed out after {policy.command_timeout:.1f} "
                                 "seconds.", runtime, "error",
                                 {"timed_out": True, "exit_code": None})
        try:
            output, matches = self._redacted(result.output)
        except PIIDetectionError as blocked:
            return self._message(f"Output blocked: detected {blocked.pii_type}.", runtime,
                                 "error", {"timed_out": False, "exit_code": result.exit_code,
                                           "matches": {blocked.pii_type: blocked.matches}})
        output = output or "<no output>"
        if result.truncated_by_lines:
            output = (f"{output.rstrip()}\n\n... Output truncated at {policy.max_output_lines} "
                      f"lines (observed {result.total_lines}).")
        if result.truncated_by_bytes:
            output = (f"{output.rstrip()}\n\n... Output truncated at {policy.max_output_bytes} "
                      f"bytes (observed {result.total_bytes}).")
        failed = result.exit_code not in (0, None)
        if failed:
            output = f"{output.rstrip()}\n\nExit code: {result.exit_code}"
        return self._message(output, runtime, "error" if failed else "success", {
            "timed_out": False, "exit_code": result.exit_code,
            "truncated_by_lines": result.truncated_by_lines,
            "truncated_by_bytes": result.truncated_by_bytes,
            "total_lines": result.total_lines, "total_bytes": result.total_bytes,
            "redaction_matches": matches})

    def _redacted(self, output: str) -> tuple[str, dict[str, list[PIIMatch]]]:
        found: dict[str, list[PIIMatch]] = {}
        for rule, detect in self.redactions:
            matches = detect(output)
            if matches:
                found.setdefault(rule.pii_type, []).extend(matches)
                output = _apply(output, matches, rule.strategy)
        return output, found

    def _message(self, content: str, runtime: ToolRuntime[Any, Any],
                 status: Literal["success", "error"], artifact: dict[str, Any]) -> ToolMessage:
        return ToolMessage(content=content, tool_call_id=runtime.tool_call_id or "",
                           name=self.tool_name, status=status, artifact=artifact)

    def __repr__(self) -> str:
        return f"ShellToolMiddleware(workspace_root={self.workspace_root!r})"


def _commands(commands: Sequence[str] | str | None) -> list[str]:
    return [commands] if isinstance(commands, str) else list(commands or [])


def _int(text: bytes) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _limit(pid: int, policy: HostExecutionPolicy) -> None:
    """The policy's resource limits, set on the started shell; its commands inherit them."""
    if policy.cpu_time_seconds is not None:
        resource.prlimit(pid, resource.RLIMIT_CPU, (policy.cpu_time_seconds,) * 2)
    if policy.memory_bytes is not None:
        resource.prlimit(pid, resource.RLIMIT_AS, (policy.memory_bytes,) * 2)


def _kill(process: anyio.abc.Process, group: bool) -> None:
    """Kill the shell, and, in a group of its own, whatever it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        elif process.returncode is None:
            process.kill()
