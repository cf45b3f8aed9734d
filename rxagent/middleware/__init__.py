"""Middleware: LangChain v1's hooks on an agent's run (``langchain.agents.middleware``' home)::

    from rxagent.middleware import AgentMiddleware, before_model, HumanInTheLoopMiddleware

Pass instances as ``create_agent(..., middleware=[...])``. Hooks (``before_agent``,
``before_model``, ``after_model``, ``after_agent``) are steps of the run, shown in ``updates``
as ``"<name>.<hook>"``; ``wrap_model_call`` and ``wrap_tool_call`` wrap each model and tool
call, whose tokens and writes still stream. ``docs/middleware.md`` lists what is here.
"""

from .._exceptions import ToolSelectionError
from .._state_schema import (
    AgentState,
    JumpTo,
    OmitFromInput,
    OmitFromOutput,
    OmitFromSchema,
    PrivateStateAttr,
    UntrackedValue,
)
from ._call_limits import (
    ModelCallLimitExceededError,
    ModelCallLimitMiddleware,
    ModelCallLimitState,
    ToolCallLimitExceededError,
    ToolCallLimitMiddleware,
    ToolCallLimitState,
)
from ._context_editing import ClearToolUsesEdit, ContextEdit, ContextEditingMiddleware
from ._decorators import (
    after_agent,
    after_model,
    before_agent,
    before_model,
    dynamic_prompt,
    wrap_model_call,
    wrap_tool_call,
)
from ._file_search import FilesystemFileSearchMiddleware
from ._human_in_the_loop import (
    ActionRequest,
    HITLRequest,
    HITLResponse,
    HumanInTheLoopMiddleware,
    InterruptOnConfig,
    ReviewConfig,
    ToolApprovalRequest,
)
from ._model_fallback import ModelFallbackMiddleware
from ._pii import (
    PIIDetectionError,
    PIIMatch,
    PIIMiddleware,
    detect_credit_card,
    detect_email,
    detect_ip,
    detect_mac_address,
    detect_url,
)
from ._retry import ModelRetryMiddleware, ToolRetryMiddleware
from ._shell import HostExecutionPolicy, RedactionRule, ShellToolMiddleware, ShellToolState
from ._summarization import SummarizationMiddleware
from ._todo import PlanningState, Todo, TodoListMiddleware
from ._tool_emulator import LLMToolEmulator
from ._tool_selection import LLMToolSelectorMiddleware
from ._types import (
    AgentMiddleware,
    ExtendedModelResponse,
    ModelCallResult,
    ModelRequest,
    ModelResponse,
    ToolCallRequest,
    hook_config,
)

__all__ = [
    "ActionRequest",
    "AgentMiddleware",
    "AgentState",
    "ClearToolUsesEdit",
    "ContextEdit",
    "ContextEditingMiddleware",
    "ExtendedModelResponse",
    "FilesystemFileSearchMiddleware",
    "HITLRequest",
    "HITLResponse",
    "HostExecutionPolicy",
    "HumanInTheLoopMiddleware",
    "InterruptOnConfig",
    "JumpTo",
    "LLMToolEmulator",
    "LLMToolSelectorMiddleware",
    "ModelCallLimitExceededError",
    "ModelCallLimitMiddleware",
    "ModelCallLimitState",
    "ModelCallResult",
    "ModelFallbackMiddleware",
    "ModelRequest",
    "ModelResponse",
    "ModelRetryMiddleware",
    "OmitFromInput",
    "OmitFromOutput",
    "OmitFromSchema",
    "PIIDetectionError",
    "PIIMatch",
    "PIIMiddleware",
    "PlanningState",
    "PrivateStateAttr",
    "RedactionRule",
    "ReviewConfig",
    "ShellToolMiddleware",
    "ShellToolState",
    "SummarizationMiddleware",
    "Todo",
    "TodoListMiddleware",
    "ToolApprovalRequest",
    "ToolCallLimitExceededError",
    "ToolCallLimitMiddleware",
    "ToolCallLimitState",
    "ToolCallRequest",
    "ToolRetryMiddleware",
    "ToolSelectionError",
    "UntrackedValue",
    "after_agent",
    "after_model",
    "before_agent",
    "before_model",
    "detect_credit_card",
    "detect_email",
    "detect_ip",
    "detect_mac_address",
    "detect_url",
    "dynamic_prompt",
    "hook_config",
    "wrap_model_call",
    "wrap_tool_call",
]
