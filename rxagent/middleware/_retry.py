"""``ModelRetryMiddleware`` and ``ToolRetryMiddleware``: try a failed model or tool call again,
after a backoff.

Both wrap the call (``wrap_model_call``, ``wrap_tool_call``) and call its handler again after
a failure that ``retry_on`` accepts, waiting ``initial_delay * backoff_factor**n`` seconds
(capped at ``max_delay``, ±25% jitter) before retry ``n``. Each attempt of a model call streams
its tokens to ``messages`` mode as it comes, the failed one's too, as in LangChain. The wait is
``anyio.sleep`` in the async forms (which the run uses where both exist), and in the sync forms
a wait in the worker thread that the run's cancellation ends (where LangChain's
``time.sleep`` goes on); so cancelling the run during a wait or an attempt stops it there: no
later attempt starts.

Costs: an rxagent tool that raises does not make its handler raise, as a LangChain tool does:
the handler answers with an error ``ToolMessage`` whose ``artifact`` is the exception, and
``ToolRetryMiddleware`` reads the failure from there.
"""

from __future__ import annotations

import random
import threading
import uuid
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import anyio

from .._exceptions import APIStatusError, RunCancelledError, UsageError
from .._interrupts import Command, GraphInterrupt
from .._messages import AIMessage, ToolMessage
from .._scheduler import when_cancelled
from .._tools import BaseTool
from ..chat_models._retry import status_is_retryable
from ._types import AgentMiddleware, ModelRequest, ModelResponse, ToolCallRequest, fails_run

__all__ = [
    "ModelRetryMiddleware",
    "OnFailure",
    "RetryOn",
    "ToolRetryMiddleware",
    "default_retry_on",
]

RetryOn = tuple[type[BaseException], ...] | Callable[[Exception], bool]
"""Which failures are retried: exception types, or ``(exception) -> bool``."""

OnFailure = Literal["error", "continue"] | Callable[[Exception], str]
"""After the last attempt: ``"error"`` re-raises, ``"continue"`` answers with a message saying
what failed, a callable makes that message's text from the exception."""

# Failures that are the run's own control flow, never a call's failure: an interrupt asking a
# human, and the end of a run a sub-agent joined.
CONTROL_FLOW = (GraphInterrupt, RunCancelledError)


def default_retry_on(exc: BaseException) -> bool:
    """Whether another attempt may cure ``exc``: not misuse (a :class:`~rxagent.UsageError`,
    such as a missing API key), not an HTTP error that says the request itself is wrong
    (400, 401, 403, 404, 422...); anything else, as LangChain retries unclassified errors."""
    if not isinstance(exc, Exception) or isinstance(exc, (UsageError, *CONTROL_FLOW)):
        return False
    if isinstance(exc, APIStatusError):
        return status_is_retryable(exc.status_code, {})
    return True


class _Retrying:
    """The arguments both retry middleware share, checked, and what follows from them."""

    max_retries: int
    retry_on: RetryOn
    on_failure: OnFailure
    backoff_factor: float
    initial_delay: float
    max_delay: float
    jitter: bool

    def _configure(self, *, max_retries: int, retry_on: RetryOn, on_failure: OnFailure,
                   backoff_factor: float, initial_delay: float, max_delay: float,
                   jitter: bool) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise UsageError(f"max_retries must be an int >= 0, got {max_retries!r}")
        for name, value in (("initial_delay", initial_delay), ("max_delay", max_delay),
                            ("backoff_factor", backoff_factor)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise UsageError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(retry_on, type):
            # A class is callable, and would be taken for a predicate that is always true.
            raise UsageError(f"retry_on is a tuple of exception types, such as "
                             f"({retry_on.__name__},), or a callable (exception) -> bool; "
                             f"got the class {retry_on.__name__}")
        if not callable(retry_on) and not (
                isinstance(retry_on, tuple) and all(isinstance(t, type)
                                                    and issubclass(t, BaseException)
                                                    for t in retry_on)):
            raise UsageError("retry_on is a tuple of exception types or a callable "
                             f"(exception) -> bool, got {retry_on!r}")
        if not callable(on_failure) and on_failure not in ("error", "continue"):
            raise UsageError("on_failure is 'error', 'continue' or a callable (exception) -> "
                             f"str, got {on_failure!r}")
        self.max_retries = max_retries
        self.retry_on = retry_on
        self.on_failure = on_failure
        self.backoff_factor = backoff_factor
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.jitter = jitter

    def _retries(self, exc: Exception) -> bool:
        if isinstance(exc, CONTROL_FLOW):
            return False
        if isinstance(self.retry_on, tuple):
            return isinstance(exc, self.retry_on)
        return bool(self.retry_on(exc))

    def _delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0 for the first)."""
        delay = self.initial_delay if self.backoff_factor == 0 else \
            self.initial_delay * self.backoff_factor ** retry
        delay = min(delay, self.max_delay)
        if self.jitter and delay > 0:
            delay = max(0.0, delay + random.uniform(-delay / 4, delay / 4))
        return delay

    def _failure_text(self, exc: Exception, default: str) -> str | None:
        """The failure message's text, or ``None`` when ``on_failure`` says to raise."""
        if self.on_failure == "error":
            return None
        if callable(self.on_failure):
            return str(self.on_failure(exc))
        return default


def wait_unless_cancelled(seconds: float) -> bool:
    """The sync forms' wait before a retry: ``False`` if the run this sync wrapper runs in
    (in a worker thread) is cancelled before or during it, and then no attempt may start."""
    # TODO(core): a sync wrapper's handler, called once its run is cancelled, starts the call
    # before the cancellation reaches it; so the wrapper asks first.
    woken = threading.Event()
    withdraw = when_cancelled(woken.set)
    try:
        if seconds > 0:
            woken.wait(seconds)
        return not woken.is_set()
    finally:
        withdraw()


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def _described(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class ModelRetryMiddleware(_Retrying, AgentMiddleware[Any, Any]):
    """Try a failed model call again, after a backoff.

    Args:
        max_retries: attempts after the first (``>= 0``).
        retry_on: the failures to retry: exception types, or ``(exception) -> bool``. By
            default, everything but misuse (a ``UsageError``) and HTTP errors that say
            the request is wrong. A failure it refuses is raised at once.
        on_failure: after the last attempt, ``"continue"`` (the default) makes the reply an
            AI message saying what failed and the run goes on; ``"error"`` raises the
            failure; a callable ``(exception) -> str`` gives the message's text.
        backoff_factor: the wait before retry ``n`` is ``initial_delay * backoff_factor**n``
            seconds (``0``: always ``initial_delay``).
        initial_delay: the first wait, in seconds.
        max_delay: the longest wait, in seconds.
        jitter: vary each wait by up to ±25%.

    Raises:
        UsageError: a negative count or delay, or a ``retry_on``/``on_failure`` of another kind.
    """

    def __init__(self, *, max_retries: int = 2, retry_on: RetryOn = default_retry_on,
                 on_failure: OnFailure = "continue", backoff_factor: float = 2.0,
                 initial_delay: float = 1.0, max_delay: float = 60.0,
                 jitter: bool = True) -> None:
        self._configure(max_retries=max_retries, retry_on=retry_on, on_failure=on_failure,
                        backoff_factor=backoff_factor, initial_delay=initial_delay,
                        max_delay=max_delay, jitter=jitter)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse],
    ) -> ModelResponse | AIMessage:
        """Call ``handler`` until it succeeds, or the failure is not retried, or attempts run
        out."""
        for attempt in range(self.max_retries + 1):
            try:
                return handler(request)
            except Exception as exc:
                if not self._retries(exc):
                    raise
                if attempt == self.max_retries:
                    return self._failed(exc, attempt + 1)
                failure = exc
            if not wait_unless_cancelled(self._delay(attempt)):
                raise failure  # the run was cancelled: what this returns is dropped anyway
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse]],
    ) -> ModelResponse | AIMessage:
        """As :meth:`wrap_model_call`; the wait is ``anyio.sleep``, which a cancelled run
        stops."""
        for attempt in range(self.max_retries + 1):
            try:
                return await handler(request)
            except Exception as exc:
                if not self._retries(exc):
                    raise
                if attempt == self.max_retries:
                    return self._failed(exc, attempt + 1)
            delay = self._delay(attempt)
            if delay > 0:
                await anyio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _failed(self, exc: Exception, attempts: int) -> ModelResponse:
        """The last attempt failed: raise ``exc``, or the reply that says it happened."""
        text = self._failure_text(
            exc, f"Model call failed after {_attempts(attempts)} with {_described(exc)}")
        if text is None:
            raise exc
        # TODO(core): a model step's reply without an id gets one only on a thread; LangGraph
        # gives every message a node writes one (its reducer sets it), so we do it here.
        return ModelResponse(result=[AIMessage(content=text, id=str(uuid.uuid4()))])

    def __repr__(self) -> str:
        return f"ModelRetryMiddleware(max_retries={self.max_retries!r})"


class ToolRetryMiddleware(_Retrying, AgentMiddleware[Any, Any]):
    """Try a failed tool call again, after a backoff.

    A tool call fails when its tool raises (in rxagent the handler then answers with an error
    ``ToolMessage`` whose ``artifact`` is the exception) or when the handler raises. Arguments
    that do not fit the tool's schema are not a failure to retry: the model is told, as
    without this middleware.

    Args:
        max_retries: attempts after the first (``>= 0``).
        tools: the tools (objects or names) to retry; ``None`` for every tool.
        retry_on: the failures to retry: exception types, or ``(exception) -> bool``
            (by default, as ModelRetryMiddleware). A failure it refuses is answered as
            without this middleware.
        on_failure: after the last attempt, ``"continue"`` (the default) answers the call
            with an error message naming the tool, the attempts and the failure; ``"error"``
            raises the failure, which ends the run; a callable ``(exception) -> str`` gives
            the message's text. (LangChain's older ``"return_message"`` and ``"raise"`` are
            taken, with a ``DeprecationWarning``.)
        backoff_factor, initial_delay, max_delay, jitter: the waits, as
            :class:`ModelRetryMiddleware` has them.

    Raises:
        UsageError: a negative count or delay, a ``retry_on``/``on_failure`` of another kind,
            or ``tools`` that are not tools or names.
    """

    def __init__(self, *, max_retries: int = 2, tools: Sequence[BaseTool | str] | None = None,
                 retry_on: RetryOn = default_retry_on, on_failure: OnFailure = "continue",
                 backoff_factor: float = 2.0, initial_delay: float = 1.0,
                 max_delay: float = 60.0, jitter: bool = True) -> None:
        renamed = {"raise": "error", "return_message": "continue"}
        if isinstance(on_failure, str) and on_failure in renamed:
            warnings.warn(f"on_failure={on_failure!r} is deprecated; use "
                          f"on_failure={renamed[on_failure]!r}", DeprecationWarning,
                          stacklevel=2)
            on_failure = renamed[on_failure]  # type: ignore[assignment]
        self._configure(max_retries=max_retries, retry_on=retry_on, on_failure=on_failure,
                        backoff_factor=backoff_factor, initial_delay=initial_delay,
                        max_delay=max_delay, jitter=jitter)
        self._only: frozenset[str] | None = None
        if tools is not None:
            if isinstance(tools, (str, BaseTool)) or not all(
                    isinstance(t, (str, BaseTool)) for t in tools):
                raise UsageError(f"tools is a list of tools or tool names, got {tools!r}")
            self._only = frozenset(t if isinstance(t, str) else t.name for t in tools)

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command],
    ) -> ToolMessage | Command:
        """Call ``handler`` until the tool succeeds, or the failure is not retried, or
        attempts run out."""
        if not self._covers(request):
            return handler(request)
        for attempt in range(self.max_retries + 1):
            try:
                return handler(request)
            except Exception as exc:
                if not self._retries(exc):
                    raise
                if attempt == self.max_retries:
                    return self._failed(request, exc, attempt + 1)
                failure = exc
            if not wait_unless_cancelled(self._delay(attempt)):
                raise failure  # the run was cancelled: what this returns is dropped anyway
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command]],
    ) -> ToolMessage | Command:
        """As :meth:`wrap_tool_call`; the wait is ``anyio.sleep``, which a cancelled run
        stops."""
        if not self._covers(request):
            return await handler(request)
        for attempt in range(self.max_retries + 1):
            try:
                return await handler(request)
            except Exception as exc:
                if not self._retries(exc):
                    raise
                if attempt == self.max_retries:
                    return self._failed(request, exc, attempt + 1)
            delay = self._delay(attempt)
            if delay > 0:
                await anyio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _name(self, request: ToolCallRequest) -> str:
        return request.tool.name if request.tool is not None else request.tool_call["name"]

    def _covers(self, request: ToolCallRequest) -> bool:
        return self._only is None or self._name(request) in self._only

    def _failed(self, request: ToolCallRequest, exc: Exception, attempts: int) -> ToolMessage:
        """The last attempt failed: raise ``exc``, or the answer that says it happened."""
        name = self._name(request)
        text = self._failure_text(
            exc, f"Tool '{name}' failed after {_attempts(attempts)} with {_described(exc)}. "
                 "Please try again.")
        if text is None:
            raise fails_run(exc)
        return ToolMessage(content=text, tool_call_id=request.tool_call["id"] or "", name=name,
                           status="error", artifact=exc)

    def __repr__(self) -> str:
        only = None if self._only is None else sorted(self._only)
        return f"ToolRetryMiddleware(max_retries={self.max_retries!r}, tools={only!r})"


