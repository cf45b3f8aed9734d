"""From a run's parts to AG-UI events, and from AG-UI's run input to an agent's input; no I/O.

:class:`AguiMapper` holds the mapping behind ``rxagent.agui.events()``: one object per run, fed
the run's parts in order, giving back the AG-UI events (``ag_ui.core`` models) each part makes.
What maps to what:

- the run's start: ``RUN_STARTED``; its end: ``RUN_FINISHED`` (outcome ``interrupt`` with the
  run's interrupts when ``interrupt()`` stopped it, ``success`` otherwise), or ``RUN_ERROR``,
  either with the model calls' token usage summed per provider and model;
- ``messages``: per model call (its message id), text as ``TEXT_MESSAGE_START/CONTENT/END``,
  each tool call as ``TOOL_CALL_START/ARGS/END`` (parent message: the call's message),
  ``{"type": "reasoning"}`` blocks as ``REASONING_START``, ``REASONING_MESSAGE_*``,
  ``REASONING_END``; a tool's result as ``TOOL_CALL_RESULT``; everything still open is ended
  on the call's last chunk;
- ``values`` of the top-level run, without ``messages`` (which travel as messages) and
  ``__interrupt__`` (the run's outcome): the first
  as ``STATE_SNAPSHOT``, each later one that differs as ``STATE_DELTA`` (RFC 6902 JSON Patch);
- ``tasks`` of the top-level run: ``STEP_STARTED``/``STEP_FINISHED`` named after the node,
  one step for tasks of one node that run together (parallel tool calls). Without the
  ``tasks`` mode a step is both started and finished at its ``updates`` part;
- ``custom``: ``CUSTOM`` named ``custom`` (``custom|<ns>`` from a nested run), the payload as
  its value;
- a nested run (namespace ``tools:<id>``: an agent as a tool, or one run inside a tool): a
  sub-agent, ``SUBAGENT_STARTED`` at its first part and ``SUBAGENT_FINISHED`` when the tools
  task that ran it ends; its messages, tool calls and custom events carry its
  ``subagentRunId``; its steps and state stay its own.

Costs: one dict lookup per token, the JSON of the state (without messages) once per step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from ag_ui.core import (
    AssistantMessage,
    BaseEvent,
    CustomEvent,
    DeveloperMessage,
    Interrupt,
    ReasoningEndEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    StateDeltaEvent,
    StateSnapshotEvent,
    StepFinishedEvent,
    StepStartedEvent,
    SubagentFinishedEvent,
    SubagentFinishedSuspendedOutcome,
    SubagentStartedEvent,
    SystemMessage,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
    ToolMessage,
    UserMessage,
    aggregate_token_usage,
    token_usage_from_langchain_metadata,
)
from ag_ui.core import TokenUsage as AguiTokenUsage
from pydantic_core import to_jsonable_python

from . import _messages as lc
from ._exceptions import InvalidMessageError
from ._interrupts import Command
from ._types import StreamPart

__all__ = ["EXTRA_MODES", "AguiMapper", "agent_input", "json_patch"]

EXTRA_MODES: tuple[str, ...] = ("tasks",)
"""The modes to ask ``observe()`` for beyond its own, so that steps start when they start."""


def _jsonable(value: Any) -> Any:
    # Anything a state may hold (messages, dataclasses, sets) as plain JSON data.
    return to_jsonable_python(value, fallback=str)


def _is_state(key: str) -> bool:
    # Messages travel as messages; ``__interrupt__`` (in the values after an interrupt) is
    # the run's outcome, not state a client could send back.
    return key != "messages" and not key.startswith("__")


def _pointer(path: Sequence[str]) -> str:
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in path)


def json_patch(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The RFC 6902 operations that turn JSON value ``old`` into ``new``.

    Objects are compared key by key; any other value that differs (lists included) is
    replaced whole, which keeps a patch valid however a list changed.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[dict[str, Any]] = []
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": _pointer((*path, key))})
        for key, value in new.items():
            if key not in old:
                ops.append({"op": "add", "path": _pointer((*path, key)), "value": value})
            else:
                ops.extend(json_patch(old[key], value, (*path, key)))
        return ops
    # bool is an int in Python, not in JSON: true and 1 differ.
    if old == new and type(old) is type(new):
        return []
    return [{"op": "replace", "path": _pointer(path), "value": new}]


def _tag(events: list[BaseEvent], subagent: str | None) -> list[BaseEvent]:
    """The events, marked as a sub-agent's when they are one's (``subagentRunId``)."""
    if subagent is not None:
        for event in events:
            event.subagent_run_id = subagent  # type: ignore[attr-defined]
    return events


class _Reply:
    """What one model call has open: its text, its reasoning, its tool calls by index; the
    sub-agent it belongs to."""

    __slots__ = ("calls", "open_calls", "reasoning", "subagent", "text")

    def __init__(self, subagent: str | None) -> None:
        self.subagent = subagent
        self.text = False
        self.reasoning = False
        self.calls: dict[int, str] = {}
        self.open_calls: list[str] = []


def _reasoning_of(message: lc.AIMessage) -> str:
    if isinstance(message.content, str):  # reasoning only ever rides in list content
        return ""
    return "".join(
        block.get("reasoning") or ""
        for block in message.content_blocks
        if block.get("type") == "reasoning"
    )


class AguiMapper:
    """One run's parts in, AG-UI events out (no I/O); see the module's docstring.

    Call :meth:`start` once, :meth:`on_part` per part in order, then :meth:`finish` when the
    run completes or :meth:`fail` when it fails.

    Args:
        thread_id: the ``threadId`` of ``RUN_STARTED``/``RUN_FINISHED``.
        run_id: their ``runId``.
        run_input: the ``RunAgentInput`` the run answers, carried by ``RUN_STARTED``.
        error_message: the ``RUN_ERROR`` text for an error.
    """

    def __init__(
        self,
        thread_id: str,
        run_id: str,
        *,
        run_input: RunAgentInput | None = None,
        error_message: Callable[[BaseException], str] = str,
    ) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self.run_input = run_input
        self.error_message = error_message
        self._replies: dict[str, _Reply] = {}
        self._state: Any = None
        self._has_state = False
        self._steps: dict[str, set[str]] = {}  # node -> its running tasks
        self._tasks_seen = False
        self._task_calls: dict[tuple[tuple[str, ...], str], str] = {}  # (ns, task) -> call
        self._calls: dict[str, tuple[str, str]] = {}  # call id -> (tool, its message)
        self._subagents: dict[tuple[str, ...], str] = {}  # nested run's ns -> its run id
        self._ended: set[tuple[str, ...]] = set()
        self._interrupts: dict[str, Interrupt] = {}
        self._unnamed = 0
        self._usage: list[AguiTokenUsage] = []

    # -- the run -----------------------------------------------------------------------------

    def start(self) -> list[BaseEvent]:
        """``RUN_STARTED``."""
        return [RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id,
                                input=self.run_input)]

    def finish(self) -> list[BaseEvent]:
        """What is still open ended, then ``RUN_FINISHED`` with the run's outcome."""
        events: list[BaseEvent] = []
        for message_id in list(self._replies):
            events.extend(self._end_reply(message_id))
        for ns in sorted(self._subagents, key=len, reverse=True):
            events += self._leave(ns)
        for name, tasks in self._steps.items():
            if tasks:
                events.append(StepFinishedEvent(step_name=name))
        self._steps.clear()
        outcome: RunFinishedInterruptOutcome | RunFinishedSuccessOutcome
        if self._interrupts:
            outcome = RunFinishedInterruptOutcome(interrupts=list(self._interrupts.values()))
        else:
            outcome = RunFinishedSuccessOutcome()
        events.append(RunFinishedEvent(thread_id=self.thread_id, run_id=self.run_id,
                                       outcome=outcome, usage=self._usage_so_far()))
        return events

    def fail(self, error: BaseException) -> list[BaseEvent]:
        """``RUN_ERROR``: the error's text (``error_message``) and its type as the code."""
        return [RunErrorEvent(message=self.error_message(error), code=type(error).__name__,
                              usage=self._usage_so_far())]

    def _usage_so_far(self) -> list[AguiTokenUsage] | None:
        return aggregate_token_usage(self._usage) or None

    # -- parts -------------------------------------------------------------------------------

    def on_part(self, part: StreamPart) -> list[BaseEvent]:
        """The events of one part, in order (often none)."""
        kind = part["type"]
        ns = tuple(part["ns"])
        events = self._enter(ns) if ns else []
        if kind == "messages":
            message, metadata = part["data"]
            self._count(message, metadata)
            events += self._message(message, self._subagents.get(ns))
        elif kind == "tasks":
            events += self._task(part["data"], ns)
        elif kind == "custom":
            name = "custom" + "".join("|" + level for level in ns)
            events += _tag([CustomEvent(name=name, value=_jsonable(part["data"]))],
                           self._subagents.get(ns))
        elif ns:  # a nested run's state and steps are its own
            pass
        elif kind == "values":
            events += self._values(part["data"])
        elif kind == "updates":
            events += self._updates(part["data"])
        return events

    # -- sub-agents: a nested run (an agent as a tool, or run inside one) under "tools:<id>" --

    def _enter(self, ns: tuple[str, ...]) -> list[BaseEvent]:
        """``SUBAGENT_STARTED`` for each level of ``ns`` not seen yet, outermost first."""
        events: list[BaseEvent] = []
        for depth in range(1, len(ns) + 1):
            level = ns[:depth]
            if level in self._subagents or level in self._ended:
                continue
            key = level[-1].partition(":")[2] if level[-1].startswith("tools:") else level[-1]
            # An agent as a tool runs under its call's id; one run inside a tool, its task's.
            call_id = key if key in self._calls else self._task_calls.get((level[:-1], key))
            tool, message_id = self._calls.get(call_id or "", ("subagent", None))
            run_id = self._subagents[level] = "|".join(level)
            events.append(SubagentStartedEvent(
                subagent_run_id=run_id, name=tool, parent_tool_call_id=call_id,
                parent_message_id=message_id, parent_subagent_run_id=self._subagents.get(
                    level[:-1])))
        return events

    def _leave(self, ns: tuple[str, ...]) -> list[BaseEvent]:
        """``SUBAGENT_FINISHED`` for the nested run at ``ns`` and what it still has open."""
        run_id = self._subagents.pop(ns, None)
        if run_id is None:
            return []
        self._ended.add(ns)
        events: list[BaseEvent] = []
        for message_id, reply in list(self._replies.items()):
            if reply.subagent == run_id:
                events += self._end_reply(message_id)
        outcome = SubagentFinishedSuspendedOutcome() if self._interrupts else None
        return [*events, SubagentFinishedEvent(subagent_run_id=run_id, outcome=outcome)]

    def _values(self, values: Any) -> list[BaseEvent]:
        if not isinstance(values, Mapping):
            return []
        state = _jsonable({key: value for key, value in values.items() if _is_state(key)})
        if not self._has_state:
            self._has_state, self._state = True, state
            return [StateSnapshotEvent(snapshot=state)]
        delta = json_patch(self._state, state)
        self._state = state
        return [StateDeltaEvent.model_validate({"delta": delta})] if delta else []

    def _task(self, task: Mapping[str, Any], ns: tuple[str, ...]) -> list[BaseEvent]:
        name, task_id = str(task.get("name")), str(task.get("id"))
        if "triggers" in task:  # a task starting: {"id", "name", "input", "triggers"}
            calls = task.get("input")
            if isinstance(calls, list) and calls and isinstance(calls[0], Mapping):
                self._task_calls[ns, task_id] = str(calls[0].get("id"))
            return self._step(name, task_id, starts=True) if not ns else []
        call_id = self._task_calls.get((ns, task_id))
        # A tools task's end is the end of the nested runs it started.
        events: list[BaseEvent] = []
        for level in sorted(self._subagents, key=len, reverse=True):
            if level[: len(ns)] == ns and len(level) > len(ns) and level[len(ns)] in (
                    f"tools:{task_id}", f"tools:{call_id}"):
                events += self._leave(level)
        if ns:
            return events
        for interrupt in task.get("interrupts") or ():
            self._interrupt(interrupt, call_id)
        return events + self._step(name, task_id, starts=False)

    def _step(self, name: str, task_id: str, *, starts: bool) -> list[BaseEvent]:
        """One step per node while any of its tasks runs (parallel tool calls are one)."""
        self._tasks_seen = True
        running = self._steps.setdefault(name, set())
        if starts:
            running.add(task_id)
            return [StepStartedEvent(step_name=name)] if len(running) == 1 else []
        if task_id not in running:
            return []
        running.discard(task_id)
        return [] if running else [StepFinishedEvent(step_name=name)]

    def _updates(self, update: Any) -> list[BaseEvent]:
        if not isinstance(update, Mapping):
            return []
        events: list[BaseEvent] = []
        for node in update:
            if node == "__interrupt__":
                for interrupt in update[node]:
                    self._interrupt(interrupt, None)
            elif not self._tasks_seen:
                events += [StepStartedEvent(step_name=node), StepFinishedEvent(step_name=node)]
        return events

    def _interrupt(self, interrupt: Any, tool_call_id: str | None) -> None:
        interrupt_id = str(getattr(interrupt, "id", ""))
        known = self._interrupts.get(interrupt_id)
        if known is not None and (known.tool_call_id or not tool_call_id):
            return
        value = getattr(interrupt, "value", None)
        self._interrupts[interrupt_id] = Interrupt(
            id=interrupt_id,
            reason="tool_call" if tool_call_id else "input_required",
            message=value if isinstance(value, str) else None,
            tool_call_id=tool_call_id,
            response_schema=getattr(interrupt, "response_schema", None),
            metadata={"value": _jsonable(value)},
        )

    # -- messages ----------------------------------------------------------------------------

    def _count(self, message: lc.BaseMessage, metadata: Mapping[str, Any]) -> None:
        usage = getattr(message, "usage_metadata", None)
        if usage:
            entry = token_usage_from_langchain_metadata(
                usage, provider=metadata.get("ls_provider"), model=metadata.get("ls_model_name"))
            if entry is not None:
                self._usage.append(entry)

    def _message_id(self, message: lc.BaseMessage) -> str:
        if message.id:
            return message.id
        self._unnamed += 1
        return f"{self.run_id}-message-{self._unnamed}"

    def _message(self, message: lc.BaseMessage, subagent: str | None) -> list[BaseEvent]:
        if isinstance(message, lc.AIMessageChunk):
            return self._chunk(message, subagent)
        if isinstance(message, lc.AIMessage):
            return _tag(self._whole_reply(message), subagent)
        if isinstance(message, lc.ToolMessage):
            return _tag([ToolCallResultEvent(
                message_id=message.id or f"{message.tool_call_id}-result",
                tool_call_id=message.tool_call_id, content=message.text, role="tool")],
                subagent)
        role: Literal["user", "system"] = (
            "user" if isinstance(message, lc.HumanMessage) else "system")
        message_id = self._message_id(message)
        return _tag([TextMessageStartEvent(message_id=message_id, role=role),
                     *self._text(message_id, message.text),
                     TextMessageEndEvent(message_id=message_id)], subagent)

    @staticmethod
    def _text(message_id: str, text: str) -> list[BaseEvent]:
        return [TextMessageContentEvent(message_id=message_id, delta=text)] if text else []

    def _whole_reply(self, message: lc.AIMessage) -> list[BaseEvent]:
        """A reply that arrived whole (``disable_streaming=True``, or a hook's message)."""
        message_id = self._message_id(message)
        events: list[BaseEvent] = []
        reasoning = _reasoning_of(message)
        if reasoning:
            reasoning_id = message_id + "-reasoning"
            events += [ReasoningStartEvent(message_id=reasoning_id),
                       ReasoningMessageStartEvent(message_id=reasoning_id),
                       ReasoningMessageContentEvent(message_id=reasoning_id, delta=reasoning),
                       ReasoningMessageEndEvent(message_id=reasoning_id),
                       ReasoningEndEvent(message_id=reasoning_id)]
        if message.text:
            events += [TextMessageStartEvent(message_id=message_id, role="assistant"),
                       *self._text(message_id, message.text),
                       TextMessageEndEvent(message_id=message_id)]
        for index, call in enumerate(message.tool_calls):
            call_id = call.get("id") or f"{message_id}-call-{index}"
            self._calls[call_id] = (call["name"], message_id)
            events += [ToolCallStartEvent(tool_call_id=call_id, tool_call_name=call["name"],
                                          parent_message_id=message_id),
                       ToolCallArgsEvent(tool_call_id=call_id, delta=json.dumps(call["args"])),
                       ToolCallEndEvent(tool_call_id=call_id)]
        return events

    def _chunk(self, chunk: lc.AIMessageChunk, subagent: str | None) -> list[BaseEvent]:
        message_id = chunk.id or f"{self.run_id}-reply"
        reply = self._replies.get(message_id)
        if reply is None:
            reply = self._replies[message_id] = _Reply(subagent)
        events: list[BaseEvent] = []
        reasoning = _reasoning_of(chunk)
        if reasoning:
            reasoning_id = message_id + "-reasoning"
            if not reply.reasoning:
                reply.reasoning = True
                events += [ReasoningStartEvent(message_id=reasoning_id),
                           ReasoningMessageStartEvent(message_id=reasoning_id)]
            events.append(ReasoningMessageContentEvent(message_id=reasoning_id, delta=reasoning))
        text = chunk.text
        if text:
            events += self._end_reasoning(message_id, reply)
            if not reply.text:
                reply.text = True
                events.append(TextMessageStartEvent(message_id=message_id, role="assistant"))
            events.append(TextMessageContentEvent(message_id=message_id, delta=text))
        for position, piece in enumerate(chunk.tool_call_chunks):
            index = piece.get("index")
            index = position if index is None else index
            call_id = reply.calls.get(index)
            if call_id is None:
                events += self._end_reasoning(message_id, reply)
                call_id = piece.get("id") or f"{message_id}-call-{index}"
                reply.calls[index] = call_id
                reply.open_calls.append(call_id)
                tool = piece.get("name") or ""
                self._calls[call_id] = (tool, message_id)
                events.append(ToolCallStartEvent(
                    tool_call_id=call_id, tool_call_name=tool, parent_message_id=message_id))
            args = piece.get("args")
            if args:
                events.append(ToolCallArgsEvent(tool_call_id=call_id, delta=args))
        if chunk.chunk_position == "last":
            events += self._end_reply(message_id)
        return _tag(events, reply.subagent)

    def _end_reasoning(self, message_id: str, reply: _Reply) -> list[BaseEvent]:
        if not reply.reasoning:
            return []
        reply.reasoning = False
        reasoning_id = message_id + "-reasoning"
        return [ReasoningMessageEndEvent(message_id=reasoning_id),
                ReasoningEndEvent(message_id=reasoning_id)]

    def _end_reply(self, message_id: str) -> list[BaseEvent]:
        reply = self._replies.pop(message_id)
        events = self._end_reasoning(message_id, reply)
        if reply.text:
            events.append(TextMessageEndEvent(message_id=message_id))
        events += [ToolCallEndEvent(tool_call_id=call_id) for call_id in reply.open_calls]
        return _tag(events, reply.subagent)


# -- input -----------------------------------------------------------------------------------


# AG-UI's media parts, as LangChain's content blocks name them.
_BLOCK_TYPES = {"image": "image", "audio": "audio", "video": "video", "document": "file"}
_SOURCE_KEYS = {"url": "url", "data": "base64", "file": "file_id"}


def _content(content: Any) -> Any:
    """A message's content: a string as it is; AG-UI's parts as LangChain's content blocks
    (text; image, audio, video and document from a URL, base64 data or a provider's file)."""
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for part in content:
        data = part.model_dump(mode="json")
        if data["type"] == "text":
            blocks.append({"type": "text", "text": data["text"]})
            continue
        source = data.get("source") or {}
        block = {"type": _BLOCK_TYPES.get(data["type"], data["type"]),
                 _SOURCE_KEYS.get(str(source.get("type")), "url"): source.get("value")}
        if source.get("mime_type"):
            block["mime_type"] = source["mime_type"]
        blocks.append(block)
    return blocks


def _arguments(call: Any) -> Any:
    try:
        return json.loads(call.function.arguments or "{}")
    except ValueError:
        raise InvalidMessageError(
            f"the arguments of tool call {call.id!r} are not JSON: "
            f"{call.function.arguments!r}") from None


def _from_agui(message: Any) -> lc.BaseMessage | None:
    """An AG-UI message as rxagent's; ``None`` for the roles an agent does not read
    (reasoning, activity)."""
    if isinstance(message, UserMessage):
        return lc.HumanMessage(content=_content(message.content), id=message.id,
                               name=message.name)
    if isinstance(message, (SystemMessage, DeveloperMessage)):
        return lc.SystemMessage(content=message.content, id=message.id, name=message.name)
    if isinstance(message, AssistantMessage):
        calls: list[lc.ToolCall] = [
            {"name": call.function.name, "id": call.id, "args": _arguments(call)}
            for call in message.tool_calls or ()
        ]
        return lc.AIMessage(content=message.content or "", id=message.id, tool_calls=calls)
    if isinstance(message, ToolMessage):
        content = message.content if isinstance(message.content, str) else _content(
            message.content)
        return lc.ToolMessage(content=content, id=message.id, tool_call_id=message.tool_call_id,
                              status="error" if message.error else "success")
    return None


def agent_input(run_input: RunAgentInput, thread_messages: Sequence[lc.BaseMessage]) -> Any:
    """The agent's input for ``run_input`` on a thread that holds ``thread_messages``.

    An AG-UI client sends its whole conversation each time; the thread keeps it already, so
    only the messages after the last one the thread knows (by id) are new. The request's
    ``state`` (but ``messages`` and ``__``-keys) goes in beside them; ``resume`` entries answer the
    thread's interrupts by id (``Command(resume={id: payload})``).

    Raises:
        InvalidMessageError: a tool call whose arguments are not JSON.
    """
    known = {message.id for message in thread_messages if message.id}
    new = list(run_input.messages)
    for position in range(len(new) - 1, -1, -1):
        if new[position].id in known:
            new = new[position + 1 :]
            break
    messages = [m for m in (_from_agui(message) for message in new) if m is not None]
    state = run_input.state if isinstance(run_input.state, Mapping) else {}
    update: dict[str, Any] = {key: value for key, value in state.items() if _is_state(key)}
    if messages:
        update["messages"] = messages
    if run_input.resume:
        answers = {entry.interrupt_id: entry.payload for entry in run_input.resume}
        return Command(resume=answers, update=update or None)
    return update
