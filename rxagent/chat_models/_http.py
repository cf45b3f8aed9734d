"""What every HTTP chat model shares: keys, clients, retries, timeouts, errors, the read loop.

A provider module only knows its wire format: how to build the request body
(:class:`StreamRequest`) and how to turn server-sent events into chunks (a
:class:`WireParser`). :func:`stream_reply` does the rest, the same way for every provider:

- POST the request and read the event stream with ``aiter_bytes()``, checking the consumer's
  demand before every read, so a slow consumer stops the socket reads themselves;
- ``async with client.stream(...)``, so cancellation (the subscriber disposing) closes the
  response and hands the connection back;
- retry 408, 409, 429, 5xx (Anthropic's 529 too), connection failures and error events that
  mean the same after HTTP 200 (Anthropic's ``overloaded_error``, OpenAI's ``server_error``)
  with exponential backoff and jitter, honouring ``retry-after-ms`` / ``retry-after`` (seconds
  or an HTTP date), but only while nothing has been delivered: after the first chunk a failure
  ends the call, carrying the merged chunks so far as ``partial``;
- a first-token deadline (nothing delivered yet) and an idle deadline (the gap between two
  delivered chunks; its :class:`ModelCallIdleTimeoutError` carries ``partial`` too); time
  spent waiting for the consumer's demand does not count;
- HTTP errors carry the status, the provider's message and the request id; the API key is
  scrubbed from every message (error events included) and never logged.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import math
import os
import random
import ssl
import threading
import time
import uuid
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

import anyio
import httpx
from pydantic import SecretStr

from .._demand import Demand
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    FirstTokenTimeoutError,
    MissingAPIKeyError,
    ModelCallError,
    ModelCallIdleTimeoutError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    UsageError,
)
from .._messages import AIMessageChunk, BaseMessage, ChunkAccumulator
from ._base import BaseChatModel, DisableStreaming, ToolSpec
from ._sse import ServerSentEvent, SSEDecoder

__all__ = [
    "DEFAULT_TIMEOUTS",
    "HTTPChatModel",
    "RetryPolicy",
    "StreamRequest",
    "Timeouts",
    "WireParser",
    "error_message",
    "is_transient_error",
    "retry_delay",
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
class RetryPolicy:
    """Backoff between attempts: ``initial * 2**attempt`` capped at ``maximum``, minus up to
    ``jitter`` of it at random; a ``retry-after`` the server sends wins when it is at most
    ``max_retry_after`` (past that the call fails at once rather than wait that long)."""

    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry number ``attempt`` (0 for the first) when the server named
        none: exponential, capped, with jitter so that many clients do not retry in step."""
        return min(self.initial * 2.0**attempt, self.maximum) * (1.0 - self.jitter * rng())


DEFAULT_RETRY = RetryPolicy()


def retry_delay(
    headers: Mapping[str, str],
    attempt: int,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    rng: Callable[[], float] = random.random,
    now: Callable[[], float] = time.time,
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (0 for the first); ``None``: don't.

    ``retry-after-ms`` wins over ``retry-after``, which may be seconds or an HTTP date.
    Without either (or with one that cannot be read), exponential backoff with jitter.
    """
    told = _retry_after(headers, now)
    if told is not None:
        return told if told <= policy.max_retry_after else None
    return policy.backoff(attempt, rng)


def _retry_after(headers: Mapping[str, str], now: Callable[[], float]) -> float | None:
    value = headers.get("retry-after-ms")
    if value:
        try:
            seconds = float(value) / 1000.0
        except ValueError:
            pass
        else:
            if math.isfinite(seconds):
                return max(seconds, 0.0)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """One streaming POST: where, with which headers (the key among them), and the JSON body."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]

    def __repr__(self) -> str:  # the headers hold the key
        return f"StreamRequest(url={self.url!r})"


class WireParser(Protocol):
    """Turns one reply's server-sent events into chunks; no I/O. A fresh one per attempt."""

    @property
    def finished(self) -> bool:
        """Whether the stream's end marker came (``[DONE]``, ``message_stop``)."""
        ...

    @property
    def transient_error(self) -> bool:
        """Whether the error event :meth:`on_event` raised for says the server is overloaded
        or failed inside (worth another attempt while nothing has been delivered)."""
        ...

    def on_event(self, event: ServerSentEvent) -> AIMessageChunk | None:
        """The chunk an event makes, if any. Raises StreamProtocolError on an error event."""
        ...

    def last_chunk(self) -> AIMessageChunk:
        """The reply's closing chunk (finish reason, usage), when the stream is over.

        Raises APIConnectionError when the stream stopped before the reply was complete.
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
        self.delay = delay


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
    emit: Callable[[AIMessageChunk], None],
    demand: Demand,
    settings: _CallSettings,
) -> None:
    """Make one streaming call, retrying while nothing has been delivered; see the module doc.

    With ``client=None`` a client is created for the call and closed after it.
    """
    delivered = ChunkAccumulator()

    def deliver(chunk: AIMessageChunk) -> None:
        delivered.add(chunk)
        emit(chunk)

    content = json.dumps(request.body, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        async with _client_for_call(client, settings.timeouts) as http:
            attempt = 0
            while True:
                try:
                    await _attempt(http, request, content, new_parser(), deliver, demand, settings)
                    return
                except _Retry as retry:
                    delay = retry.delay
                    if delay is None:
                        # No retry-after to honour (only _raise_status reads one).
                        delay = settings.policy.backoff(attempt)
                    if attempt >= settings.max_retries:
                        raise retry.error from retry.__cause__
                    attempt += 1
                    logger.info(
                        "%s call failed before the first token (%s); retry %d of %d in %.3f s",
                        settings.label, retry.error, attempt, settings.max_retries, delay,
                    )
                    await anyio.sleep(delay)
    except ModelCallError as error:
        if error.partial is None and not delivered.empty:
            error.partial = delivered.snapshot()
        raise


@contextlib.asynccontextmanager
async def _client_for_call(
    client: httpx.AsyncClient | None, timeouts: Timeouts
) -> AsyncIterator[httpx.AsyncClient]:
    if client is not None:
        yield client
        return
    # A client of our own lives for one call: a pooled one would outlive the event loop
    # that made it (each sync invoke() runs on a fresh loop) and leak its sockets. Pass
    # http_client= to keep connections alive across calls.
    async with httpx.AsyncClient(
        verify=_shared_ssl_context(), timeout=_httpx_timeout(timeouts)
    ) as owned:
        yield owned


def _httpx_timeout(timeouts: Timeouts) -> httpx.Timeout:
    # Reads are bounded by our own first-token and idle deadlines, which know what a token is.
    return httpx.Timeout(connect=timeouts.connect, read=None, write=timeouts.connect, pool=None)


def _deadline(seconds: float | None) -> float:
    return math.inf if seconds is None else anyio.current_time() + seconds


async def _attempt(
    client: httpx.AsyncClient,
    request: StreamRequest,
    content: bytes,
    parser: WireParser,
    deliver: Callable[[AIMessageChunk], None],
    demand: Demand,
    settings: _CallSettings,
) -> None:
    first_token = settings.timeouts.first_token
    idle = settings.timeouts.idle
    got_any = False  # whether this attempt delivered a chunk (then no retry)
    scope = anyio.CancelScope(deadline=_deadline(first_token))
    with scope:
        try:
            async with client.stream(
                "POST",
                request.url,
                content=content,
                headers=request.headers,
                timeout=_httpx_timeout(settings.timeouts),
            ) as response:
                if not response.is_success:
                    await response.aread()
                    _raise_status(response, settings)
                if response.headers.get("content-type", "").startswith("application/json"):
                    await response.aread()
                    raise StreamProtocolError(
                        f"{settings.label} answered with JSON instead of an event stream: "
                        + _scrub(error_message(response.text), settings.secret)
                    )
                body = _Body(response)
                try:
                    decoder = SSEDecoder()
                    on_event = parser.on_event
                    while True:
                        if not demand.ready:
                            # The consumer is full: stop reading, and stop the clock with it.
                            scope.deadline = math.inf
                            await demand.wait()
                            scope.deadline = _deadline(idle if got_any else first_token)
                        data = await body.read()
                        events = decoder.flush() if data is None else decoder.feed(data)
                        produced = False
                        for event in events:
                            chunk = on_event(event)
                            if chunk is not None:
                                deliver(chunk)
                                # Set at once: an error event later in this same read must
                                # not be retried, or what went out would go out twice.
                                got_any = produced = True
                            if parser.finished:
                                break
                        if produced:
                            scope.deadline = _deadline(idle)
                        if parser.finished or data is None:
                            break
                    deliver(parser.last_chunk())
                    if not body.exhausted:
                        # Read the body to its end so that the connection can be reused; the
                        # reply is complete, so nothing that goes wrong here is a failure.
                        scope.deadline = math.inf
                        with anyio.move_on_after(_DRAIN_SECONDS), contextlib.suppress(
                            httpx.HTTPError
                        ):
                            while await body.read() is not None:
                                pass
                finally:
                    await body.abandon()
        except httpx.HTTPError as exc:
            error = APIConnectionError(
                _scrub(f"{settings.label}: {_describe_transport_error(exc)}", settings.secret)
                + ("" if got_any else " before the reply started")
            )
            if got_any:
                raise error from exc
            raise _Retry(error, None) from exc
        except APIConnectionError as error:
            # The stream ended early without a transport error (a close-delimited body).
            if got_any:
                raise
            raise _Retry(error, None) from None
        except StreamProtocolError as error:
            # An error event can quote the request, key included (an "invalid key" message).
            if settings.secret and settings.secret in str(error):
                error.args = (_scrub(str(error), settings.secret),)
            if not got_any and parser.transient_error:
                # Anthropic's overloaded_error after HTTP 200 is its 529 in stream form.
                raise _Retry(error, None) from None
            raise
    if scope.cancelled_caught:
        if got_any:
            raise ModelCallIdleTimeoutError(
                f"{settings.label} sent nothing for {idle} s after the last chunk (idle timeout)"
            )
        raise FirstTokenTimeoutError(
            f"{settings.label} sent no reply within {first_token} s (first-token timeout)"
        )


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


def _describe_transport_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        what = "timed out connecting"
    elif isinstance(exc, httpx.ConnectError):
        what = "could not connect"
    elif isinstance(exc, httpx.TimeoutException):
        what = "timed out"
    elif isinstance(exc, httpx.RemoteProtocolError):
        what = "the connection broke"
    else:
        what = "the connection failed"
    detail = str(exc)
    url = exc.request.url if _has_request(exc) else None
    where = f" to {url.copy_with(query=None)}" if url is not None else ""
    return f"{what}{where}" + (f" ({detail})" if detail else "")


def _has_request(exc: httpx.HTTPError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the error has no request
    except RuntimeError:
        return False
    return True


def error_message(text: str) -> str:
    """The provider's message in an error body (OpenAI's or Anthropic's shape), else the text."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:2000]
    return _message_of(payload) or text.strip()[:2000]


# Error types (and codes) in a stream that are a 429, a 5xx or a 529 in another form: Anthropic's
# overloaded_error, api_error and rate_limit_error, OpenAI's server_error, a proxy's HTTP code.
_TRANSIENT_ERRORS = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "server_error", "rate_limit_exceeded"}
)


def is_transient_error(payload: Any) -> bool:
    """Whether an error object sent inside a stream (OpenAI's or Anthropic's shape) says the
    server was overloaded, rate-limited or failed inside, so that another attempt may succeed."""
    if not isinstance(payload, dict):
        return False
    error = payload.get("error", payload)
    if not isinstance(error, dict):
        return False
    kind = error.get("type")
    if isinstance(kind, str) and kind in _TRANSIENT_ERRORS:
        return True
    code = error.get("code")
    if isinstance(code, bool):
        return False
    if isinstance(code, int):
        return code == 429 or code >= 500
    return isinstance(code, str) and code in _TRANSIENT_ERRORS


def _message_of(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    error = payload.get("error", payload)
    if isinstance(error, str):
        return error
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    kind = error.get("type") or error.get("code")
    if isinstance(message, str):
        return f"{kind}: {message}" if isinstance(kind, str) and kind else message
    return None


def _scrub(text: str, secret: str | None) -> str:
    if secret and secret in text:
        return text.replace(secret, "***")
    return text


def _raise_status(response: httpx.Response, settings: _CallSettings) -> NoReturn:
    status = response.status_code
    headers = response.headers
    request_id = headers.get("x-request-id") or headers.get("request-id")
    message = _scrub(error_message(response.text), settings.secret)
    text = f"{settings.label} answered HTTP {status}"
    if message:
        text += f": {message}"
    if request_id:
        text += f" (request id {request_id})"
    if status in (401, 403) and settings.key_hint:
        text += f". Check the API key: {settings.key_hint}"
    kind: type[APIStatusError]
    if status == 429:
        kind = RateLimitError
    elif status >= 500:
        kind = ServerError
    else:
        kind = APIStatusError
    error = kind(text, status_code=status, request_id=request_id, body=message or None)
    should_retry = headers.get("x-should-retry")
    if should_retry == "true" or (
        should_retry != "false" and (status in (408, 409, 429) or status >= 500)
    ):
        delay = _retry_after(headers, time.time)
        if delay is None or delay <= settings.policy.max_retry_after:
            raise _Retry(error, delay)
    raise error


# -- the base of the HTTP models ----------------------------------------------------------------


class HTTPChatModel(BaseChatModel):
    """A chat model behind an HTTP streaming API; subclasses speak one wire format.

    The API key is read when the model is made (argument, then environment) and once more at
    call time if it was missing then, so that making a model (or an agent from a model
    string) never needs a key or the network; a call without one fails with
    :class:`~rxagent.MissingAPIKeyError`.
    """

    retry_policy: RetryPolicy = DEFAULT_RETRY
    """The backoff between retries (set it on a model, or a subclass, to tune it)."""

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
        **params: Any,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise UsageError(f"model must be a non-empty model name, got {model!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise UsageError(f"max_retries must be a non-negative int, got {max_retries!r}")
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise UsageError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
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
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})
        self.params: dict[str, Any] = params

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
        """The HTTP request of one call (body in the provider's format)."""

    @abstractmethod
    def _parser(self, message_id: str) -> WireParser:
        """A parser for one attempt at the reply; its chunks carry ``message_id``."""

    async def _produce(
        self,
        messages: list[BaseMessage],
        tools: list[ToolSpec],
        emit: Callable[[AIMessageChunk], None],
        demand: Demand,
        **kwargs: Any,
    ) -> None:
        api_key = self._key()
        request = self._request(messages, tools, api_key, kwargs)
        message_id = f"lc_run--{uuid.uuid4()}"
        await stream_reply(
            client=self.http_client,
            request=request,
            new_parser=lambda: self._parser(message_id),
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
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_name={self.model_name!r}, base_url={self.base_url!r})"


def _env_secret(name: str) -> SecretStr | None:
    value = os.environ.get(name)
    return SecretStr(value) if value else None
