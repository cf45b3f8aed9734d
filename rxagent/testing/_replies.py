"""How a test model streams a reply: the way a real provider splits it into chunks."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from .._chunks import make_chunk
from .._demand import Demand
from .._messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk

__all__ = ["count_words", "split_arguments", "split_text", "stream_reply"]

# A word with the whitespace before it ("It's", " always"), or trailing whitespace alone.
_TEXT_TOKEN = re.compile(r"\s*\S+|\s+")
# JSON punctuation runs ('{"', '":"') apart from the words between them ('San', ' Francisco').
_ARGS_TOKEN = re.compile(r'[{}\[\]":,]+|\s*[^\s{}\[\]":,]+|\s+')


def split_text(text: str) -> list[str]:
    """Split text into word tokens that keep their leading space; they join back to ``text``."""
    tokens = _TEXT_TOKEN.findall(text)
    if len(tokens) > 1 and tokens[-1].isspace():
        trailing = tokens.pop()  # popped first: ``tokens[-2] += tokens.pop()`` hits the wrong slot
        tokens[-1] += trailing
    return tokens


def split_arguments(arguments: str) -> list[str]:
    """Split a JSON argument string the way providers stream it: punctuation runs and words."""
    return _ARGS_TOKEN.findall(arguments)


def count_words(messages: Sequence[BaseMessage]) -> int:
    """A rough token count of a prompt, for the usage a test model reports."""
    return sum(len(message.text.split()) for message in messages)


async def stream_reply(
    reply: str | AIMessage,
    *,
    message_id: str,
    emit: Callable[[AIMessageChunk], None],
    demand: Demand,
    delay: float,
    input_tokens: int,
    response_metadata: dict[str, Any],
) -> None:
    """Stream ``reply`` as chunks, the way a provider streams it.

    A reply without tool calls opens with an empty chunk (a provider's role-only first delta,
    as in the seed docs' output). Then reasoning and text as word tokens, in content order;
    each tool call as a header and argument fragments; and an empty last chunk with the finish
    reason and the usage (the reply's own ``usage_metadata`` when the script gives one).
    """
    message = AIMessage(content=reply) if isinstance(reply, str) else reply
    produced = 0

    async def send(chunk: AIMessageChunk) -> None:
        nonlocal produced
        if not demand.ready:
            await demand.wait()
        if delay and produced:
            await anyio.sleep(delay)
        produced += 1
        emit(chunk)

    if not message.tool_calls:
        await send(make_chunk("", id=message_id))
    content = message.content
    for block in [content] if isinstance(content, str) else content:
        if isinstance(block, str) or block.get("type") == "text":
            text = block if isinstance(block, str) else str(block.get("text", ""))
            for token in split_text(text):
                await send(make_chunk(token, id=message_id))
        elif block.get("type") in ("reasoning", "thinking"):
            thought = str(block.get("reasoning", block.get("thinking", "")))
            for token in split_text(thought):
                await send(make_chunk([{"type": "reasoning", "reasoning": token}], id=message_id))
    for index, call in enumerate(message.tool_calls):
        header: ToolCallChunk = {
            "name": call["name"], "args": "", "id": call["id"], "index": index,
            "type": "tool_call_chunk",
        }
        await send(make_chunk("", id=message_id, tool_call_chunks=[header]))
        for fragment in split_arguments(json.dumps(call["args"], separators=(",", ":"))):
            piece: ToolCallChunk = {
                "name": None, "args": fragment, "id": None, "index": index,
                "type": "tool_call_chunk",
            }
            await send(make_chunk("", id=message_id, tool_call_chunks=[piece]))
    finish_reason = "tool_calls" if message.tool_calls else "stop"
    await send(
        make_chunk(
            "",
            id=message_id,
            chunk_position="last",
            response_metadata={**response_metadata, "finish_reason": finish_reason},
            usage_metadata=message.usage_metadata or {
                "input_tokens": input_tokens,
                "output_tokens": produced,
                "total_tokens": input_tokens + produced,
            },
        )
    )
