"""What every HTTP chat model shares: keys, clients, retries, timeouts, errors, the read loop.

A provider module only knows its wire format: how to build the request (:class:`StreamRequest`),
how the body is cut into events (an :class:`EventDecoder`; server-sent events unless the
provider says otherwise) and how events become chunks (a :class:`WireParser`).
:func:`stream_reply` does the rest, the same way for every provider, as a chain of steps that
each do one thing, like httpx's ``send``:

1. :func:`_with_retries`: attempt the call again after a failure that may pass, while nothing
   has been delivered (408, 409, 429, 5xx and 529, connection failures, and error events that
   mean the same after HTTP 200), waiting the server's ``retry-after`` or backing off;
2. :func:`_attempt`: one try under the first-token and idle deadlines; turns each failure into
   the error the caller sees (the API key scrubbed from it) or a retry;
3. :func:`_open`: POST the request with ``async with client.stream(...)``, so that a
   cancellation (the subscriber disposing) closes the response and the server sees the client
   go; check the status and that a stream, not a JSON document, came back;
4. :func:`_read_reply`: read the body with ``aiter_bytes()``, checking the consumer's demand
   before every read, so that a slow consumer stops the socket reads themselves; feed the bytes
   to the decoder, the events to the parser and the chunks to the consumer, letting the
   consumer take them every few dozen events;
5. the wire parser, the provider's own, with no I/O.

The steps share one :class:`_Call`: the request, the settings, the demand, and the reply
delivered so far. It is the only owner of that partial reply: it decides from it whether a
failure may still be retried (never after the first chunk, or that chunk would go out twice)
and which deadline runs, and it attaches it to the :class:`ModelCallError` the call ends with.
Time spent waiting for the consumer's demand counts against neither deadline.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import ssl
import threading
import uuid
import weakref
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import anyio
import httpx
import reactivex
from pydantic import SecretStr

from .._demand import Demand
from .._exceptions import (
    APIConnectionError,
    FirstTokenTimeoutError,
    MissingAPIKeyError,
    ModelCallError,
    ModelCallIdleTimeoutError,
    RxAgentError,
    StreamProtocolError,
    UsageError,
)
from .._fast_rx import observable_from_async
from .._loops import current_loop, land_cancellation
from .._messages import AIMessageChunk, BaseMessage, ChunkAccumulator
from .._per_loop import PerLoop
from ..rate_limiters import BaseRateLimiter
from ._base import BaseChatModel, DisableStreaming, ToolSpec
from ._errors import connection_error, error_message, scrub_error, status_error, wire_failure
from ._rate_limit import check_rate_limiter, wait_for_token
from ._reply import DeliveredReply, events_reader
from ._retry import DEFAULT_RETRY, RetryPolicy, retry_after, status_is_retryable
from ._sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from ._whole import WholeBodyDecoder, whole_body

__all__ = [
    "DEFAULT_TIMEOUTS",
    "POOL_LIMITS",
    "EventDecoder",
    "HTTPChatModel",
    "StreamRequest",
    "Timeouts",
    "WireParser",
    "new_http_client",
    "stream_reply",
]

logger = logging.getLogger("rxagent.chat_models")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a model call may wait, in seconds; ``None`` waits forever.

    Attributes:
        connect: to open the connection (and to send the request); a failure to connect in
            time is an :class:`~rxagent.APIConnectionError`.
        first_token: from sending the request to the first chunk of the reply; past it the
            call fails with :class:`~rxagent.FirstTokenTimeoutError`. Reasoning models can
            think for minutes before they write, hence the generous default.
        idle: between two chunks of the reply; past it the call fails with
            :class:`~rxagent.IdleTimeoutError`. Keep-alive comments and pings do not count as
            chunks. Time the consumer spends holding the stream back does not count either.
    """

    connect: float | None = 10.0
    first_token: float | None = 600.0
    idle: float | None = 120.0

    @classmethod
    def of(cls, value: Timeouts | float | None) -> Timeouts:
        """Read a ``timeout=`` argument: a :class:`Timeouts`, a number of seconds for the first
        token and between tokens (connect keeps its default), or ``None`` for no limit."""
        if isinstance(value, Timeouts):
            return value
        if value is None:
            return cls(None, None, None)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UsageError(
                f"timeout must be a positive number, a Timeouts or None; got {value!r}"
            )
        return cls(first_token=float(value), idle=float(value))


DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """One streaming POST, as :meth:`HTTPChatModel._request` makes it.

    Attributes:
        url: where to POST.
        headers: the request's headers, the API key among them (so the repr leaves them out).
        body: the JSON body; it is encoded once and sent again as it is on a retry.
    """

    url: str
    headers: dict[str, str]
    body: dict[str, Any]

    def __repr__(self) -> str:  # the headers hold the key
        return f"StreamRequest(url={self.url!r})"


class EventDecoder(Protocol):
    """Cuts a streamed response body into events; no I/O. A fresh one per attempt.

    Bytes arrive in whatever pieces the network gives, split anywhere (inside a line, inside a
    UTF-8 character); the events must come out the same however the body is split.
    :class:`SSEDecoder` is the one for ``text/event-stream`` bodies.
    """

    def feed(self, data: bytes) -> Sequence[Any]:
        """The events the next piece of the body completes, in order."""
        ...

    def flush(self) -> Sequence[Any]:
        """The body has ended: the events still pending (an unterminated last one)."""
        ...


class WireParser(Protocol):
    """Turns one reply's events into chunks; no I/O. A fresh one per attempt.

    :meth:`on_event` runs once per token: keep the common case, a text delta, short.

    A parser may also have an ``opening`` attribute: an empty chunk that :meth:`on_event`
    sets when an event opens the reply with nothing else in it (OpenAI's role-only first
    delta, Anthropic's ``message_start``), for the reader to hand over (and set back to
    ``None``) as LangChain streams one; it neither starts the reply nor joins the partial
    one (``_reply.DeliveredReply.open``).
    """

    @property
    def finished(self) -> bool:
        """Whether the stream's end marker came (``[DONE]``, ``message_stop``, ``done``)."""
        ...

    @property
    def transient_error(self) -> bool:
        """Whether the error event :meth:`on_event` raised for says the server is overloaded
        or failed inside (worth another attempt while nothing has been delivered)."""
        ...

    def on_event(self, event: Any) -> AIMessageChunk | None:
        """The chunk an event (as the decoder made it) makes, if any.

        Raises:
            StreamProtocolError: the event is an error, or breaks the wire format.
        """
        ...

    def last_chunk(self) -> AIMessageChunk:
        """The reply's closing chunk (``chunk_position="last"``, the finish reason, the usage),
        when the body is over.

        Raises:
            APIConnectionError: the body stopped before the reply was complete.
        """
        ...


@dataclass(slots=True)
class _CallSettings:
    """What :func:`stream_reply` needs to know about the model making the call."""

    label: str  # the provider's name in messages: "OpenAI", "Anthropic", "Ollama"
    timeouts: Timeouts
    max_retries: int
    key_hint: str | None  # how to set the key, for 401/403 messages
    secret: str | None = field(default=None, repr=False)  # scrubbed from every message
    policy: RetryPolicy = DEFAULT_RETRY


class _Retry(Exception):
    # A control-flow signal inside stream_reply; callers never see it.
    """A failure before anything was delivered that may go away if we try again."""

    def __init__(self, error: ModelCallError, delay: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay  # the server's retry-after, if it sent one


class _Call:
    """One model call, as every step of :func:`stream_reply` sees it.

    The only owner of the reply delivered so far (:attr:`reply`, which every chunk goes out
    through): :attr:`started` reads it, and :meth:`failed` attaches it to the error the call
    ends with.
    """

    __slots__ = ("content", "demand", "new_decoder", "new_parser", "reply", "request",
                 "settings")

    def __init__(
        self,
        request: StreamRequest,
        settings: _CallSettings,
        new_parser: Callable[[], WireParser],
        new_decoder: Callable[[], EventDecoder],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        keep: ChunkAccumulator | None,
    ) -> None:
        self.request = request
        self.content = json.dumps(request.body, ensure_ascii=False, separators=(",", ":")).encode()
        self.settings = settings
        self.new_parser = new_parser
        self.new_decoder = new_decoder
        self.demand = demand
        self.reply = DeliveredReply(emit, keep)

    @property
    def started(self) -> bool:
        """Whether a chunk has gone out (then no retry, and the idle deadline runs)."""
        return self.reply.started

    def retry_or_fail(
        self, error: ModelCallError, *, transient: bool, delay: float | None = None
    ) -> Exception:
        """What a failed attempt raises: ``error`` with the key scrubbed from it, or, when the
        failure may pass and nothing has gone out yet, a retry of it."""
        scrub_error(error, self.settings.secret)
        if transient and not self.started:
            return _Retry(error, delay)
        return error

    def failed(self, error: ModelCallError) -> None:
        """Attach the reply delivered so far to the error the call ends with."""
        if error.partial is None and self.started:
            error.partial = self.reply.snapshot()


class _Deadline:
    """The first-token and idle deadlines of one attempt, kept on one cancel scope.

    The first-token deadline runs until a chunk goes out, the idle one after each chunk; the
    clock stops while the consumer holds the demand, since then we are not waiting on the
    server.
    """

    __slots__ = ("_first_token", "_idle", "scope")

    def __init__(self, timeouts: Timeouts) -> None:
        self._first_token = timeouts.first_token
        self._idle = timeouts.idle
        self.scope = anyio.CancelScope(deadline=_deadline(self._first_token))

    def stop(self) -> None:
        """Stop the clock (while the consumer holds the demand, or the reply is complete)."""
        self.scope.deadline = math.inf

    def restart(self, started: bool) -> None:
        """Start the clock again: the idle deadline once the reply has ``started``."""
        self.scope.deadline = _deadline(self._idle if started else self._first_token)

    def expired(self, label: str, started: bool) -> Exception:
        """The error for a deadline that passed."""
        if started:
            return ModelCallIdleTimeoutError(
                f"{label} sent nothing for {self._idle} s after the last chunk (idle timeout)"
            )
        return FirstTokenTimeoutError(
            f"{label} sent no reply within {self._first_token} s (first-token timeout)"
        )


def _deadline(seconds: float | None) -> float:
    return math.inf if seconds is None else anyio.current_time() + seconds


# The events of one read parsed before the consumer may take their chunks. A read's worth (a
# few hundred chunks, six containers each) alive at once outlived the collector's young
# generations, and their promotions set off full collections, which walk the whole process:
# 1.4 us a token on a sync stream, more than the chunks cost to build. The sync iterator's loop
# runs one more slice before it stops, so its consumer takes up to twice this many at a time.
# (tests/chat_models/test_fast_path.py, test_a_large_read_is_handed_over_in_parts_*)
_HAND_OVER = 32

# The last resort of a drain after the end marker: a server that keeps the body open after it.
_DRAIN_SECONDS = 1.0

_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes milliseconds; every client we create shares one context.
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context()
        return _ssl_context


async def stream_reply(
    *,
    client: httpx.AsyncClient | None,
    request: StreamRequest,
    new_parser: Callable[[], WireParser],
    new_decoder: Callable[[], EventDecoder] = SSEDecoder,
    emit: Callable[[AIMessageChunk], None],
    demand: Demand,
    settings: _CallSettings,
    keep: ChunkAccumulator | None = None,
) -> None:
    """Make one streaming call, retrying while nothing has been delivered; see the module doc.

    With ``client=None`` a client is created for the call and closed after it (a model
    passes its pooled client of the running loop instead). ``keep``: the accumulator the
    reply delivered is kept in, for a caller that reads it there at the end.
    """
    call = _Call(request, settings, new_parser, new_decoder, emit, demand, keep)
    try:
        async with _client_for_call(client, settings.timeouts) as http:
            await _with_retries(http, call)
    except ModelCallError as error:
        call.failed(error)
        raise


async def _with_retries(http: httpx.AsyncClient, call: _Call) -> None:
    """Attempt the call until an attempt succeeds, fails for good, or the retries run out."""
    settings = call.settings
    for attempt in itertools.count():
        # A dispose() from another thread (during the backoff, say) has not reached the loop
        # yet: no new request may start once it has returned.
        await land_cancellation()
        try:
            await _attempt(http, call)
            return
        except _Retry as retry:
            if attempt >= settings.max_retries:
                # The retry becomes the error's __context__: a retry that still held the
                # error, or a local naming it here, would make a cycle (see _attempt).
                error = retry.error
                del retry.error
                try:
                    raise error from retry.__cause__
                finally:
                    del error
            # Only a status reply names a delay; the others back off.
            delay = settings.policy.backoff(attempt) if retry.delay is None else retry.delay
            logger.info(
                "%s call failed before the first token (%s); retry %d of %d in %.3f s",
                settings.label, retry.error, attempt + 1, settings.max_retries, delay,
            )
            await anyio.sleep(delay)


async def _attempt(http: httpx.AsyncClient, call: _Call) -> None:
    """One try at the reply, under its deadlines. Raises a :class:`_Retry` for a failure that
    another try may cure, the error the caller sees for any other."""
    try:
        parser = call.new_parser()
        decoder = call.new_decoder()
    except RxAgentError:
        raise
    except Exception as exc:
        raise wire_failure(call.settings.label, exc) from exc
    deadline = _Deadline(call.settings.timeouts)
    with deadline.scope:
        try:
            async with _open(http, call, decoder) as response:
                await _read_reply(response, call, decoder, parser, deadline)
        except httpx.HTTPError as exc:
            # No local names the error: the traceback holds this frame, and the cycle would
            # keep the call and its partial reply until the collector ran.
            raise call.retry_or_fail(
                connection_error(exc, call.settings.label, started=call.started), transient=True
            ) from exc
        except APIConnectionError as error:
            # The body ended before the reply did, without a transport error (close-delimited).
            raise call.retry_or_fail(error, transient=True) from error.__cause__
        except StreamProtocolError as error:
            # Anthropic's overloaded_error after HTTP 200 is its 529 in stream form.
            raise call.retry_or_fail(error, transient=parser.transient_error) from error.__cause__
    if deadline.scope.cancelled_caught:
        raise deadline.expired(call.settings.label, call.started)


@contextlib.asynccontextmanager
async def _open(
    http: httpx.AsyncClient, call: _Call, decoder: EventDecoder
) -> AsyncIterator[httpx.Response]:
    """POST the request; the response, once its status and type say that a stream follows.

    Leaving the block closes the response, whatever the reason (cancellation included).
    """
    settings = call.settings
    async with http.stream(
        "POST",
        call.request.url,
        content=call.content,
        headers=call.request.headers,
        timeout=_httpx_timeout(settings.timeouts),
    ) as response:
        if not response.is_success:
            await response.aread()
            delay = retry_after(response.headers)
            # No local names the error (see _attempt).
            raise call.retry_or_fail(
                status_error(response, settings.label, settings.key_hint),
                transient=status_is_retryable(response.status_code, response.headers)
                and (delay is None or delay <= settings.policy.max_retry_after),
                delay=delay,
            )
        # An SSE stream served as JSON is a server that ignored "stream": a whole reply or an
        # error. (A stream of JSON lines may well come as application/json.)
        if isinstance(decoder, SSEDecoder) and response.headers.get(
            "content-type", ""
        ).startswith("application/json"):
            await response.aread()
            raise StreamProtocolError(
                f"{settings.label} answered with JSON instead of a stream: "
                + error_message(response.text)
            )
        yield response


async def _read_reply(
    response: httpx.Response,
    call: _Call,
    decoder: EventDecoder,
    parser: WireParser,
    deadline: _Deadline,
) -> None:
    """Deliver the reply's chunks, then its closing chunk; leave no body half-read."""
    body = _Body(response)
    try:
        await _read_events(body, call, decoder, parser, deadline)
        try:
            last = parser.last_chunk()
        except RxAgentError:
            raise
        except Exception as exc:
            raise wire_failure(call.settings.label, exc) from exc
        call.reply.deliver(last)
        if not body.exhausted:
            # The reply is complete: nothing that goes wrong from here is a failure.
            deadline.stop()
            await body.drain()
    finally:
        await body.abandon()


async def _read_events(
    body: _Body, call: _Call, decoder: EventDecoder, parser: WireParser, deadline: _Deadline
) -> None:
    """Read the body until the reply's end marker or the body's end, only while the consumer
    has room, decoding it into events and parsing those into delivered chunks."""
    demand = call.demand
    reply = call.reply
    # A whole read's events in one call; from the first chunk delivered, an error, even one
    # later in the same read, is not retried.
    read_events = events_reader(parser, call.settings.label)
    # A wire parser over server-sent events reads each event's name and data as two columns
    # (SSEDecoder.feed_columns: no object per event; see _reply.py for the fast path).
    read_columns: Any = getattr(parser, "on_columns", None)  # (names, datas, reply) -> bool
    sse = decoder if isinstance(decoder, SSEDecoder) and read_columns is not None else None
    names: list[str] = []
    datas: list[str] = []
    events: Sequence[Any] = ()
    loop = current_loop()
    pause = anyio.lowlevel.checkpoint if loop is None else loop.pause
    while True:
        if not demand.ready:
            # The consumer is full: stop reading, and stop the clock with it.
            deadline.stop()
            await demand.wait()
            deadline.restart(call.started)
        data = await body.read()
        try:  # (free in Python 3.11 when nothing is raised)
            if sse is not None:
                names, datas = sse.flush_columns() if data is None else sse.feed_columns(data)
                count = len(datas)
            else:
                events = decoder.flush() if data is None else decoder.feed(data)
                count = len(events)
        except RxAgentError:
            raise
        except Exception as exc:
            raise wire_failure(call.settings.label, exc) from exc
        produced = False
        for start in range(0, count, _HAND_OVER):
            if start:
                # Let the consumer take what this read made so far (see _HAND_OVER).
                await pause()
            stop = start + _HAND_OVER
            if sse is not None:
                produced = read_columns(names[start:stop], datas[start:stop], reply) or produced
            else:
                produced = read_events(events[start:stop], reply) or produced
            if parser.finished:
                break
        reply.settle()
        if produced:
            deadline.restart(True)
        if parser.finished or data is None:
            return


class _Body:
    """A response body read one piece at a time, and never left half-read."""

    __slots__ = ("_reader", "exhausted")

    def __init__(self, response: httpx.Response) -> None:
        self._reader = response.aiter_bytes()
        self.exhausted = False

    async def read(self) -> bytes | None:
        """The next piece of the body, or ``None`` at its end."""
        try:
            return await anext(self._reader)
        except StopAsyncIteration:
            self.exhausted = True
            return None

    async def drain(self) -> None:
        """Read the rest of a body whose reply is complete, so that the connection can be
        reused; give up after a while, and on any transport error."""
        with anyio.move_on_after(_DRAIN_SECONDS), contextlib.suppress(httpx.HTTPError):
            while await self.read() is not None:
                pass

    async def abandon(self) -> None:
        """Stop reading a body that has not ended (an error, a cancellation, a timeout).

        httpx reads through a stack of async generators. Closing the top one would leave
        the ones below to the garbage collector (trio warns about each); a read cancelled at
        the socket unwinds the whole stack instead.
        """
        if self.exhausted:
            return
        self.exhausted = True
        with anyio.CancelScope() as scope:
            scope.cancel()
            with contextlib.suppress(StopAsyncIteration, httpx.HTTPError):
                while True:
                    await anext(self._reader)


@contextlib.asynccontextmanager
async def _client_for_call(
    client: httpx.AsyncClient | None, timeouts: Timeouts
) -> AsyncIterator[httpx.AsyncClient]:
    if client is not None:
        yield client
        return
    async with new_http_client(timeouts) as owned:
        yield owned


# A stream holds its connection for minutes, so a cap on connections would only queue calls
# that the server would serve: none. Idle connections are kept for the next call (an agent's
# next step comes after its tools ran, often seconds later), a bounded number of them.
POOL_LIMITS = httpx.Limits(
    max_connections=None, max_keepalive_connections=32, keepalive_expiry=30.0
)


def new_http_client(timeouts: Timeouts) -> httpx.AsyncClient:
    """The client a model makes for itself when it was given none (one per event loop)."""
    return httpx.AsyncClient(
        verify=_shared_ssl_context(), timeout=_httpx_timeout(timeouts), limits=POOL_LIMITS
    )


def _httpx_timeout(timeouts: Timeouts) -> httpx.Timeout:
    # Reads are bounded by our own first-token and idle deadlines, which know what a token is.
    # Waiting for a free connection in the pool is part of connecting: it gets the same time.
    return httpx.Timeout(
        connect=timeouts.connect, read=None, write=timeouts.connect, pool=timeouts.connect
    )


# -- the base of the HTTP models ----------------------------------------------------------------


class HTTPChatModel(BaseChatModel):
    """A chat model behind an HTTP streaming API; subclasses speak one wire format.

    A subclass says where its provider lives and implements two hooks, and a third when the
    body is not server-sent events; retries, timeouts, keys, errors, the demand and
    cancellation are done here, the same for every provider (see ``docs/providers.md``):

    - :meth:`_request`: the :class:`StreamRequest` of one call;
    - :meth:`_parser`: a fresh :class:`WireParser` for each attempt at the reply;
    - :meth:`_decoder`: a fresh :class:`EventDecoder` for each attempt (an :class:`SSEDecoder`
      unless overridden).

    The API key is read when the model is made (argument, then environment) and once more at
    call time if it was missing then, so that making a model (or an agent from a model
    string) never needs a key or the network; a call without one fails with
    :class:`~rxagent.MissingAPIKeyError`.

    Args:
        model: the model name, as the server knows it.
        api_key: the API key (kept secret: it shows in no repr, log line or error).
        base_url: the API's base URL; else the ``base_url_env`` variable, else
            ``default_base_url``.
        http_client: an ``httpx.AsyncClient`` to send requests with (not closed by the
            model). Without one, the model keeps a pooled client per event loop, so that
            calls reuse connections; it is closed with the model (``close()``,
            ``aclose()``, ``with``/``async with``) or when its loop ends.
        timeout: a :class:`Timeouts`, or seconds to wait for the first token and between
            tokens, or ``None`` for no limit.
        max_retries: retries of a call that failed before its first token.
        default_headers: extra HTTP headers for every request (:meth:`_request` adds them).
        disable_streaming: ``True`` delivers each reply as one chunk; ``"tool_calling"``
            delivers tool calls whole.
        tags: reported in stream metadata.
        max_event_size: the most characters one server-sent event may hold (16 MiB by
            default; ``None`` for no limit); a larger one fails the call with
            :class:`~rxagent.StreamProtocolError`.
        profile: what the model can do (``{"max_input_tokens": ...}``), for a model whose
            figures rxagent does not know or to correct them (see ``BaseChatModel.profile``).
        rate_limiter: waited for before each call's request, once per call however many
            retries it makes (:class:`~rxagent.rate_limiters.InMemoryRateLimiter`, or
            LangChain's).
        **params: more request fields, kept in :attr:`params` for :meth:`_request`.

    Attributes:
        provider: the provider's name in stream metadata (``ls_provider``) and chunks.
        label: the provider's name in error messages and log lines.
        api_key_env: the environment variable holding the key; ``None`` when the provider
            needs none.
        base_url_env: the environment variable that may hold the base URL.
        default_base_url: the provider's own URL; a key is required only there.
        retry_policy: the backoff between retries (set it on a model, or a subclass).
    """

    retry_policy: RetryPolicy = DEFAULT_RETRY
    stop_field = "stop"  # where LangChain's stop=[...] goes in the request body

    # Overridden per wire format and provider.
    label = "HTTP"
    api_key_env: str | None = None
    base_url_env: str | None = None
    default_base_url = ""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: Timeouts | float | None = DEFAULT_TIMEOUTS,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        disable_streaming: DisableStreaming = False,
        tags: Sequence[str] = (),
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE,
        profile: Mapping[str, Any] | None = None,
        rate_limiter: BaseRateLimiter | Any | None = None,
        **params: Any,
    ) -> None:
        _check_arguments(model, max_retries, http_client)
        check_rate_limiter(rate_limiter)
        SSEDecoder(max_event_size=max_event_size)  # checks the value now, not at the first call
        super().__init__(model_name=model, disable_streaming=disable_streaming, tags=tags)
        if isinstance(api_key, str):
            api_key = SecretStr(api_key)
        if api_key is None and self.api_key_env:
            api_key = _env_secret(self.api_key_env)
        self._api_key: SecretStr | None = api_key
        env_url = os.environ.get(self.base_url_env) if self.base_url_env else None
        self.base_url: str = (base_url or env_url or self.default_base_url).rstrip("/")
        self.http_client = http_client
        self.timeouts = Timeouts.of(timeout)
        # Without an http_client: a pooled client per event loop (its sockets belong to that
        # loop), closed with the model, its garbage collection or the loop's end.
        self._own_clients: PerLoop[httpx.AsyncClient] | None = None
        if http_client is None:
            timeouts = self.timeouts
            self._own_clients = PerLoop(
                lambda: new_http_client(timeouts), httpx.AsyncClient.aclose, what="this model"
            )
            weakref.finalize(self, self._own_clients.close, at_once=False)
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})
        self.max_event_size = max_event_size
        self.rate_limiter = rate_limiter
        self.params: dict[str, Any] = _request_params(params)
        if profile is not None:
            self.profile = profile

    @property
    def key_required(self) -> bool:
        """Whether a call needs an API key (the provider's own servers do)."""
        return self.api_key_env is not None and self.base_url == self.default_base_url

    def _key(self) -> str | None:
        key = self._api_key
        if key is None and self.api_key_env:
            key = self._api_key = _env_secret(self.api_key_env)
        if key is None:
            if self.key_required:
                raise MissingAPIKeyError(self._missing_key_message())
            return None
        return key.get_secret_value()

    def _missing_key_message(self) -> str:
        return (
            f"{type(self).__name__}({self.model_name!r}) needs an API key: pass "
            f"api_key=... or set the {self.api_key_env} environment variable. To try an agent "
            "without a key or the network, use the scripted test model, "
            "rxagent.testing.ScriptedChatModel([...])."
        )

    @abstractmethod
    def _request(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        api_key: str | None,
        kwargs: dict[str, Any],
    ) -> StreamRequest:
        """The HTTP request of one call, body in the provider's format.

        Args:
            messages: the conversation (do not change it: the caller keeps it).
            tools: the tools the model may call, as ``{"name", "description",
                "parameters"}`` dicts.
            api_key: the key to send, or ``None`` when there is none (a local server).
            kwargs: the call's own parameters; they override :attr:`params`.
        """

    @abstractmethod
    def _parser(self, message_id: str) -> WireParser:
        """A parser for one attempt at the reply; its chunks carry ``message_id``."""

    def _reply_parser(
        self, message_id: str, request: StreamRequest, *, whole: bool
    ) -> WireParser | None:
        """The parser of one attempt at the reply to ``request``: :meth:`_parser`, or for a
        ``whole`` (non-streaming) reply a parser of the whole JSON document; ``None`` when the
        provider has none (its calls then stream whatever ``disable_streaming`` says, and
        the chunks are merged)."""
        return None if whole else self._parser(message_id)

    def _decoder(self) -> EventDecoder:
        """A decoder for one attempt at the reply: how the body is cut into the events the
        parser reads. Server-sent events (:class:`SSEDecoder`) unless overridden."""
        return SSEDecoder(max_event_size=self.max_event_size)

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        """Make the call with :func:`stream_reply`, from this model's hooks and settings."""
        await self._call(messages, tools, emit, demand, None, kwargs)

    def _raw_keeping(
        self,
        messages: list[BaseMessage],
        specs: list[ToolSpec],
        kwargs: dict[str, Any],
        keep: ChunkAccumulator,
    ) -> reactivex.Observable[AIMessageChunk] | None:
        if type(self)._produce is not HTTPChatModel._produce:
            return None  # a subclass's own _produce sees every call

        async def produce(emit: Callable[[AIMessageChunk], None], demand: Demand) -> None:
            await self._call(messages, specs, emit, demand, keep, kwargs)

        return observable_from_async(produce)

    async def _call(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        keep: ChunkAccumulator | None,
        kwargs: dict[str, Any],
    ) -> None:
        # One call through stream_reply; ``keep``: where the reply is kept (see stream_reply).
        api_key = self._key()
        if "stop" in kwargs:  # LangChain's stop=[...]; stop=None is no stop at all
            stop = kwargs.pop("stop")
            if stop is not None:
                kwargs[self.stop_field] = stop
        request = self._request(messages, tools, api_key, kwargs)
        whole = self.disable_streaming is True or (
            self.disable_streaming == "tool_calling" and bool(tools or kwargs.get("tools"))
        )
        if whole and self._reply_parser("", request, whole=True) is None:
            whole = False  # a provider without a whole-reply parser streams
        if whole:  # a non-streaming request, and one JSON document back (_whole.py)
            request = StreamRequest(
                request.url, {**request.headers, "accept": "application/json"},
                whole_body(request.body),
            )
            max_size = self.max_event_size

            def new_decoder() -> EventDecoder:
                return WholeBodyDecoder(max_size)
        else:
            new_decoder = self._decoder
        message_id = f"lc_run--{uuid.uuid4()}"
        client = self.http_client
        if self._own_clients is not None:
            client = self._own_clients.get()

        def new_parser() -> WireParser:
            parser = self._reply_parser(message_id, request, whole=whole)
            assert parser is not None
            return parser

        if self.rate_limiter is not None:  # once per call, whatever its retries
            await wait_for_token(self.rate_limiter)
        await stream_reply(
            client=client,
            request=request,
            new_parser=new_parser,
            new_decoder=new_decoder,
            emit=emit,
            demand=demand,
            settings=_CallSettings(
                label=self.label,
                timeouts=self.timeouts,
                max_retries=self.max_retries,
                key_hint=(
                    f"pass api_key=... or set {self.api_key_env}" if self.api_key_env else None
                ),
                secret=api_key,
                policy=self.retry_policy,
            ),
            keep=keep,
        )

    def close(self) -> None:
        """Close the model's own HTTP clients (not an ``http_client`` it was given), each on
        its event loop; a call after this raises :class:`~rxagent.UsageError`."""
        if self._own_clients is not None:
            self._own_clients.close()

    async def aclose(self) -> None:
        """:meth:`close`, waiting until the running loop's client is closed."""
        if self._own_clients is not None:
            await self._own_clients.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_name={self.model_name!r}, base_url={self.base_url!r})"


def _check_arguments(model: object, max_retries: object, http_client: object) -> None:
    if not isinstance(model, str) or not model:
        raise UsageError(f"model must be a non-empty model name, got {model!r}")
    if not isinstance(max_retries, int) or max_retries < 0:
        raise UsageError(f"max_retries must be a non-negative int, got {max_retries!r}")
    if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
        raise UsageError(
            f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
        )


# LangChain constructor options that are no request fields: sent, a server would refuse them.
_NOT_HERE = {
    "openai_proxy": "pass http_client=httpx.AsyncClient(proxy=...)",
    "callbacks": "a model call made alone reports to no handler: read its stream",
    "callback_manager": "a model call made alone reports to no handler: read its stream",
    "cache": "rxagent does not cache replies",
    "output_version": "rxagent's messages keep the provider's content; read "
                      "message.content_blocks for the standard blocks",
    "configurable_fields": "configurable models are made by init_chat_model(configurable_fields="
                           "...), not by a model class",
    "config_prefix": "configurable models are made by init_chat_model(config_prefix=...), not "
                     "by a model class",
}


def _request_params(params: dict[str, Any]) -> dict[str, Any]:
    """The request fields among a model's extra keyword arguments, as LangChain's classes
    take them: ``model_kwargs`` merged in, ``streaming`` dropped (every call streams unless
    ``disable_streaming`` says otherwise), and LangChain options rxagent does not have refused.

    Raises:
        UsageError: such an option, named.
    """
    for name, why in _NOT_HERE.items():
        if name in params:
            raise UsageError(f"{name}= is a LangChain option this model does not take: {why}")
    extra = params.pop("model_kwargs", None) or {}
    if not isinstance(extra, Mapping):
        raise UsageError(f"model_kwargs is a dict of request fields, got {extra!r}")
    params.pop("streaming", None)
    return {**params, **extra}


def _env_secret(name: str) -> SecretStr | None:
    value = os.environ.get(name)
    return SecretStr(value) if value else None
