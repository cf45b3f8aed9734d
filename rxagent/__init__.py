"""rxagent: agent streaming on Rx observables.

An agent run is one cold ``reactivex.Observable`` of parts (``Agent.observe()``); the stream
modes of LangChain's streaming docs are operators on it (:mod:`rxagent.operators`), and
``Agent.stream()`` / ``Agent.astream()`` give LangGraph's output shapes on top::

    from rxagent import create_agent, get_stream_writer

Chat models live in :mod:`rxagent.chat_models`, messages in :mod:`rxagent.messages`, tools in
:mod:`rxagent.tools`, and the test models in :mod:`rxagent.testing`.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from ._agent import Agent, AgentState, StreamMode, create_agent
from ._bridges import DEFAULT_MAX_BUFFER, from_async_iterable, to_async_iterator, to_iterator
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    BufferOverflowError,
    CheckpointError,
    FirstTokenTimeoutError,
    IdleTimeoutError,
    InvalidMessageError,
    InvalidNamespaceError,
    InvalidResumeError,
    InvalidToolArgumentsError,
    InvalidUpdateError,
    MissingAPIKeyError,
    ModelCallError,
    ModelCallIdleTimeoutError,
    ModelCallLimitExceededError,
    ModelSpecError,
    MultipleStructuredOutputsError,
    PIIDetectionError,
    RateLimitError,
    RecursionLimitError,
    RunCancelledError,
    RunError,
    RxAgentError,
    ScriptExhaustedError,
    ServerError,
    StoreError,
    StreamProtocolError,
    StreamTimeoutError,
    StructuredOutputError,
    StructuredOutputValidationError,
    ThreadBusyError,
    ToolCallLimitExceededError,
    ToolDefinitionError,
    ToolSelectionError,
    UsageError,
)
from ._interrupts import GraphInterrupt
from ._types import RunnableConfig, StreamPart
from ._writer import StreamWriter, get_stream_writer
from .runtime import get_config, get_store

GraphRecursionError = RecursionLimitError  # langgraph.errors' name for it

try:
    __version__ = _version("rxagent")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "APIConnectionError",
    "APIStatusError",
    "Agent",
    "AgentState",
    "BufferOverflowError",
    "CheckpointError",
    "FirstTokenTimeoutError",
    "GraphInterrupt",
    "GraphRecursionError",
    "IdleTimeoutError",
    "InvalidMessageError",
    "InvalidNamespaceError",
    "InvalidResumeError",
    "InvalidToolArgumentsError",
    "InvalidUpdateError",
    "MissingAPIKeyError",
    "ModelCallError",
    "ModelCallIdleTimeoutError",
    "ModelCallLimitExceededError",
    "ModelSpecError",
    "MultipleStructuredOutputsError",
    "PIIDetectionError",
    "RateLimitError",
    "RecursionLimitError",
    "RunCancelledError",
    "RunError",
    "RunnableConfig",
    "RxAgentError",
    "ScriptExhaustedError",
    "ServerError",
    "StoreError",
    "StreamMode",
    "StreamPart",
    "StreamProtocolError",
    "StreamTimeoutError",
    "StreamWriter",
    "StructuredOutputError",
    "StructuredOutputValidationError",
    "ThreadBusyError",
    "ToolCallLimitExceededError",
    "ToolDefinitionError",
    "ToolSelectionError",
    "UsageError",
    "__version__",
    "create_agent",
    "from_async_iterable",
    "get_config",
    "get_store",
    "get_stream_writer",
    "to_async_iterator",
    "to_iterator",
]
