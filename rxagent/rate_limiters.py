"""Rate limiters for model calls, as ``langchain_core.rate_limiters`` has them.

Give one to a chat model, ``init_chat_model("gpt-5.5", rate_limiter=limiter)`` (or any model
class): each call then waits for a token before its request goes out, once per call however
many retries it makes. One limiter may be shared by several models, threads and event loops
(asyncio or trio). A limiter written for LangChain (a ``BaseRateLimiter`` of
``langchain_core``) works too: rxagent asks it with ``acquire(blocking=False)`` and waits
between tries, so that it never blocks the event loop.

Example::

    limiter = InMemoryRateLimiter(requests_per_second=0.1, max_bucket_size=10)
    model = init_chat_model("gpt-5.5", rate_limiter=limiter)
"""

from __future__ import annotations

import abc
import threading
import time

import anyio

from ._exceptions import UsageError

__all__ = ["BaseRateLimiter", "InMemoryRateLimiter"]


class BaseRateLimiter(abc.ABC):
    """What a model asks before each call."""

    @abc.abstractmethod
    def acquire(self, *, blocking: bool = True) -> bool:
        """Take a token: wait for one if ``blocking``, else say at once whether one was
        free."""

    @abc.abstractmethod
    async def aacquire(self, *, blocking: bool = True) -> bool:
        """:meth:`acquire` for async code, waiting without blocking the event loop."""


class InMemoryRateLimiter(BaseRateLimiter):
    """A token bucket in this process: ``requests_per_second`` tokens a second, at most
    ``max_bucket_size`` saved up (the largest burst); a call takes one.

    The bucket starts empty, so the first call waits ``1 / requests_per_second`` seconds, as
    LangChain's does. Unlike LangChain's, which looks every ``check_every_n_seconds`` whether a
    token is free, a waiting call sleeps until the moment its token is due; the argument is
    taken so that LangChain code runs unchanged, and bounds how long one sleep lasts. Thread
    safe, and usable from asyncio and trio.

    Args:
        requests_per_second: the rate, above 0.
        check_every_n_seconds: the longest single sleep of a waiting call.
        max_bucket_size: the most tokens saved up while no call is made, at least 1.
    """

    def __init__(
        self,
        *,
        requests_per_second: float = 1,
        check_every_n_seconds: float = 0.1,
        max_bucket_size: float = 1,
    ) -> None:
        for name, value in (("requests_per_second", requests_per_second),
                            ("check_every_n_seconds", check_every_n_seconds)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise UsageError(f"{name} is a number above 0, got {value!r}")
        if (isinstance(max_bucket_size, bool) or not isinstance(max_bucket_size, int | float)
                or max_bucket_size < 1):
            raise UsageError(f"max_bucket_size is a number of at least 1, got "
                             f"{max_bucket_size!r}")
        self.requests_per_second = float(requests_per_second)
        self.check_every_n_seconds = float(check_every_n_seconds)
        self.max_bucket_size = float(max_bucket_size)
        self.available_tokens = 0.0
        self._last: float | None = None  # when the bucket was last filled
        self._lock = threading.Lock()
        self._clock = time.monotonic  # (tests give a clock of their own)

    def _take(self) -> float:
        """Take a token if one is free: 0.0; else how long until one is, in seconds."""
        with self._lock:
            now = self._clock()
            if self._last is None:
                self._last = now
            self.available_tokens = min(
                self.max_bucket_size,
                self.available_tokens + (now - self._last) * self.requests_per_second,
            )
            self._last = now
            # (A token due after a sleep of exactly its wait may come out a rounding error
            # short: counted as whole, else the next sleep could be too short to move a clock.)
            if self.available_tokens >= 1 - 1e-9:
                self.available_tokens = max(0.0, self.available_tokens - 1)
                return 0.0
            return (1 - self.available_tokens) / self.requests_per_second

    def _sleep_for(self, due: float) -> float:
        return min(due, self.check_every_n_seconds)

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take a token, sleeping this thread until one is due if ``blocking``."""
        while (due := self._take()) > 0:
            if not blocking:
                return False
            time.sleep(self._sleep_for(due))
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """Take a token, sleeping this task (not the loop) until one is due if ``blocking``."""
        while (due := self._take()) > 0:
            if not blocking:
                return False
            await anyio.sleep(self._sleep_for(due))
        return True

    def __repr__(self) -> str:
        return (f"InMemoryRateLimiter(requests_per_second={self.requests_per_second}, "
                f"max_bucket_size={self.max_bucket_size})")
