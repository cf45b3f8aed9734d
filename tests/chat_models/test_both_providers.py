"""What ChatOpenAI and ChatAnthropic must do alike, each against a real server on loopback.

Retries that honour ``retry-after`` before the first token and none after it; failures that
keep the partial reply; connect, first-token and idle timeouts; HTTP errors that carry the
status, the provider's message and the request id; an API key that never shows; and a held
demand or a disposal that reaches the socket.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import reactivex.operators as ops

from rxagent import (
    APIConnectionError,
    APIStatusError,
    FirstTokenTimeoutError,
    IdleTimeoutError,
    ModelCallError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    to_async_iterator,
)
from rxagent.chat_models import HTTPChatModel, RetryPolicy, Timeouts
from rxagent.messages import AIMessageChunk

from .loopback import HANGUP, STALL, Reply, serve, unaccepting_port
from .transcripts import merge
from .wires import WIRES, CountingTransport, Wire

HI = [{"role": "user", "content": "What is the weather in SF?"}]
TOKENS = ["It's", " always", " sunny"]

# Backoff so slow that a retry which ignored the server's retry-after would never come in time.
SLOW_BACKOFF = RetryPolicy(initial=60.0, maximum=60.0, jitter=0.0)
FAST_BACKOFF = RetryPolicy(initial=0.001, maximum=0.002)


@pytest.fixture(params=WIRES, ids=[wire.name for wire in WIRES])
def wire(request: pytest.FixtureRequest) -> Wire:
    return request.param  # type: ignore[no-any-return]


def after_opening(chunks: list[AIMessageChunk]) -> list[AIMessageChunk]:
    """The chunks after the empty one a streamed reply opens with (both wires' heads open
    one, as LangChain streams it); none when nothing came."""
    if not chunks:
        return chunks
    opening = chunks[0]
    assert opening.content == "" and opening.chunk_position is None, opening
    assert not opening.tool_call_chunks and opening.usage_metadata is None, opening
    return chunks[1:]


async def collect(model: HTTPChatModel, max_buffer: int = 1000) -> list[AIMessageChunk]:
    with anyio.fail_after(10):
        chunks = [c async for c in to_async_iterator(model.stream(HI), max_buffer=max_buffer)]
    return after_opening(chunks)


async def collect_until_error(model: HTTPChatModel) -> tuple[list[AIMessageChunk], Exception]:
    chunks: list[AIMessageChunk] = []
    with anyio.fail_after(10):
        try:
            async for chunk in to_async_iterator(model.stream(HI)):
                chunks.append(chunk)
        except Exception as error:
            return after_opening(chunks), error
    raise AssertionError("the stream did not fail")


def error_reply(wire: Wire, status: int, kind: str, message: str, **headers: str) -> Reply:
    return Reply([wire.error_body(kind, message)], status=status, headers=headers,
                 content_type="application/json")


# -- the happy path, for both --------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("piece", [1, 3, None], ids=["1-byte", "3-bytes", "whole"])
async def test_text_usage_and_finish_reason(wire: Wire, piece: int | None) -> None:
    async with serve(Reply([wire.reply(TOKENS)], piece=piece)) as server:
        chunks = await collect(wire.model(server.url))
    assert [c.content for c in chunks] == [*TOKENS, ""]
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.response_metadata["finish_reason"] == "stop"
    assert last.response_metadata["model_provider"] == wire.name
    assert last.usage_metadata is not None
    assert last.usage_metadata["total_tokens"] == wire.usage_total
    assert merge(chunks).to_message().text == "It's always sunny"


# -- retries before the first token --------------------------------------------------------------

PAST = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "headers", "logged"),
    [
        (429, {"retry-after-ms": "20"}, "in 0.020 s"),
        (429, {"retry-after": "0"}, "in 0.000 s"),
        (500, {"retry-after": PAST}, "in 0.000 s"),
        (503, {"retry-after-ms": "15", "retry-after": "120"}, "in 0.015 s"),
        (529, {"retry-after": "0.01"}, "in 0.010 s"),
    ],
    ids=["429-ms", "429-seconds", "500-date", "503-ms-wins", "529-seconds"],
)
async def test_a_retryable_status_is_retried_after_the_servers_delay(
    wire: Wire, status: int, headers: dict[str, str], logged: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="rxagent.chat_models")
    failing = error_reply(wire, status, wire.overloaded, "Overloaded", **headers)
    async with serve(failing, Reply([wire.reply(TOKENS)])) as server:
        model = wire.model(server.url)
        # Our own backoff would wait a minute: only the server's delay lets this finish.
        model.retry_policy = SLOW_BACKOFF
        chunks = await collect(model)
    assert merge(chunks).text == "It's always sunny"
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body
    assert f"retry 1 of 2 {logged}" in caplog.text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "kind"), [(429, RateLimitError), (500, ServerError), (529, ServerError)]
)
async def test_exhausted_retries_carry_status_message_and_request_id(
    wire: Wire, status: int, kind: type[APIStatusError]
) -> None:
    replies = [
        error_reply(wire, status, wire.overloaded, "Overloaded, try later",
                    **{"retry-after-ms": "1", wire.request_id_header: f"req_{n}"})
        for n in range(3)
    ]
    async with serve(*replies) as server:
        chunks, error = await collect_until_error(wire.model(server.url, max_retries=2))
    assert chunks == [] and len(server.requests) == 3
    assert type(error) is kind
    assert error.status_code == status
    assert error.request_id == "req_2"
    assert error.body == f"{wire.overloaded}: Overloaded, try later"
    assert f"HTTP {status}" in str(error) and "Overloaded, try later" in str(error)
    assert "req_2" in str(error)
    assert error.partial is None


@pytest.mark.anyio
async def test_a_client_error_is_not_retried_and_says_what_the_server_said(wire: Wire) -> None:
    bad = error_reply(wire, 400, "invalid_request_error", "max_tokens: must be positive",
                      **{wire.request_id_header: "req_400"})
    async with serve(bad, Reply([wire.reply(TOKENS)])) as server:
        _, error = await collect_until_error(wire.model(server.url))
    assert type(error) is APIStatusError
    assert (error.status_code, error.request_id) == (400, "req_400")
    assert "invalid_request_error: max_tokens: must be positive" in str(error)
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_an_overloaded_error_event_before_the_first_token_is_retried(wire: Wire) -> None:
    overloaded = wire.head() + wire.error_event(wire.overloaded, "Overloaded")
    async with serve(Reply([overloaded]), Reply([wire.reply(TOKENS)])) as server:
        model = wire.model(server.url)
        model.retry_policy = FAST_BACKOFF
        chunks = await collect(model)
    assert merge(chunks).text == "It's always sunny"
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_an_error_event_that_no_retry_cures_is_not_retried(wire: Wire) -> None:
    refused = wire.head() + wire.error_event("invalid_request_error", "prompt is too long")
    async with serve(Reply([refused]), Reply([wire.reply(TOKENS)])) as server:
        _, error = await collect_until_error(wire.model(server.url))
    assert type(error) is StreamProtocolError
    assert "invalid_request_error: prompt is too long" in str(error)
    assert len(server.requests) == 1


# -- after the first token: no retry, and nothing that arrived is lost -----------------------------


@pytest.mark.anyio
async def test_an_error_event_after_tokens_is_not_retried_and_keeps_the_partial(
    wire: Wire,
) -> None:
    body = wire.opening(TOKENS[:2]) + wire.error_event(wire.overloaded, "Overloaded")
    async with serve(Reply([body], piece=4), Reply([wire.reply(TOKENS)])) as server:
        chunks, error = await collect_until_error(wire.model(server.url))
    assert isinstance(error, StreamProtocolError)
    assert [c.content for c in chunks] == TOKENS[:2]
    assert error.partial is not None and error.partial.text == "It's always"
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_an_error_event_in_the_same_read_as_a_token_is_not_retried(wire: Wire) -> None:
    # One network read brings a token and the error: the token went out, so no second try.
    body = wire.opening(["It's"]) + wire.error_event(wire.overloaded, "Overloaded")
    async with serve(Reply([body]), Reply([wire.reply(TOKENS)])) as server:
        chunks, error = await collect_until_error(wire.model(server.url))
    assert isinstance(error, StreamProtocolError)
    assert [c.content for c in chunks] == ["It's"]
    assert len(server.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
async def test_a_broken_connection_after_tokens_is_not_retried_and_keeps_the_partial(
    wire: Wire, chunked: bool
) -> None:
    body = [wire.opening(TOKENS[:2]), HANGUP]
    async with serve(Reply(body, chunked=chunked), Reply([wire.reply(TOKENS)])) as server:
        chunks, error = await collect_until_error(wire.model(server.url))
    assert isinstance(error, APIConnectionError)
    assert [c.content for c in chunks] == TOKENS[:2]
    assert error.partial is not None and error.partial.text == "It's always"
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_ainvoke_raises_with_the_partial_reply(wire: Wire) -> None:
    body = [wire.opening(TOKENS[:2]), HANGUP]
    async with serve(Reply(body)) as server:
        with anyio.fail_after(10), pytest.raises(APIConnectionError) as caught:
            await wire.model(server.url).ainvoke(HI)
    assert caught.value.partial is not None and caught.value.partial.text == "It's always"


@pytest.mark.anyio
async def test_a_broken_connection_before_the_first_token_is_retried(wire: Wire) -> None:
    async with serve(Reply([wire.head(), HANGUP]), Reply([wire.reply(TOKENS)])) as server:
        model = wire.model(server.url)
        model.retry_policy = FAST_BACKOFF
        chunks = await collect(model)
    assert merge(chunks).text == "It's always sunny"
    assert len(server.requests) == 2


# -- timeouts --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_connect_timeout(wire: Wire) -> None:
    with unaccepting_port() as port:
        model = wire.model(f"http://127.0.0.1:{port}", max_retries=0,
                           timeout=Timeouts(connect=0.2, first_token=5, idle=5))
        _, error = await collect_until_error(model)
    assert isinstance(error, APIConnectionError)
    assert "timed out connecting" in str(error)
    assert isinstance(error.__cause__, httpx.ConnectTimeout)


@pytest.mark.anyio
@pytest.mark.parametrize("what", ["no-headers", "headers-and-keep-alives"])
async def test_a_first_token_timeout_and_the_server_sees_the_client_go(
    wire: Wire, what: str
) -> None:
    if what == "no-headers":
        reply = Reply(stall_before_headers=True)
    else:
        # Headers, the reply's opening events and keep-alives, but no token.
        reply = Reply([wire.head(), ": keep-alive\n\n", STALL])
    async with serve(reply) as server:
        model = wire.model(server.url, timeout=Timeouts(first_token=0.2, idle=5))
        chunks, error = await collect_until_error(model)
        await server.wait_disconnects(1)
    assert chunks == []
    assert isinstance(error, FirstTokenTimeoutError) and isinstance(error, TimeoutError)
    assert len(server.requests) == 1  # a timeout is not retried: it already took its time


@pytest.mark.anyio
async def test_an_idle_timeout_keeps_the_partial_and_the_server_sees_the_client_go(
    wire: Wire,
) -> None:
    async with serve(Reply([wire.opening(TOKENS[:2]), ": keep-alive\n\n", STALL])) as server:
        model = wire.model(server.url, timeout=Timeouts(first_token=5, idle=0.2))
        chunks, error = await collect_until_error(model)
        await server.wait_disconnects(1)
    assert [c.content for c in chunks] == TOKENS[:2]
    assert isinstance(error, IdleTimeoutError) and isinstance(error, TimeoutError)
    assert isinstance(error, ModelCallError)
    assert error.partial is not None and error.partial.text == "It's always"


# -- the key never shows ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_key_never_shows_in_a_repr_a_log_line_or_an_exception(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx's and httpcore's debug lines too
    echo = f"Invalid API key: {wire.key}"
    replies = [
        error_reply(wire, 503, wire.overloaded, echo, **{"retry-after-ms": "1"}),
        error_reply(wire, 401, "authentication_error", echo),
        Reply([wire.opening(["Hi"]) + wire.error_event("authentication_error", echo)]),
        Reply([f"not json, and {wire.key}\n\n"], content_type="application/json"),
    ]
    errors: list[Exception] = []
    async with serve(*replies) as server:
        model = wire.model(server.url)
        for _ in range(3):
            errors.append((await collect_until_error(model))[1])
    assert [type(e) for e in errors] == [APIStatusError, StreamProtocolError,
                                         StreamProtocolError]
    assert isinstance(errors[0], APIStatusError) and errors[0].status_code == 401
    assert "Invalid API key: ***" in str(errors[0]) and "Check the API key" in str(errors[0])
    assert "Invalid API key: ***" in str(errors[1])
    # The key did travel, in the provider's header.
    assert any(wire.key in value for value in server.requests[0].headers.values())
    shown = [repr(model), str(vars(model)), caplog.text]
    for error in errors:
        shown += [str(error), repr(error), repr(vars(error)),
                  "".join(traceback.format_exception(error))]
    assert "retry 1 of 2" in caplog.text
    assert wire.key not in "\n".join(shown)


# disable_streaming=True sends a non-streaming request: tests/chat_models/test_whole_replies.py


# -- backpressure and cancellation reach the socket ------------------------------------------------

BIG_TOKEN = "x" * 65536
BIG_COUNT = 1024  # 64 MiB of events: more than the kernel buffers of both ends can hold


def big_body(wire: Wire) -> Iterator[str]:
    yield wire.head()
    for _ in range(BIG_COUNT):
        yield wire.token(BIG_TOKEN)
    yield wire.tail()


@pytest.mark.anyio
async def test_a_held_demand_stops_the_socket_reads_and_disposing_frees_the_connection(
    wire: Wire,
) -> None:
    transport = CountingTransport(limits=httpx.Limits(max_connections=1))
    replies = [Reply(big_body(wire)), Reply([wire.reply(TOKENS)])]
    async with serve(*replies) as server, httpx.AsyncClient(transport=transport) as client:
        model = wire.model(server.url, http_client=client)
        iterator = to_async_iterator(model.stream(HI), max_buffer=2)
        with anyio.fail_after(10):
            opening = await iterator.__anext__()
            assert after_opening([opening]) == []
            first = await iterator.__anext__()
            # The consumer stops asking. Were the socket still read, the client would be
            # through many megabytes by now.
            await anyio.sleep(0.3)
            read_while_held = transport.bytes_read
            assert read_while_held < 2 * 1024 * 1024
            assert server.bodies_completed == 0
            assert server.bytes_sent < BIG_COUNT * len(BIG_TOKEN)
            # Disposing while the read loop waits on the demand closes the response...
            await iterator.aclose()
            await server.wait_disconnects(1)
            # ...and gives the pool's only connection back: this call could not start else.
            assert (await model.ainvoke(HI)).text == "It's always sunny"
    assert first.content == BIG_TOKEN
    assert server.connections == 2


@pytest.mark.anyio
async def test_a_slow_consumer_gets_everything_once_it_asks_again(wire: Wire) -> None:
    tokens = [f" t{n}" for n in range(150)]
    body: list[Any] = [wire.head(), *[wire.token(t) for t in tokens], wire.tail()]
    async with serve(Reply(body)) as server:
        produced = 0

        def count(_: AIMessageChunk) -> None:
            nonlocal produced
            produced += 1

        model = wire.model(server.url, timeout=Timeouts(first_token=5, idle=0.1))
        stream = model.stream(HI).pipe(ops.do_action(on_next=count))
        iterator = to_async_iterator(stream, max_buffer=4)
        with anyio.fail_after(10):
            received = [await iterator.__anext__()]
            # Longer than the idle timeout: time spent held does not count as silence.
            await anyio.sleep(0.3)
            held_at = produced
            received += [chunk async for chunk in iterator]
    assert held_at <= 16  # the provider stopped at about the buffer's size
    assert merge(received).text == "".join(tokens)
    assert received[-1].chunk_position == "last"
