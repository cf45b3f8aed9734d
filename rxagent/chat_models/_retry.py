"""Which failures another attempt may cure, and how long to wait before it; no I/O.

A call is retried only while nothing of its reply has been delivered (the retry loop in
:mod:`._http` decides that); this module only judges the failure itself:

- HTTP 408, 409, 429 and 5xx (Anthropic's 529 too) are worth a retry, unless the server says
  ``x-should-retry: false``; ``x-should-retry: true`` makes any status worth one;
- an error sent inside a stream after HTTP 200 is worth one when it is one of those statuses in
  another form (Anthropic's ``overloaded_error``, OpenAI's ``server_error``, a proxy's code);
- the wait is the server's ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date) when
  it sends one, else exponential backoff with jitter (:class:`RetryPolicy`). A server that
  asks for more than ``max_retry_after`` is not retried at all.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_RETRY",
    "RetryPolicy",
    "is_transient_error",
    "retry_after",
    "retry_delay",
    "status_is_retryable",
]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait between the attempts at a call that failed before its first token.

    The wait before retry number ``n`` (0 for the first) is ``initial * 2**n`` seconds, capped
    at ``maximum``, minus up to ``jitter`` of it at random, so that many clients do not retry
    in step. A ``retry-after`` the server sends wins when it is at most ``max_retry_after``;
    past that the call fails at once rather than wait that long. How many retries there are is
    the model's ``max_retries``.

    Example::

        model = ChatOpenAI("gpt-4o-mini", max_retries=5)
        model.retry_policy = RetryPolicy(initial=1.0, maximum=30.0)

    Attributes:
        initial: the first wait, in seconds.
        maximum: the longest wait our own backoff makes, in seconds.
        jitter: the largest fraction of a wait taken off at random (0 for none).
        max_retry_after: the longest ``retry-after`` honoured, in seconds.
    """

    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry number ``attempt`` (0 for the first) when the server named
        none: exponential, capped, with jitter.

        Args:
            attempt: how many retries came before this one.
            rng: a source of numbers in ``[0, 1)`` (tests pass a fixed one).
        """
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
    told = retry_after(headers, now)
    if told is not None:
        return told if told <= policy.max_retry_after else None
    return policy.backoff(attempt, rng)


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """The wait the server asks for, in seconds (never negative), or ``None`` if it names none
    that can be read."""
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return max(milliseconds / 1000.0, 0.0)
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _number(value)
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now()
    return max(seconds, 0.0)


def _number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def status_is_retryable(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an HTTP error status is worth another attempt (``x-should-retry`` decides
    first, when the server sends it)."""
    should_retry = headers.get("x-should-retry")
    if should_retry == "true":
        return True
    return should_retry != "false" and (status in (408, 409, 429) or status >= 500)


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
