"""``ModelCallLimitMiddleware`` and ``ToolCallLimitMiddleware``: stop an agent that calls its
model, or its tools, too often.

Both count per thread (kept in the thread's checkpoints, so the count goes on across runs)
and per run (an :data:`~rxagent.middleware.UntrackedValue` key, never checkpointed, so each
run starts from zero). Neither count is shown in the run's state: both keys are private.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from .._exceptions import ModelCallLimitExceededError, ToolCallLimitExceededError, UsageError
from .._messages import AIMessage, ToolCall, ToolMessage
from .._state_schema import AgentState, PrivateStateAttr, UntrackedValue
from ..runtime import Runtime
from ._types import AgentMiddleware, hook_config

__all__ = [
    "ModelCallLimitExceededError",
    "ModelCallLimitMiddleware",
    "ModelCallLimitState",
    "ToolCallLimitExceededError",
    "ToolCallLimitMiddleware",
    "ToolCallLimitState",
]


def _check_limits(thread_limit: int | None, run_limit: int | None) -> None:
    if thread_limit is None and run_limit is None:
        raise UsageError(
            "At least one limit must be specified (thread_limit or run_limit)")
    for name, limit in (("thread_limit", thread_limit), ("run_limit", run_limit)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise UsageError(
                f"{name} is a count of calls (an int >= 0) or None, got {limit!r}")


# -- model calls ------------------------------------------------------------------------------


class ModelCallLimitState(AgentState):
    """The state keys of :class:`ModelCallLimitMiddleware`: the model calls made on the
    thread and in this run."""

    thread_model_call_count: NotRequired[Annotated[int, PrivateStateAttr]]
    run_model_call_count: NotRequired[Annotated[int, UntrackedValue, PrivateStateAttr]]


class ModelCallLimitMiddleware(AgentMiddleware[Any, Any]):
    """Stop the run before a model call that would go over a limit.

    After each model call (``after_model``) the counts go up by one; before each
    (``before_model``) a count that has reached its limit ends the run with an AI message
    saying which limit (``"end"``), or raises :class:`ModelCallLimitExceededError`
    (``"error"``).

    Args:
        thread_limit: the most model calls on a thread (across its runs; needs a
            checkpointer to outlive a run), or ``None`` for no limit.
        run_limit: the most model calls in one run, or ``None``.
        exit_behavior: ``"end"`` (the default) or ``"error"``.

    Raises:
        UsageError: neither limit given, a limit that is not a count,
            or another ``exit_behavior``.
    """

    state_schema = ModelCallLimitState

    def __init__(self, *, thread_limit: int | None = None, run_limit: int | None = None,
                 exit_behavior: Literal["end", "error"] = "end") -> None:
        _check_limits(thread_limit, run_limit)
        if exit_behavior not in ("end", "error"):
            raise UsageError(
                f"Invalid exit_behavior: {exit_behavior!r}. Must be 'end' or 'error'")
        self.thread_limit = thread_limit
        self.run_limit = run_limit
        self.exit_behavior = exit_behavior

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """End the run (or raise) if a count has reached its limit."""
        thread_count = state.get("thread_model_call_count", 0)
        run_count = state.get("run_model_call_count", 0)
        if not ((self.thread_limit is not None and thread_count >= self.thread_limit)
                or (self.run_limit is not None and run_count >= self.run_limit)):
            return None
        if self.exit_behavior == "error":
            raise ModelCallLimitExceededError(thread_count, run_count, self.thread_limit,
                                              self.run_limit)
        reached = ModelCallLimitExceededError(thread_count, run_count, self.thread_limit,
                                              self.run_limit)
        return {"jump_to": "end", "messages": [AIMessage(content=str(reached))]}

    @hook_config(can_jump_to=["end"])
    async def abefore_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """As :meth:`before_model` (it only reads the state)."""
        return self.before_model(state, runtime)

    def after_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Count the call just made."""
        return {"thread_model_call_count": state.get("thread_model_call_count", 0) + 1,
                "run_model_call_count": state.get("run_model_call_count", 0) + 1}

    async def aafter_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """As :meth:`after_model`."""
        return self.after_model(state, runtime)

    def __repr__(self) -> str:
        return (f"ModelCallLimitMiddleware(thread_limit={self.thread_limit!r}, "
                f"run_limit={self.run_limit!r}, exit_behavior={self.exit_behavior!r})")


# -- tool calls -------------------------------------------------------------------------------

ToolExitBehavior = Literal["continue", "error", "end"]

_ALL_TOOLS = "__all__"  # the count key of a limiter of every tool, as LangChain names it


class ToolCallLimitState(AgentState):
    """The state keys of :class:`ToolCallLimitMiddleware`: tool calls made on the thread and
    in this run, by tool name (``"__all__"`` for a limiter of every tool), so several
    limiters share the keys."""

    thread_tool_call_count: NotRequired[Annotated[dict[str, int], PrivateStateAttr]]
    run_tool_call_count: NotRequired[
        Annotated[dict[str, int], UntrackedValue, PrivateStateAttr]]


class ToolCallLimitMiddleware(AgentMiddleware[Any, Any]):
    """Block the tool calls that go over a limit.

    After each model reply (``after_model``), its calls of the limited tool (or of every tool)
    are counted in order; those past a limit are blocked:

    - ``"continue"`` (the default): a blocked call is answered with an error message telling
      the model not to call it again, and does not run; the reply's other calls run;
    - ``"end"``: the run ends with an AI message saying which limit was reached; none of the
      reply's calls run (each is answered with an error message);
    - ``"error"``: :class:`ToolCallLimitExceededError` is raised.

    The thread's count holds the calls that ran; the run's count every call tried.

    Args:
        tool_name: the tool to limit, or ``None`` for every tool. The middleware's name (in
            its steps' names) is ``"ToolCallLimitMiddleware[<tool_name>]"``, so one agent may
            have a limiter per tool.
        thread_limit: the most calls on a thread (across its runs), or ``None``.
        run_limit: the most calls in one run, or ``None``; at most ``thread_limit``.
        exit_behavior: ``"continue"``, ``"end"`` or ``"error"``.

    Raises:
        UsageError: neither limit given, a limit that is not a count,
            ``run_limit`` above ``thread_limit``, or another ``exit_behavior``.
    """

    state_schema = ToolCallLimitState

    def __init__(self, *, tool_name: str | None = None, thread_limit: int | None = None,
                 run_limit: int | None = None,
                 exit_behavior: ToolExitBehavior = "continue") -> None:
        _check_limits(thread_limit, run_limit)
        behaviours = ("continue", "error", "end")
        if exit_behavior not in behaviours:
            raise UsageError(
                f"Invalid exit_behavior: {exit_behavior!r}. Must be one of {behaviours}")
        if thread_limit is not None and run_limit is not None and run_limit > thread_limit:
            raise UsageError(
                f"run_limit ({run_limit}) cannot exceed thread_limit ({thread_limit}): a run "
                "is part of its thread")
        self.tool_name = tool_name
        self.thread_limit = thread_limit
        self.run_limit = run_limit
        self.exit_behavior = exit_behavior

    @property
    def name(self) -> str:
        """``"ToolCallLimitMiddleware"``, with ``[<tool_name>]`` for a limiter of one tool."""
        return f"ToolCallLimitMiddleware[{self.tool_name}]" if self.tool_name else \
            "ToolCallLimitMiddleware"

    @hook_config(can_jump_to=["end"])
    def after_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Count the last reply's calls; block those past a limit."""
        reply = next((m for m in reversed(state.get("messages") or ())
                      if isinstance(m, AIMessage)), None)
        if reply is None or not reply.tool_calls:
            return None
        key = self.tool_name or _ALL_TOOLS
        thread_counts = dict(state.get("thread_tool_call_count") or {})
        run_counts = dict(state.get("run_tool_call_count") or {})
        thread_before = thread_counts.get(key, 0)
        thread_count, run_count = thread_before, run_counts.get(key, 0)
        allowed: list[ToolCall] = []
        blocked: list[ToolCall] = []
        for call in reply.tool_calls:
            if self.tool_name is not None and call["name"] != self.tool_name:
                continue
            if ((self.thread_limit is not None and thread_count + 1 > self.thread_limit)
                    or (self.run_limit is not None and run_count + 1 > self.run_limit)):
                blocked.append(call)
            else:
                allowed.append(call)
                thread_count += 1
                run_count += 1
        thread_counts[key] = thread_count
        # A blocked call did not run (the thread does not count it) but this run tried it.
        run_counts[key] = run_count + len(blocked)
        if not blocked:
            return ({"thread_tool_call_count": thread_counts, "run_tool_call_count": run_counts}
                    if allowed else None)
        # The count the thread would have had: it names the limit that was reached.
        would_be = thread_count + len(blocked)
        if self.exit_behavior == "error":
            raise ToolCallLimitExceededError(would_be, run_counts[key], self.thread_limit,
                                             self.run_limit, self.tool_name)
        told = (f"Tool call limit exceeded. Do not call '{self.tool_name}' again."
                if self.tool_name else
                "Tool call limit exceeded. Do not make additional tool calls.")
        answers: list[ToolMessage | AIMessage] = [_refusal(call, told) for call in blocked]
        if self.exit_behavior == "continue":
            return {"thread_tool_call_count": thread_counts, "run_tool_call_count": run_counts,
                    "messages": answers}
        # "end": no call of this reply runs, so the thread counts none of them.
        blocked_ids = {call["id"] for call in blocked}
        answers.extend(
            _refusal(call, "Execution stopped before this tool call could run because another "
                           "tool call in the same batch exceeded the limit.")
            for call in reply.tool_calls if call["id"] not in blocked_ids)
        answers.append(AIMessage(content=str(ToolCallLimitExceededError(
            would_be, run_counts[key], self.thread_limit, self.run_limit, self.tool_name))))
        thread_counts[key] = thread_before
        return {"thread_tool_call_count": thread_counts, "run_tool_call_count": run_counts,
                "jump_to": "end", "messages": answers}

    @hook_config(can_jump_to=["end"])
    async def aafter_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """As :meth:`after_model` (it only reads the state)."""
        return self.after_model(state, runtime)

    def __repr__(self) -> str:
        return (f"ToolCallLimitMiddleware(tool_name={self.tool_name!r}, "
                f"thread_limit={self.thread_limit!r}, run_limit={self.run_limit!r}, "
                f"exit_behavior={self.exit_behavior!r})")


def _refusal(call: ToolCall, text: str) -> ToolMessage:
    return ToolMessage(content=text, tool_call_id=call["id"] or "", name=call["name"],
                       status="error")
