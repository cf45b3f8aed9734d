"""How a chat model waits for its rate limiter (see :mod:`rxagent.rate_limiters`)."""

from __future__ import annotations

from typing import Any

import anyio

from .._exceptions import UsageError
from ..rate_limiters import BaseRateLimiter

__all__ = ["check_rate_limiter", "wait_for_token"]


async def wait_for_token(limiter: Any) -> None:
    """Wait, without blocking the event loop, until ``limiter`` lets a call go out.

    Ours (and any :class:`BaseRateLimiter` subclass) is awaited. A limiter of another library,
    LangChain's say, whose ``aacquire`` may sleep with asyncio only, is asked without blocking
    and the wait between tries is ours, so that it works under trio too.
    """
    if isinstance(limiter, BaseRateLimiter):
        await limiter.aacquire(blocking=True)
        return
    pause = float(getattr(limiter, "check_every_n_seconds", 0.1))
    while not limiter.acquire(blocking=False):
        await anyio.sleep(pause)


def check_rate_limiter(limiter: Any) -> None:
    """Refuse what cannot limit calls, when the model is made rather than at its first call.

    Raises:
        UsageError: ``limiter`` has no ``acquire(blocking=...)``.
    """
    if limiter is not None and not callable(getattr(limiter, "acquire", None)):
        raise UsageError(
            "rate_limiter is a rate limiter (rxagent.rate_limiters.InMemoryRateLimiter, or "
            f"one with acquire(blocking=...)), got {type(limiter).__name__}"
        )
