"""Scripted models whose replies may fail part-way, for LangChain and rxagent alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessageChunk as LcAIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from rxagent.messages import AIMessageChunk

from ..test_langgraph_parity import RxFake, chunks_of
from .test_parity import SeenLc


@dataclasses.dataclass
class Fail:
    """A reply that streams ``text`` (a word a chunk), then raises ``error``."""

    text: str
    error: Exception


class FailingLc(SeenLc):
    """LangChain's fake model, with :class:`Fail` replies."""

    def _stream(self, messages: Any, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        self.seen.append(list(messages))
        reply = self.replies.pop(0)
        for chunk in chunks_of(reply.text if isinstance(reply, Fail) else reply):
            yield ChatGenerationChunk(message=LcAIMessageChunk(**chunk))
        if isinstance(reply, Fail):
            raise reply.error

    def _generate(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self.replies[0], Fail):
            self.seen.append(list(messages))
            raise self.replies.pop(0).error
        return super()._generate(messages, *args, **kwargs)


def failing(name: str, replies: list[Any]) -> Any:
    """A fake model of ``name``'s kind whose replies may be :class:`Fail`; its ``seen``
    holds the prompts it got, and ``calls`` counts them."""
    if name == "langchain":
        return FailingLc(replies=list(replies), seen=[])
    pending = list(replies)
    fake = RxFake([])
    seen: list[Any] = []

    def reply(messages: Any, tools: Any) -> Iterator[AIMessageChunk]:
        seen.append(list(messages))
        answer = pending.pop(0)
        for chunk in chunks_of(answer.text if isinstance(answer, Fail) else answer):
            yield AIMessageChunk(**chunk)
        if isinstance(answer, Fail):
            raise answer.error

    fake.fn = reply
    fake.seen = seen  # type: ignore[attr-defined]
    return fake
