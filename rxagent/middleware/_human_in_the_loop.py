"""``HumanInTheLoopMiddleware``: a person approves, edits, rejects or answers tool calls
before they run.

In LangChain's "batched" mode (the default), after each model step that calls a tool named in
``interrupt_on`` the run stops with one interrupt whose value is a :class:`HITLRequest` listing
the gated calls; ``Command(resume={"decisions": [...]})`` answers them, one decision per call,
in order. In "per_call" mode each gated call stops the run as it starts, with an interrupt of
its own (a :class:`ToolApprovalRequest` with a ``response_schema`` of the decisions the tool
allows), answered by id with one decision: ``Command(resume={interrupt.id: decision})``.
Decisions:

- ``{"type": "approve"}``: the call runs as the model made it;
- ``{"type": "edit", "edited_action": {"name": ..., "args": {...}}}``: the reviewer's call runs
  instead; the model's own call stays in its message, and the result says what ran instead;
- ``{"type": "reject", "message": "why"}``: the call does not run; the model is told so;
- ``{"type": "respond", "message": "..."}``: the call does not run; the message is its result.

The answers are checked against the decisions each tool allows; a wrong one is an
:class:`~rxagent.InvalidResumeError` in batched mode, and pydantic's ``ValidationError`` in
per-call mode (checked against the interrupt's schema, as LangGraph checks it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal, NotRequired, Union

from pydantic import Discriminator, ValidatorFunctionWrapHandler, WrapValidator, create_model
from typing_extensions import TypedDict

from .._exceptions import InvalidResumeError, UsageError
from .._interrupts import Command, interrupt
from .._messages import AIMessage, ToolCall, ToolMessage
from .._state_schema import AgentState, PrivateStateAttr
from .._tools import ToolRuntime
from ..runtime import Runtime
from ._types import AgentMiddleware, ToolCallRequest

__all__ = [
    "ActionRequest",
    "HITLRequest",
    "HITLResponse",
    "HumanInTheLoopMiddleware",
    "InterruptOnConfig",
    "ReviewConfig",
    "ToolApprovalRequest",
]

DecisionType = Literal["approve", "edit", "reject", "respond"]
_ALL_DECISIONS: list[DecisionType] = ["approve", "edit", "reject", "respond"]
_EDITED = "hitl_edited_tool_calls"  # state: the reviewer's call for each edited call id

EDIT_NOTICE = (
    "Note: a human reviewer replaced this tool call before it ran. The call recorded in "
    "your message is the one you produced, not the one that executed. This was "
    "intentional and authorized. Do not re-issue your original call."
)


class ActionRequest(TypedDict):
    """One gated tool call, as the reviewer sees it."""

    name: str
    args: dict[str, Any]
    description: NotRequired[str]


class ReviewConfig(TypedDict):
    """The decisions allowed for a gated call."""

    action_name: str
    allowed_decisions: list[DecisionType]


class HITLRequest(TypedDict):
    """The interrupt's value: the gated calls of one model reply, and what each allows."""

    action_requests: list[ActionRequest]
    review_configs: list[ReviewConfig]


class ToolApprovalRequest(TypedDict):
    """A per-call interrupt's value: the call under review."""

    type: Literal["tool_approval"]
    tool_call_id: str
    name: str
    args: dict[str, Any]
    description: str


class _Approve(TypedDict):
    type: Literal["approve"]


class _Reject(TypedDict):
    type: Literal["reject"]
    message: NotRequired[str]


class _Respond(TypedDict):
    type: Literal["respond"]
    message: str


class HITLResponse(TypedDict):
    """The resume value: one decision per gated call, in order."""

    decisions: list[dict[str, Any]]


class InterruptOnConfig(TypedDict):
    """How one tool is gated.

    Attributes:
        allowed_decisions: among ``"approve"``, ``"edit"``, ``"reject"``, ``"respond"``.
        description: shown to the reviewer: a str, or ``(tool_call, state, runtime) -> str``.
        when: ``(ToolCallRequest) -> bool``: gate this call (``True``) or let it run.
    """

    allowed_decisions: list[DecisionType]
    description: NotRequired[str | Callable[[ToolCall, Any, Runtime[Any]], str]]
    when: NotRequired[Callable[[ToolCallRequest], bool]]


class _ReviewState(AgentState):
    hitl_edited_tool_calls: NotRequired[Annotated[dict[str, Any], PrivateStateAttr]]


class HumanInTheLoopMiddleware(AgentMiddleware[Any, Any]):
    """Stop the run for a person to review tool calls before they run.

    The agent needs a checkpointer (the stop is an interrupt, resumed with
    ``Command(resume={"decisions": [...]})``).

    Args:
        interrupt_on: tool name → ``True`` (every decision allowed), ``False`` (never gated)
            or an :class:`InterruptOnConfig`. Tools not named run without review.
        description_prefix: the start of each call's description, when its config gives none.
        edit_notice: put before the result of a call a reviewer edited (``None``: nothing).
        interrupt_mode: ``"batched"`` (one interrupt per model reply) or ``"per_call"`` (one
            per gated call, as it starts).

    Raises:
        UsageError: a config without ``allowed_decisions``, an unknown decision, or an
            unknown ``interrupt_mode``.
    """

    state_schema = _ReviewState

    def __init__(
        self,
        interrupt_on: Mapping[str, bool | InterruptOnConfig],
        *,
        description_prefix: str = "Tool execution requires approval",
        edit_notice: str | None = EDIT_NOTICE,
        interrupt_mode: Literal["batched", "per_call"] = "batched",
    ) -> None:
        if interrupt_mode not in ("batched", "per_call"):
            raise UsageError(f"interrupt_mode is 'batched' or 'per_call', got {interrupt_mode!r}")
        self.interrupt_mode = interrupt_mode
        self.interrupt_on: dict[str, InterruptOnConfig] = {}
        for tool_name, config in interrupt_on.items():
            if config is True:
                self.interrupt_on[tool_name] = {"allowed_decisions": list(_ALL_DECISIONS)}
            elif config is False:
                continue
            elif isinstance(config, Mapping) and config.get("allowed_decisions"):
                unknown = set(config["allowed_decisions"]) - set(_ALL_DECISIONS)
                if unknown:
                    raise UsageError(f"interrupt_on[{tool_name!r}] allows unknown decision(s) "
                                     f"{sorted(unknown)}; they are among {_ALL_DECISIONS}")
                self.interrupt_on[tool_name] = config
            else:
                raise UsageError(
                    f"interrupt_on[{tool_name!r}] is True, False or a config with a non-empty "
                    f"'allowed_decisions' list such as ['approve', 'reject']; got {config!r}"
                )
        self.description_prefix = description_prefix
        self.edit_notice = edit_notice

    def after_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Ask about the last reply's gated calls; write what the reviewer decided."""
        if self.interrupt_mode == "per_call":  # asked as each call starts instead
            return None
        reply = next((m for m in reversed(state["messages"]) if isinstance(m, AIMessage)), None)
        if reply is None or not reply.tool_calls:
            return None
        requests: list[ActionRequest] = []
        configs: list[ReviewConfig] = []
        gated: list[int] = []
        for position, call in enumerate(reply.tool_calls):
            config = self.interrupt_on.get(call["name"])
            if config is None or not self._gates(call, config, state, runtime):
                continue
            requests.append({"name": call["name"], "args": call["args"],
                             "description": self._describe(call, config, state, runtime)})
            configs.append({"action_name": call["name"],
                            "allowed_decisions": list(config["allowed_decisions"])})
            gated.append(position)
        if not requests:
            # An earlier reply's edits must not apply to this reply's calls.
            return {_EDITED: {}} if state.get(_EDITED) else None
        answer = interrupt(HITLRequest(action_requests=requests, review_configs=configs))
        decisions = _decisions(answer)
        if len(decisions) != len(gated):
            raise InvalidResumeError(
                f"{len(decisions)} decision(s) for {len(gated)} gated tool call(s): resume with "
                "one decision per call, in order"
            )
        answers: list[ToolMessage] = []
        edited: dict[str, Any] = {}
        for position, decision in zip(gated, decisions, strict=True):
            call = reply.tool_calls[position]
            kind = self._check(decision, call)
            if kind == "edit":
                action = decision.get("edited_action")
                if not (isinstance(action, Mapping) and isinstance(action.get("name"), str)
                        and isinstance(action.get("args"), Mapping)):
                    raise InvalidResumeError(
                        "an edit decision is {'type': 'edit', 'edited_action': {'name': ..., "
                        f"'args': {{...}}}}}}, got {decision!r}"
                    )
                if call["id"]:
                    edited[call["id"]] = {"name": action["name"], "args": dict(action["args"])}
            elif kind in ("reject", "respond"):
                answers.append(_answer(call, decision))
        return {"messages": [reply, *answers], _EDITED: edited}

    async def aafter_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """As :meth:`after_model` (it only reads the state and asks)."""
        return self.after_model(state, runtime)

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command],
    ) -> ToolMessage | Command:
        """Run the reviewer's call in place of an edited one, and say so in its result (and in
        per-call mode, ask first)."""
        planned = self._plan(request)
        if isinstance(planned, ToolMessage):
            return planned
        run, action = planned
        return self._noted(handler(run), action)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command]],
    ) -> ToolMessage | Command:
        """As :meth:`wrap_tool_call`, for the async handler."""
        planned = self._plan(request)
        if isinstance(planned, ToolMessage):
            return planned
        run, action = planned
        return self._noted(await handler(run), action)

    # -- the parts ---------------------------------------------------------------------------

    def _plan(
        self, request: ToolCallRequest
    ) -> tuple[ToolCallRequest, dict[str, Any] | None] | ToolMessage:
        """The request to run and the reviewer's edit it carries out (``None``: none), or
        the message that answers the call instead of the tool."""
        if self.interrupt_mode == "per_call":
            asked = self._ask(request)
            if isinstance(asked, ToolMessage):
                return asked
            action = asked[1]
        else:
            action = self._edit_of(request)
        return (request, None) if action is None else (self._edited(request, action), action)

    def _ask(
        self, request: ToolCallRequest
    ) -> tuple[ToolCallRequest, dict[str, Any] | None] | ToolMessage:
        """Per-call mode: the request to run and the reviewer's edit, or the message that
        answers the call instead."""
        call = request.tool_call
        config = self.interrupt_on.get(call["name"])
        when = config.get("when") if config is not None else None
        if config is None or (when is not None and not when(request)):
            return request, None
        if call.get("id") is None:
            raise UsageError(f"tool call {call['name']!r} has no id, so a reviewer's answer "
                             "cannot be matched to it; the model must give tool call ids")
        runtime = Runtime(context=request.runtime.context, store=request.runtime.store,
                          stream_writer=request.runtime.stream_writer)
        value = ToolApprovalRequest(
            type="tool_approval", tool_call_id=call["id"] or "", name=call["name"],
            args=call["args"], description=self._describe(call, config, request.state, runtime))
        decision = interrupt(value, response_schema=_decision_schema(
            config["allowed_decisions"], call["name"], request.tool))
        kind = decision["type"]
        if kind == "approve":
            return request, None
        if kind == "edit":
            action = {"name": call["name"], "args": dict(decision["edited_action"]["args"])}
            return request, action
        return _answer(call, decision)

    def _gates(self, call: ToolCall, config: InterruptOnConfig, state: Any,
               runtime: Runtime[Any]) -> bool:
        when = config.get("when")
        if when is None:
            return True
        tool_runtime: ToolRuntime[Any, Any] = ToolRuntime(
            state=state, context=runtime.context, stream_writer=runtime.stream_writer,
            tool_call_id=call["id"], store=runtime.store,
        )
        return bool(when(ToolCallRequest(tool_call=call, tool=None, state=state,
                                         runtime=tool_runtime)))

    def _describe(self, call: ToolCall, config: InterruptOnConfig, state: Any,
                  runtime: Runtime[Any]) -> str:
        description = config.get("description")
        if callable(description):
            return str(description(call, state, runtime))
        if description is not None:
            return description
        return f"{self.description_prefix}\n\nTool: {call['name']}\nArgs: {call['args']}"

    def _check(self, decision: Any, call: ToolCall) -> str:
        allowed = self.interrupt_on[call["name"]]["allowed_decisions"]
        kind = decision.get("type") if isinstance(decision, Mapping) else None
        if kind not in allowed:
            raise InvalidResumeError(
                f"decision {decision!r} for tool {call['name']!r}: its type is one of "
                f"{list(allowed)}, as interrupt_on allows for this tool"
            )
        if kind == "respond" and not isinstance(decision.get("message"), str):
            raise InvalidResumeError(f"a respond decision has a 'message' str, got {decision!r}")
        return str(kind)

    @staticmethod
    def _edit_of(request: ToolCallRequest) -> dict[str, Any] | None:
        call_id = request.tool_call.get("id")
        edits = request.state.get(_EDITED) or {}
        return edits.get(call_id) if call_id else None

    @staticmethod
    def _edited(request: ToolCallRequest, action: Mapping[str, Any]) -> ToolCallRequest:
        """The reviewer's call: new arguments, or another of the agent's tools."""
        call: ToolCall = {**request.tool_call, "name": action["name"], "args": action["args"]}
        if action["name"] == request.tool_call["name"]:
            return request.override(tool_call=call)
        tool = next((t for t in request.runtime.tools if t.name == action["name"]), None)
        if tool is None:
            raise InvalidResumeError(
                f"the reviewer edited tool call {request.tool_call['id']!r} into a call of "
                f"{action['name']!r}, which is not one of the agent's tools: "
                f"{sorted(t.name for t in request.runtime.tools)}"
            )
        return request.override(tool_call=call, tool=tool)

    def _noted(self, result: ToolMessage | Command, action: Mapping[str, Any] | None
               ) -> ToolMessage | Command:
        if action is None or not self.edit_notice or not isinstance(result, ToolMessage):
            return result
        notice = (f"{self.edit_notice} Executed instead: {action['name']} with arguments "
                  f"{json.dumps(action['args'], default=str)}.")
        content = result.content
        if isinstance(content, str):
            text = f"{notice}\n\nTool response:\n{content}" if content else notice
            return result.model_copy(update={"content": text})
        return result.model_copy(update={
            "content": [{"type": "text", "text": f"{notice}\n\nTool response:"}, *content]})


def _as_sent(answer: Any, check: ValidatorFunctionWrapHandler) -> Any:
    """Check ``answer`` against its branch, then keep it as sent (the tool checks its
    arguments itself when it runs)."""
    check(answer)
    return answer


def _decision_schema(allowed: list[DecisionType], name: str, tool: Any) -> Any:
    """The type a per-call answer must fit: the decisions ``allowed``, an edit's name pinned to
    the tool and its arguments checked by the tool's schema."""
    by_type: dict[str, Any] = {"approve": _Approve, "reject": _Reject, "respond": _Respond}
    if "edit" in allowed:
        arguments: Any = getattr(tool, "args_schema", None) or dict[str, Any]
        pinned: Any = Literal[name]  # a type made at runtime: the tool's own name
        edit: Any = Literal["edit"]
        action = create_model("EditedAction", name=(pinned, ...), args=(arguments, ...))
        decision = create_model("EditDecision", type=(edit, ...), edited_action=(action, ...))
        by_type["edit"] = Annotated[decision, WrapValidator(_as_sent)]
    members = tuple(by_type[kind] for kind in dict.fromkeys(allowed))
    if len(members) == 1:
        return members[0]
    return Annotated[Union[members], Discriminator("type")]  # noqa: UP007 - a runtime tuple


def _decisions(answer: Any) -> list[Any]:
    decisions = answer.get("decisions") if isinstance(answer, Mapping) else None
    if not isinstance(decisions, list):
        raise InvalidResumeError(
            "resume a HumanInTheLoopMiddleware interrupt with {'decisions': [...]}, one "
            f"decision per gated tool call; got {answer!r}"
        )
    return decisions


def _answer(call: ToolCall, decision: Mapping[str, Any]) -> ToolMessage:
    """The tool message that stands for a call the reviewer rejected or answered."""
    if decision["type"] == "respond":
        content = decision["message"]
    elif reason := decision.get("message"):
        content = f"User rejected the tool call for `{call['name']}` with reason: {reason}"
    else:
        content = (f"User rejected the tool call for `{call['name']}` with id {call['id']}. "
                   "The tool was not executed. Do not retry this tool call unless the user "
                   "explicitly requests it.")
    return ToolMessage(
        content=content, name=call["name"], tool_call_id=call["id"] or "",
        status="success" if decision["type"] == "respond" else "error",
        additional_kwargs={"lc_source": "hitl_interrupt_decision",
                           "lc_data": {"decision": decision["type"]}},
    )
