"""Scripted model replies in OpenAI's and Anthropic's wire formats, for middleware tests that
run LangChain's examples as written (model strings and all) against the loopback server of the
``server`` fixture (conftest.py)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..chat_models.loopback import LoopbackServer, Reply
from ..chat_models.transcripts import (
    MESSAGE_STOP,
    anthropic_events,
    block_start,
    block_stop,
    message_delta,
    message_start,
    openai_call,
    openai_chunk,
    sse,
    text_delta,
)


def text(answer: str) -> Reply:
    """An OpenAI reply streaming ``answer`` word by word, cut into 7-byte pieces."""
    words = re.findall(r"\S+\s*", answer) or [""]
    return Reply([sse(openai_chunk({"role": "assistant", "content": ""}),
                      *[openai_chunk({"content": word}) for word in words],
                      openai_chunk(finish="stop"))], piece=7)


def calls(*wanted: tuple[str, dict[str, Any]]) -> Reply:
    """An OpenAI reply calling each ``(name, args)``, arguments in two pieces each."""
    chunks = [openai_chunk({"role": "assistant", "content": None})]
    for index, (name, args) in enumerate(wanted):
        encoded = json.dumps(args)
        half = len(encoded) // 2
        chunks.append(openai_chunk({"tool_calls": [openai_call(
            index, id=f"call_{index}_{name}", name=name, args=encoded[:half])]}))
        chunks.append(openai_chunk({"tool_calls": [openai_call(index, args=encoded[half:])]}))
    return Reply([sse(*chunks, openai_chunk(finish="tool_calls"))], piece=7)


def claude_text(answer: str) -> Reply:
    """An Anthropic reply streaming ``answer`` as one text block."""
    return Reply([anthropic_events(message_start(), block_start(0, {"type": "text", "text": ""}),
                                   text_delta(0, answer), block_stop(0),
                                   message_delta("end_turn", 9), MESSAGE_STOP)], piece=7)


def refused(status: int = 400) -> Reply:
    body = {"error": {"message": "model unavailable", "type": "invalid_request_error"}}
    return Reply([json.dumps(body)], status=status, content_type="application/json")


def sent_models(server: LoopbackServer) -> list[str]:
    return [request.json["model"] for request in server.requests]


def sent_text(server: LoopbackServer, index: int) -> str:
    """Everything request ``index`` told the model, as one string."""
    return json.dumps(server.requests[index].json["messages"])
