"""Messages: what goes into a model, what comes out of it, and how streamed chunks add up.

The types follow LangChain's, so code and printed output from its docs carry over:

- :class:`HumanMessage`, :class:`SystemMessage`, :class:`AIMessage` (with ``tool_calls``,
  ``invalid_tool_calls``, ``usage_metadata``) and :class:`ToolMessage`, all with ``text``,
  ``content_blocks``, ``pretty_print()`` and a repr that shows only what is not a default.
- :class:`AIMessageChunk`, a piece of a streamed reply. ``a + b`` merges two chunks (text
  concatenated, tool-call fragments merged per call, usage summed); it is associative, and
  the last chunk of a reply (``chunk_position="last"``) carries the parsed ``tool_calls``.
- :class:`ChunkAccumulator` adds chunks up as they arrive without keeping them alive;
  ``to_message()`` gives the finished :class:`AIMessage`.
- :class:`RemoveMessage` takes a message out of a thread's state by id, in a state update.
- :func:`trim_messages`, :func:`filter_messages`, :func:`count_tokens_approximately`,
  :func:`messages_to_dict` / :func:`messages_from_dict` and :func:`convert_to_messages`:
  LangChain's helpers over lists of messages, with its rules.
- :func:`to_message` / :func:`to_messages` read dicts (``{"role": "user", "content": ...}``),
  ``(role, content)`` tuples and strings as messages.

Example::

    from rxagent.messages import AIMessageChunk, ChunkAccumulator

    accumulator = ChunkAccumulator()
    for chunk in [AIMessageChunk(content="Hello"), AIMessageChunk(content=" world")]:
        accumulator.add(chunk)
    assert accumulator.to_message().text == "Hello world"
"""

from ._convert import to_message, to_messages
from ._message_utils import (
    convert_to_messages,
    count_tokens_approximately,
    filter_messages,
    messages_from_dict,
    messages_to_dict,
    trim_messages,
)
from ._messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    ChunkAccumulator,
    HumanMessage,
    InvalidToolCall,
    MessageLike,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    UsageMetadata,
)
from ._removal import REMOVE_ALL_MESSAGES, RemoveMessage

__all__ = [
    "REMOVE_ALL_MESSAGES",
    "AIMessage",
    "AIMessageChunk",
    "AnyMessage",
    "BaseMessage",
    "ChunkAccumulator",
    "HumanMessage",
    "InvalidToolCall",
    "MessageLike",
    "RemoveMessage",
    "SystemMessage",
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "UsageMetadata",
    "convert_to_messages",
    "count_tokens_approximately",
    "filter_messages",
    "messages_from_dict",
    "messages_to_dict",
    "to_message",
    "to_messages",
    "trim_messages",
]
