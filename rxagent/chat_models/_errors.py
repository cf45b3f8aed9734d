"""Failures of a call in words; no I/O.

The exception for an HTTP error status (with the status, the provider's message and the request
id) or for a broken connection, the provider's message read from an error body (OpenAI's and
Anthropic's shapes, and a plain string), and the API key scrubbed from an exception, which
:mod:`._http` applies to every failure before anyone sees it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    ModelCallError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
)

__all__ = [
    "WRONG_SHAPE",
    "connection_error",
    "error_message",
    "expect_str",
    "scrub_error",
    "status_error",
    "wire_failure",
    "wrong_shape",
]

WRONG_SHAPE = (AttributeError, TypeError, KeyError, IndexError, ValueError, ArithmeticError)
"""What reading a JSON value of the wrong shape raises: ``"oops".get``, ``7[0]``,
``int("many")``, ``int(1e999)``... A wire parser catches these once, around its handling of an
event, and raises :func:`wrong_shape` instead, rather than checking every field it reads."""


def error_message(text: str) -> str:
    """The provider's message in an error body (OpenAI's or Anthropic's shape, or
    ``{"error": "..."}``), else the text itself, stripped and cut at 2000 characters."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:2000]
    return _message_of(payload) or text.strip()[:2000]


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


def wrong_shape(
    label: str, data: str, exc: BaseException, *, what: str = "an event"
) -> StreamProtocolError:
    """The error for a well-formed JSON event whose shape is not the wire format's (``exc``,
    one of :data:`WRONG_SHAPE`, is what reading it raised)."""
    return StreamProtocolError(
        f"{label} sent {what} of the wrong shape ({type(exc).__name__}: {exc}): {data[:200]!r}"
    )


def expect_str(value: Any, what: str) -> str:
    """``value`` if it is a string, else a :class:`TypeError` (which the parser turns into
    :func:`wrong_shape`): for fields that go into a chunk without being used on the way."""
    if type(value) is not str:
        raise TypeError(f"{what} is a {type(value).__name__}, not a string")
    return value


def status_error(response: httpx.Response, label: str, key_hint: str | None) -> APIStatusError:
    """The error for a response with an HTTP error status (its body read already)."""
    status = response.status_code
    headers = response.headers
    request_id = headers.get("x-request-id") or headers.get("request-id")
    message = error_message(response.text)
    text = f"{label} answered HTTP {status}"
    if message:
        text += f": {message}"
    if request_id:
        text += f" (request id {request_id})"
    if status in (401, 403) and key_hint:
        text += f". Check the API key: {key_hint}"
    kind = RateLimitError if status == 429 else ServerError if status >= 500 else APIStatusError
    return kind(text, status_code=status, request_id=request_id, body=message or None)


def connection_error(exc: httpx.HTTPError, label: str, *, started: bool) -> APIConnectionError:
    """The error for a transport failure; ``started``: whether the reply had begun."""
    return APIConnectionError(
        f"{label}: {_describe(exc)}" + ("" if started else " before the reply started")
    )


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.PoolTimeout):
        what = "timed out waiting for a free connection in the HTTP client's pool"
    elif isinstance(exc, httpx.ConnectTimeout):
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


def scrub_error(error: ModelCallError, secret: str | None) -> None:
    """Replace ``secret`` with ``***`` in the error's message (and an HTTP error's body).

    Servers quote requests back, key included ("invalid key sk-..."), in error bodies and in
    error events alike.
    """
    if not secret:
        return
    if any(isinstance(arg, str) and secret in arg for arg in error.args):
        error.args = tuple(
            arg.replace(secret, "***") if isinstance(arg, str) else arg for arg in error.args
        )
    if isinstance(error, APIStatusError) and error.body and secret in error.body:
        error.body = error.body.replace(secret, "***")


def wire_failure(label: str, exc: Exception) -> StreamProtocolError:
    """What a decoder or parser (a third party's, say) that failed with an exception from
    outside the tree fails the call with; it keeps the partial reply like any other."""
    return StreamProtocolError(
        f"{label} stream could not be read: the decoder or parser failed with "
        f"{type(exc).__name__}: {exc}"
    )
