"""The soak's consumers: every way a user reads a model call or an agent run, and leaves it.

Each consumer gets a :class:`Seen`, makes its own model (and agent) with :func:`make_model`,
reads, and writes down what it saw: the text of every chunk in order (per message id, for the
partial-reply check), whether the reply completed, the error that reached it, and when it left
(broke out, exited an ``async with``, cancelled, disposed, or got an error). It never decides
whether that was right: :mod:`bench._soak_checks` does.

Async consumers run on the soak's asyncio loop (:data:`ASYNC`); the others in a plain thread
of their own (:data:`THREADED`): sync iteration, subscriptions disposed from a thread, and trio
(a ``trio.run`` in the thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import trio
from _soak_plan import MAX_RETRIES, RunPlan
from _soak_wire import OPENAI, TOOL_NAME

import rxagent
from rxagent.chat_models import ChatAnthropic, ChatOpenAI, HTTPChatModel, RetryPolicy, Timeouts
from rxagent.messages import AIMessageChunk

# Short enough that a stall costs the soak little, long enough that the pauses (at most
# 80 ms) and a 10 MB line on a loaded 2-core machine stay well inside them.
TIMEOUTS = Timeouts(connect=5.0, first_token=1.0, idle=1.0)
# Tiny backoff, so that retries without a retry-after cost the soak nothing.
RETRY = RetryPolicy(initial=0.005, maximum=0.02)


@dataclass(frozen=True)
class ErrorInfo:
    """What the checks need of an error that reached a consumer, taken when it arrives.

    The exception itself is not kept: its traceback holds the consumer's frames, whose locals
    hold the :class:`Seen` that would hold it, a reference cycle that would make the soak's
    own garbage look like the library's (the soak counts what only the garbage collector
    frees).
    """

    name: str                 # the class name
    qualname: str             # module and class name
    in_tree: bool             # an rxagent.RxAgentError
    model_call: bool          # an rxagent.ModelCallError
    partial_text: str | None  # the text of its partial reply ("" for none), if a ModelCallError
    message: str
    texts: tuple[str, ...]    # str and repr of each link of the cause chain, and the partial's

    @classmethod
    def of(cls, error: BaseException) -> ErrorInfo:
        texts: list[str] = []
        link: BaseException | None = error
        chain: list[BaseException] = []
        while link is not None and link not in chain and len(chain) < 20:
            chain.append(link)
            texts += [str(link), repr(link), repr(getattr(link, "partial", None))]
            link = link.__cause__ or link.__context__
        model_call = isinstance(error, rxagent.ModelCallError)
        partial = getattr(error, "partial", None) if model_call else None
        return cls(
            name=type(error).__name__,
            qualname=f"{type(error).__module__}.{type(error).__name__}",
            in_tree=isinstance(error, rxagent.RxAgentError),
            model_call=model_call,
            partial_text=(partial.text if partial is not None else "") if model_call else None,
            message=str(error)[:300],
            texts=tuple(texts),
        )


@dataclass
class Seen:
    """What one consumer saw of its run."""

    plan: RunPlan
    url: str
    key: str
    texts: list[str] = field(default_factory=list)      # text of each AI chunk, in order
    by_message: dict[str, list[str]] = field(default_factory=dict)  # text per message id
    last_message: str | None = None
    final_text: str | None = None  # the final answer, for consumers of "updates"
    completed: bool = False
    error: ErrorInfo | None = None
    left_at: float | None = None   # time.monotonic() when the consumer left or got its error
    left_how: str = ""
    finished_at: float | None = None  # the consumer's code had returned (set by the driver)
    models: list[weakref.ref[HTTPChatModel]] = field(default_factory=list)
    reprs: list[str] = field(default_factory=list)  # reprs to scan for the key
    tokens_seen: int = 0
    progress: asyncio.Event | threading.Event | None = None

    def add(self, chunk: Any) -> None:
        """Note an item: an AI chunk's text; anything else is only kept for the key scan."""
        if not isinstance(chunk, AIMessageChunk):
            if len(self.reprs) < 4:
                self.reprs.append(repr(chunk))
            return
        text = chunk.text
        self.texts.append(text)
        ident = chunk.id or ""
        pieces = self.by_message.get(ident)
        if pieces is None:
            pieces = self.by_message[ident] = []
        pieces.append(text)  # joined once, by the checks: += would be quadratic in a long reply
        self.last_message = ident
        self.tokens_seen += text.count(" ")
        if chunk.chunk_position == "last" and len(self.reprs) < 4:
            self.reprs.append(repr(chunk))

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def wants_to_leave(self) -> bool:
        return self.tokens_seen >= self.plan.leave_after

    def leave(self, how: str, at: float | None = None) -> None:
        if self.left_at is None:
            self.left_at = time.monotonic() if at is None else at
            self.left_how = how

    def failed(self, error: BaseException) -> None:
        self.error = ErrorInfo.of(error)
        self.leave("error")


def make_model(seen: Seen) -> HTTPChatModel:
    """A fresh model of the run's wire format, pointed at the soak server."""
    headers = {"x-soak-run": str(seen.plan.index)}
    model: HTTPChatModel
    if seen.plan.wire == OPENAI:
        model = ChatOpenAI("soak", base_url=seen.url + "/v1", api_key=seen.key,
                           timeout=TIMEOUTS, max_retries=MAX_RETRIES, default_headers=headers)
    else:
        model = ChatAnthropic("soak", base_url=seen.url, api_key=seen.key, timeout=TIMEOUTS,
                              max_retries=MAX_RETRIES, default_headers=headers)
    model.retry_policy = RETRY
    seen.reprs.append(repr(model))
    seen.models.append(weakref.ref(model))
    return model


def lookup(q: str) -> str:
    """Look something up (the soak's agents call it)."""
    return f"found {q}"


def make_agent(seen: Seen) -> rxagent.Agent:
    agent = rxagent.create_agent(make_model(seen), [lookup], system_prompt="soak")
    assert agent.tools[0].name == TOOL_NAME
    return agent


def _messages(seen: Seen) -> list[tuple[str, str]]:
    return [("user", f"soak run {seen.plan.index}")]


def _input(seen: Seen) -> dict[str, Any]:
    return {"messages": _messages(seen)}


def _model_stream(seen: Seen) -> Any:
    return make_model(seen).stream(_messages(seen))


def _message_of(item: Any) -> Any:
    # messages mode (v1) gives (chunk, metadata) pairs
    return item[0] if isinstance(item, tuple) else item


def _guard(seen: Seen, body: Callable[[], None]) -> None:
    try:
        body()
    except Exception as error:  # every error is judged by the checks
        seen.failed(error)


async def _aguard(seen: Seen, body: Callable[[], Awaitable[None]]) -> None:
    try:
        await body()
    except Exception as error:  # every error is judged by the checks
        seen.failed(error)


# -- on the soak's loop --------------------------------------------------------------------------


async def fast(seen: Seen) -> None:
    async def body() -> None:
        async for chunk in _model_stream(seen):
            seen.add(chunk)
        seen.completed = True
    await _aguard(seen, body)


async def slow(seen: Seen) -> None:
    async def body() -> None:
        count = 0
        async for chunk in _model_stream(seen):
            seen.add(chunk)
            count += 1
            # Slow for the first chunks only: a slow consumer of 100,000 tokens takes minutes.
            if count < 60 and count % seen.plan.slow_every == 0:
                await anyio.sleep(0.005)
        seen.completed = True
    await _aguard(seen, body)


async def break_(seen: Seen) -> None:
    async def body() -> None:
        async for chunk in _model_stream(seen):
            seen.add(chunk)
            if seen.wants_to_leave():
                seen.leave("break")
                break
        else:
            seen.completed = True
    await _aguard(seen, body)


async def async_with(seen: Seen) -> None:
    async def body() -> None:
        async with rxagent.to_async_iterator(_model_stream(seen)) as chunks:
            async for chunk in chunks:
                seen.add(chunk)
                if seen.wants_to_leave():
                    seen.leave("async_with")
                    break
            else:
                seen.completed = True
    await _aguard(seen, body)


async def cancel_scope(seen: Seen) -> None:
    """Reads to the end inside ``anyio.move_on_after``; the scope may end the reading."""
    delay = 0.005 + (seen.plan.leave_after / 30) * 0.3
    offset = time.monotonic() - anyio.current_time()

    async def body() -> None:
        with anyio.move_on_after(delay) as scope:
            async for chunk in _model_stream(seen):
                seen.add(chunk)
            seen.completed = True
        if scope.cancelled_caught:
            seen.leave("cancel_scope", at=scope.deadline + offset)
    await _aguard(seen, body)


async def _cancel_when_ready(seen: Seen, reader: Callable[[], Awaitable[None]]) -> None:
    seen.progress = progress = asyncio.Event()
    task = asyncio.ensure_future(_aguard(seen, reader))
    while not task.done():
        waiter = asyncio.ensure_future(progress.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        progress.clear()
        if not task.done() and seen.wants_to_leave():
            seen.leave("task_cancel")
            task.cancel()
            break
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def task_cancel(seen: Seen) -> None:
    async def reader() -> None:
        async for chunk in _model_stream(seen):
            seen.add(chunk)
            _poke(seen)
        seen.completed = True
    await _cancel_when_ready(seen, reader)


def _poke(seen: Seen) -> None:
    if seen.progress is not None and seen.wants_to_leave():
        seen.progress.set()


async def observe_loop(seen: Seen) -> None:
    """Subscribes on the loop; disposes on the loop once it has seen enough."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    holder: list[Any] = []

    def on_next(chunk: AIMessageChunk) -> None:
        seen.add(chunk)
        if seen.wants_to_leave() and not done.is_set():
            done.set()

    def on_error(error: Exception) -> None:
        seen.failed(error)
        loop.call_soon(done.set)

    def on_completed() -> None:
        seen.completed = True
        loop.call_soon(done.set)

    try:
        holder.append(_model_stream(seen).subscribe(on_next, on_error, on_completed))
    except Exception as error:
        seen.failed(error)
        return
    await done.wait()
    if not seen.completed and seen.error is None:
        seen.leave("dispose_on_loop")
    holder[0].dispose()


async def agent_messages(seen: Seen) -> None:
    async def body() -> None:
        async for item in make_agent(seen).astream(_input(seen), stream_mode="messages"):
            seen.add(_message_of(item))
        seen.completed = True
    await _aguard(seen, body)


async def agent_break(seen: Seen) -> None:
    async def body() -> None:
        async for item in make_agent(seen).astream(_input(seen), stream_mode="messages"):
            seen.add(_message_of(item))
            if seen.wants_to_leave():
                seen.leave("break")
                break
        else:
            seen.completed = True
    await _aguard(seen, body)


async def agent_task_cancel(seen: Seen) -> None:
    async def reader() -> None:
        async for item in make_agent(seen).astream(_input(seen), stream_mode="messages"):
            seen.add(_message_of(item))
            _poke(seen)
        seen.completed = True
    await _cancel_when_ready(seen, reader)


# -- in a thread of their own --------------------------------------------------------------------


def sync_thread(seen: Seen) -> None:
    def body() -> None:
        for chunk in _model_stream(seen):
            seen.add(chunk)
        seen.completed = True
    _guard(seen, body)


def sync_break(seen: Seen) -> None:
    """Breaks out, half the runs inside ``with`` (closes at once), half with a bare ``for``
    (the iterator is dropped)."""
    def body() -> None:
        if seen.plan.index % 2:
            with rxagent.to_iterator(_model_stream(seen)) as chunks:
                for chunk in chunks:
                    seen.add(chunk)
                    if seen.wants_to_leave():
                        seen.leave("sync_with")
                        break
                else:
                    seen.completed = True
            return
        for chunk in _model_stream(seen):
            seen.add(chunk)
            if seen.wants_to_leave():
                seen.leave("sync_break")
                break
        else:
            seen.completed = True
    _guard(seen, body)


def _observe_from_thread(seen: Seen, source: Any, take: Callable[[Any], Any]) -> None:
    """Subscribes from this plain thread (the work runs on rxagent's background loop) and
    disposes from it once enough arrived."""
    ready = threading.Event()

    def on_next(item: Any) -> None:
        seen.add(take(item))
        if seen.wants_to_leave():
            ready.set()

    def on_error(error: Exception) -> None:
        seen.failed(error)
        ready.set()

    def on_completed() -> None:
        seen.completed = True
        ready.set()

    try:
        subscription = source.subscribe(on_next, on_error, on_completed)
    except Exception as error:
        seen.failed(error)
        return
    ready.wait(60.0)
    if not seen.completed and seen.error is None:
        seen.leave("dispose_from_thread")
    subscription.dispose()


def observe_thread(seen: Seen) -> None:
    _observe_from_thread(seen, _model_stream(seen), lambda chunk: chunk)


def agent_observe_thread(seen: Seen) -> None:
    def take(part: dict[str, Any]) -> Any:
        return part["data"][0] if part["type"] == "messages" else None

    _observe_from_thread(seen, make_agent(seen).observe(_input(seen)), take)


def agent_updates_sync(seen: Seen) -> None:
    def body() -> None:
        for update in make_agent(seen).stream(_input(seen), stream_mode="updates"):
            for node in update.values():
                for message in (node or {}).get("messages", ()):
                    if getattr(message, "type", "") == "ai":
                        seen.final_text = message.text
                        if len(seen.reprs) < 6:
                            seen.reprs.append(repr(message))
        seen.completed = True
    _guard(seen, body)


def _trio(seen: Seen, stream: Callable[[], Any], take: Callable[[Any], Any]) -> None:
    """A ``trio.run`` in this thread; reads to the end on even runs, breaks out on odd ones."""
    leaves = seen.plan.index % 2 == 1 and seen.plan.consumer == "trio"

    async def body() -> None:
        async for item in stream():
            seen.add(take(item))
            if leaves and seen.wants_to_leave():
                seen.leave("trio_break")
                break
        else:
            seen.completed = True

    async def main() -> None:
        await _aguard(seen, body)

    trio.run(main)


def trio_(seen: Seen) -> None:
    _trio(seen, lambda: _model_stream(seen), lambda chunk: chunk)


def agent_trio(seen: Seen) -> None:
    _trio(seen, lambda: make_agent(seen).astream(_input(seen), stream_mode="messages"),
          _message_of)


ASYNC: dict[str, Callable[[Seen], Awaitable[None]]] = {
    "fast": fast, "slow": slow, "break": break_, "async_with": async_with,
    "cancel_scope": cancel_scope, "task_cancel": task_cancel, "observe_loop": observe_loop,
    "agent_messages": agent_messages, "agent_break": agent_break,
    "agent_task_cancel": agent_task_cancel,
}
THREADED: dict[str, Callable[[Seen], None]] = {
    "sync_thread": sync_thread, "sync_break": sync_break, "observe_thread": observe_thread,
    "trio": trio_, "agent_updates_sync": agent_updates_sync,
    "agent_observe_thread": agent_observe_thread, "agent_trio": agent_trio,
}
