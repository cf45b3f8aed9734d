"""The two wire formats behind one interface, for the tests that both providers must pass alike.

A :class:`Wire` makes a model pointed at a loopback server and writes the pieces of a reply in
its provider's format: the head (before any token), one event per text token, the tail (finish
reason, usage, end marker), an error event and an HTTP error body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from rxagent.chat_models import ChatAnthropic, ChatOpenAI, HTTPChatModel

from .transcripts import (
    ANTHROPIC_MODEL,
    MESSAGE_STOP,
    USAGE,
    anthropic_events,
    block_start,
    block_stop,
    message_delta,
    message_start,
    openai_chunk,
    sse,
    text_delta,
)


@dataclass(frozen=True)
class Wire:
    """One provider's wire format, as the shared tests need it."""

    name: str
    key: str
    make: Callable[[str, dict[str, Any]], HTTPChatModel]
    head: Callable[[], str]
    token: Callable[[str], str]
    tail: Callable[[], str]
    error_event: Callable[[str, str], str]
    error_body: Callable[[str, str], str]
    request_id_header: str
    overloaded: str  # the error type meaning "overloaded / failed inside"
    usage_total: int  # total_tokens of the usage that tail() reports

    def model(self, url: str, **kwargs: Any) -> HTTPChatModel:
        """A model of this provider that talks to the loopback server at ``url``."""
        kwargs.setdefault("api_key", self.key)
        return self.make(url, kwargs)

    def opening(self, tokens: Iterable[str]) -> str:
        """The start of a reply up to these tokens: no finish, no end marker."""
        return self.head() + "".join(self.token(t) for t in tokens)

    def reply(self, tokens: Iterable[str]) -> str:
        """A whole reply that streams these tokens, then finishes with ``stop`` and usage."""
        return self.opening(tokens) + self.tail()


def _openai_error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


OPENAI = Wire(
    name="openai",
    key="sk-proj-test-0123456789-SECRET",
    make=lambda url, kwargs: ChatOpenAI("gpt-5-nano", base_url=url + "/v1", **kwargs),
    head=lambda: sse(openai_chunk({"role": "assistant", "content": ""}), done=False),
    token=lambda text: sse(openai_chunk({"content": text}), done=False),
    tail=lambda: sse(openai_chunk(finish="stop"), openai_chunk(choices=False, usage=USAGE)),
    error_event=lambda kind, message: sse(_openai_error(kind, message), done=False),
    error_body=lambda kind, message: json.dumps(_openai_error(kind, message)),
    request_id_header="x-request-id",
    overloaded="server_error",
    usage_total=412,
)


def _anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


ANTHROPIC = Wire(
    name="anthropic",
    key="sk-ant-api03-test-0123456789-SECRET",
    make=lambda url, kwargs: ChatAnthropic(ANTHROPIC_MODEL, base_url=url, **kwargs),
    head=lambda: anthropic_events(message_start(), block_start(0, {"type": "text", "text": ""})),
    token=lambda text: anthropic_events(text_delta(0, text)),
    tail=lambda: anthropic_events(block_stop(0), message_delta("end_turn", 12), MESSAGE_STOP),
    error_event=lambda kind, message: anthropic_events(_anthropic_error(kind, message)),
    error_body=lambda kind, message: json.dumps(_anthropic_error(kind, message)),
    request_id_header="request-id",
    overloaded="overloaded_error",
    usage_total=25 + 12,
)

WIRES = [OPENAI, ANTHROPIC]


class CountingTransport(httpx.AsyncBaseTransport):
    """httpx's real transport (sockets, pool), counting the body bytes the client has read."""

    def __init__(self, **kwargs: Any) -> None:
        self._inner = httpx.AsyncHTTPTransport(**kwargs)
        self.bytes_read = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CountingStream(response.stream, self),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CountingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, owner: CountingTransport) -> None:
        self._inner = inner
        self._owner = owner

    async def __aiter__(self) -> Any:
        async for part in self._inner:
            self._owner.bytes_read += len(part)
            yield part

    async def aclose(self) -> None:
        await self._inner.aclose()
