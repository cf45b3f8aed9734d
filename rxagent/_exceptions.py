"""The one exception tree of rxagent.

Misuse (a wrong argument, an unknown model string, a tool that cannot be described) is kept
apart from what goes wrong while a run is under way (a provider failing, a script running out,
a stream going quiet for too long), so that callers can catch one without the other::

    RxAgentError
    ├── UsageError                       the caller asked for something that cannot work
    │   ├── InvalidMessageError          (also ValueError) a message or dict that is not one
    │   ├── InvalidToolArgumentsError    (also ValueError) arguments a tool's schema refuses
    │   ├── ToolDefinitionError          (also TypeError) a function that cannot become a tool
    │   ├── ModelSpecError               (also ValueError) a model string nobody can resolve
    │   ├── MissingAPIKeyError           a provider with no key to send
    │   ├── InvalidUpdateError           (also ValueError) a state update that cannot apply
    │   ├── InvalidResumeError           (also ValueError) an answer its interrupt cannot use
    │   ├── InvalidNamespaceError        (also ValueError) a store namespace that is not one
    │   └── ThreadBusyError              a thread that already has a run going
    └── RunError                         a run (or a model call) failed under way
        ├── RecursionLimitError          the agent loop took more steps than allowed
        ├── RunCancelledError            the run that a sub-agent's run joined was cancelled
        ├── ScriptExhaustedError         a scripted test model has no reply left
        ├── ModelCallError               a model call failed; ``partial`` keeps what arrived
        │   ├── APIConnectionError       the server could not be reached or hung up
        │   ├── APIStatusError           the server answered with an HTTP error
        │   │   ├── RateLimitError       429
        │   │   └── ServerError          5xx and Anthropic's 529
        │   └── StreamProtocolError      the stream broke its wire format, or carried an error
        ├── StreamTimeoutError           (also TimeoutError) a stream went quiet for too long
        │   ├── FirstTokenTimeoutError   nothing arrived in time
        │   └── IdleTimeoutError         the gap between two items was too long
        │       └── ModelCallIdleTimeoutError  (also ModelCallError) a provider went quiet
        │                                mid-reply; ``partial`` keeps what arrived
        ├── BufferOverflowError          a bounded buffer with strategy "error" overflowed
        ├── ModelCallLimitExceededError  ModelCallLimitMiddleware(exit_behavior="error")
        │                                found a limit of model calls reached
        ├── ToolCallLimitExceededError   ToolCallLimitMiddleware(exit_behavior="error")
        │                                found a limit of tool calls passed
        ├── PIIDetectionError            PIIMiddleware(strategy="block") found what it blocks
        ├── ToolSelectionError           (also ValueError) LLMToolSelectorMiddleware's model
        │                                gave no usable choice of tools
        ├── StructuredOutputError        the model's structured response could not be had
        │   ├── StructuredOutputValidationError  it did not parse or fit the schema
        │   └── MultipleStructuredOutputsError   it called more than one output tool
        ├── CheckpointError              a checkpoint saver could not read or store (its
        │                                storage failed or is out of reach, a file of a
        │                                newer schema)
        └── StoreError                   a long-term memory store could not read or store

``GraphInterrupt`` (``rxagent.types.interrupt()`` stopping a run to ask a human) is not an error
and not in the tree: the run catches it, saves its state and ends normally.

A run that fails still delivers every event that came before the failure; the error comes last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The roots live one layer down so that the message types can raise InvalidMessageError
# without importing this module (which imports them to type ``partial``); same classes.
from ._exception_roots import InvalidMessageError, RxAgentError, UsageError

if TYPE_CHECKING:
    from ._messages import AIMessageChunk

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "BufferOverflowError",
    "CheckpointError",
    "FirstTokenTimeoutError",
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
    "RxAgentError",
    "ScriptExhaustedError",
    "ServerError",
    "StoreError",
    "StreamProtocolError",
    "StreamTimeoutError",
    "StructuredOutputError",
    "StructuredOutputValidationError",
    "ThreadBusyError",
    "ToolCallLimitExceededError",
    "ToolDefinitionError",
    "ToolSelectionError",
    "UsageError",
]


class InvalidToolArgumentsError(UsageError, ValueError):
    """Arguments given to a tool's ``invoke()``/``ainvoke()`` that its schema refuses; the
    message names each bad argument, and ``__cause__`` is pydantic's ``ValidationError``.

    (In a run, the model gets the same description as an error ``ToolMessage`` instead.)
    """


class ToolDefinitionError(UsageError, TypeError):
    """A callable cannot be turned into a tool (no name, an unsupported signature...)."""


class ModelSpecError(UsageError, ValueError):
    """A model string or object that no supported provider can resolve."""


class MissingAPIKeyError(UsageError):
    """A provider needs an API key and none was given or found in the environment."""


class InvalidUpdateError(UsageError, ValueError):
    """A state update (``update_state``, ``Command(update=...)``) that cannot apply: an unknown
    key, a node the agent does not have, a value that is not the key's kind."""


class InvalidResumeError(UsageError, ValueError):
    """A ``Command(resume=...)`` value that the interrupt it answers cannot use (a reviewer's
    decisions that do not fit the tool calls they review)."""


class InvalidNamespaceError(UsageError, ValueError):
    """A namespace given to a store (``rxagent.store``) that is not one: empty where an item
    goes, a label that is not a non-empty ``str``, or one holding a ``.`` or a NUL, or a first
    label ``"langgraph"``, which LangGraph keeps for itself. (LangGraph's error of the same name
    is a ``ValueError`` too.)"""


class ThreadBusyError(UsageError):
    """A run was started on a thread while another run on it is still going.

    One thread holds one conversation; two runs at once would each start from the same state
    and one would overwrite the other's steps. Wait for the first run, or use another thread.
    """


class RunError(RxAgentError):
    """A run, or a model call inside it, failed while under way."""


class ModelCallLimitExceededError(RunError):
    """``ModelCallLimitMiddleware(..., exit_behavior="error")`` found a limit of model calls
    reached before a model call.

    Attributes:
        thread_count: the model calls made on the thread.
        run_count: the model calls made in this run.
        thread_limit: the thread's limit, or ``None``.
        run_limit: the run's limit, or ``None``.
    """

    def __init__(self, thread_count: int, run_count: int, thread_limit: int | None,
                 run_limit: int | None) -> None:
        reached = []
        if thread_limit is not None and thread_count >= thread_limit:
            reached.append(f"thread limit ({thread_count}/{thread_limit})")
        if run_limit is not None and run_count >= run_limit:
            reached.append(f"run limit ({run_count}/{run_limit})")
        # LangChain's text: the "end" behaviour's message says the same.
        super().__init__(f"Model call limits exceeded: {', '.join(reached)}")
        self.thread_count = thread_count
        self.run_count = run_count
        self.thread_limit = thread_limit
        self.run_limit = run_limit


class ToolCallLimitExceededError(RunError):
    """``ToolCallLimitMiddleware(..., exit_behavior="error")`` found a model reply calling a
    tool more often than a limit allows.

    Attributes:
        thread_count: the calls the thread would have made with the blocked ones.
        run_count: the calls this run tried, the blocked ones included.
        thread_limit: the thread's limit, or ``None``.
        run_limit: the run's limit, or ``None``.
        tool_name: the limited tool, or ``None`` for every tool.
    """

    def __init__(self, thread_count: int, run_count: int, thread_limit: int | None,
                 run_limit: int | None, tool_name: str | None = None) -> None:
        reached = []
        if thread_limit is not None and thread_count > thread_limit:
            reached.append(f"thread limit exceeded ({thread_count}/{thread_limit} calls)")
        if run_limit is not None and run_count > run_limit:
            reached.append(f"run limit exceeded ({run_count}/{run_limit} calls)")
        what = f"'{tool_name}' tool" if tool_name else "Tool"
        # LangChain's text: the "end" behaviour's message says the same.
        super().__init__(f"{what} call limit reached: {' and '.join(reached)}.")
        self.thread_count = thread_count
        self.run_count = run_count
        self.thread_limit = thread_limit
        self.run_limit = run_limit
        self.tool_name = tool_name


class PIIDetectionError(RunError):
    """``PIIMiddleware(..., strategy="block")`` found personal data of its kind in a message.

    Attributes:
        pii_type: the kind (``"email"``...).
        matches: what was found: dicts with ``type``, ``value``, ``start`` and ``end``.
    """

    def __init__(self, pii_type: str, matches: list[Any]) -> None:
        self.pii_type = pii_type
        self.matches = list(matches)
        super().__init__(f"Detected {len(self.matches)} instance(s) of {pii_type} in text "
                         "content")


class ToolSelectionError(RunError, ValueError):
    """``LLMToolSelectorMiddleware``'s selection model chose tools the agent does not have,
    or gave no well-formed answer after its retries (with ``on_parsing_failure="error"``).
    (LangChain raises a ``ValueError``.)"""


class StructuredOutputError(RunError):
    """The agent's ``response_format`` got no usable answer from the model
    (``langchain.agents.structured_output.StructuredOutputError``).

    Attributes:
        ai_message: the reply that carried the bad answer.
    """

    ai_message: Any


class MultipleStructuredOutputsError(StructuredOutputError):
    """The model called more than one structured output tool where one answer is expected.

    Attributes:
        tool_names: the output tools it called, in order.
    """

    def __init__(self, tool_names: list[str], ai_message: Any) -> None:
        self.tool_names = tool_names
        self.ai_message = ai_message
        super().__init__(
            f"Model incorrectly returned multiple structured responses ({', '.join(tool_names)})"
            " when only one is expected."
        )


class StructuredOutputValidationError(StructuredOutputError):
    """The model's structured answer is not JSON, or its schema refuses it.

    Attributes:
        tool_name: the output tool (or the schema's name, for a provider's native output).
        source: the parsing or validation error (also ``__cause__``).
    """

    def __init__(self, tool_name: str, source: Exception, ai_message: Any) -> None:
        self.tool_name = tool_name
        self.source = source
        self.ai_message = ai_message
        super().__init__(f"Failed to parse structured output for tool '{tool_name}': {source}.")


class CheckpointError(RunError):
    """A checkpoint saver could not read or store: its database or server failed or could not
    be reached (``__cause__`` keeps the driver's error), or its file was written by a newer
    rxagent whose schema this one cannot read."""


class StoreError(RunError):
    """A long-term memory store (``rxagent.store``) could not read or store: its database failed
    (``__cause__`` keeps the driver's error), or its file was written by a newer rxagent whose
    schema this one cannot read."""


class RecursionLimitError(RunError):
    """The agent loop took more steps than ``config["recursion_limit"]`` allows."""


class RunCancelledError(RunError):
    """An agent run started inside another run's tool stopped because that run was cancelled.

    The sub-agent's own caller (the tool, iterating its ``stream()`` or awaiting its
    ``invoke()``) gets this error after every event that came before it; the cancelled run
    drops whatever the tool then returns.
    """


class ScriptExhaustedError(RunError):
    """A scripted test model was called more often than its script has replies."""


class ModelCallError(RunError):
    """A model call failed.

    Attributes:
        partial: the part of the reply that had arrived before the failure, merged into one
            chunk, or ``None`` if nothing had arrived. Nothing that was delivered is lost.
    """

    def __init__(self, message: str, *, partial: AIMessageChunk | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class APIConnectionError(ModelCallError):
    """The provider could not be reached, or the connection broke mid-stream."""


class APIStatusError(ModelCallError):
    """The provider answered with an HTTP error status.

    Attributes:
        status_code: the HTTP status.
        request_id: the provider's request id, when it sent one.
        body: the provider's error message, as text.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        body: str | None = None,
        partial: AIMessageChunk | None = None,
    ) -> None:
        super().__init__(message, partial=partial)
        self.status_code = status_code
        self.request_id = request_id
        self.body = body


class RateLimitError(APIStatusError):
    """HTTP 429: too many requests."""


class ServerError(APIStatusError):
    """HTTP 5xx, or Anthropic's 529 (overloaded)."""


class StreamProtocolError(ModelCallError):
    """The stream broke its wire format, or the provider sent an error inside it."""


class StreamTimeoutError(RunError, TimeoutError):
    """A stream went quiet for longer than allowed; the work behind it was cancelled."""


class FirstTokenTimeoutError(StreamTimeoutError):
    """Nothing arrived before the first-item deadline."""


class IdleTimeoutError(StreamTimeoutError):
    """The gap between two items was longer than allowed."""


class BufferOverflowError(RunError):
    """A bounded buffer with strategy ``"error"`` had no room for another item."""


class ModelCallIdleTimeoutError(IdleTimeoutError, ModelCallError):
    """A provider went quiet in the middle of a reply: an :class:`IdleTimeoutError` (so also a
    ``TimeoutError``) and a :class:`ModelCallError`, whose ``partial`` keeps the chunks that
    arrived before the silence."""
