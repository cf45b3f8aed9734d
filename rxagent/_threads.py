"""Sync work off the event loop: rxagent's worker threads, and async work run from sync code.

Sync tools run here, and ``invoke()`` on a model or a tool from sync code runs its async work
to completion through :func:`run_sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import anyio

from ._exceptions import UsageError
from ._loops import (
    background_loop,
    claim_for_asyncio,
    current_loop,
    inside_spawned_work,
    parked_on_thread,
)
from ._per_loop import signals_wake, thread_loop

__all__ = ["run_in_thread", "run_sync", "sync_code_in_place"]

sync_code_in_place: ContextVar[bool] = ContextVar("rxagent_sync_code_in_place", default=False)
"""True in the context of a sync function that a run calls on its loop's thread by design (a
sync tool placed in place, ``rxagent/_scheduler.py``): :func:`run_sync` may then block that
loop for the moment the tool takes, as documented there."""

_T = TypeVar("_T")


def run_sync(work: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``work()`` to completion from sync code: on this thread's own loop (where a model's
    pooled HTTP client serves the next call too), or, when this thread already runs a loop (a
    notebook), on the background loop while this thread waits.

    On the background loop's own thread (sync code called from a run there, such as a tool
    running in place) that loop cannot serve us, so the work gets a fresh loop in a worker
    thread instead.

    Raises:
        UsageError: called from a run's async code on the run's own loop (an async tool),
            which would block that loop; outside any run (a notebook cell) it is fine.
    """
    if current_loop() is None:
        return _run_on_thread_loop(work)
    if inside_spawned_work() and not sync_code_in_place.get():
        # Async code of a run (an async tool, say) on the run's own loop: waiting here would
        # stop that loop, and with it the run's consumer and every other run on it.
        raise UsageError(
            "invoke() inside a run's async code (an async tool) would block the event loop "
            "the run needs: use 'await model.ainvoke(...)' (or 'await tool.ainvoke(...)') "
            "there; invoke() is for sync code, such as a sync tool"
        )
    background = background_loop()
    if background.thread_id != threading.get_ident():
        return asyncio.run_coroutine_threadsafe(_call(work), background.loop).result()
    context = contextvars.copy_context()
    finished = threading.Event()
    outcome: list[tuple[bool, Any]] = []

    def job() -> None:
        try:
            outcome.append((True, context.run(asyncio.run, _call(work))))
        except BaseException as error:  # raised in the waiting thread, whatever it is
            outcome.append((False, error))
        finished.set()

    _workers.submit(job)
    finished.wait()
    ok, value = outcome[0]
    if not ok:
        raise value
    return cast(_T, value)


def _run_on_thread_loop(work: Callable[[], Awaitable[_T]]) -> _T:
    loop = thread_loop()
    task = loop.create_task(_call(work))
    unwake = signals_wake(loop)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            # Interrupted (Ctrl-C): the call must not go on at the loop's next run.
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(asyncio.wait([task], timeout=1.0))
        raise
    finally:
        unwake()


async def _call(work: Callable[[], Awaitable[_T]]) -> _T:
    claim_for_asyncio(None)
    return await work()


class _Workers:
    """Daemon threads for sync work (sync tools), kept while busy and for a minute after.

    A hand-off is a queue put and one wake-up of the loop: about half the cost of
    ``anyio.to_thread.run_sync``, which a sync tool pays on every call.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # that worker is taken
        if start:
            threading.Thread(target=self._work, args=(job,), name="rxagent-worker",
                             daemon=True).start()
        else:
            self._jobs.put(job)

    def _work(self, job: Callable[[], None]) -> None:
        while True:
            job()
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=60.0)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0 and self._jobs.empty():
                        self._idle -= 1
                        return
                job = self._jobs.get()  # a job was promised to us as we timed out


_workers = _Workers()


async def run_in_thread(
    fn: Callable[[], _T], *, on_cancel: Callable[[], None] | None = None
) -> _T:
    """Run ``fn()`` in a worker thread and wait for it, on asyncio or trio.

    A thread cannot be stopped: on cancellation this calls ``on_cancel`` (which may ask the
    work in the thread to wind up), waits for ``fn`` to return, then lets the cancellation
    through (its result is dropped), as ``anyio.to_thread.run_sync`` does without
    ``abandon_on_cancel``.
    """
    loop = current_loop()
    if loop is None:  # pragma: no cover - awaited inside a loop by definition
        raise RuntimeError("run_in_thread() must be awaited inside an event loop")
    finished = anyio.Event()
    outcome: list[tuple[bool, Any]] = []

    def job() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as error:  # delivered to the awaiting task, whatever it is
            outcome.append((False, error))
        loop.call_soon_threadsafe(finished.set)

    _workers.submit(job)
    try:
        await finished.wait()
    except anyio.get_cancelled_exc_class():
        if on_cancel is not None:
            on_cancel()
        with parked_on_thread(), anyio.CancelScope(shield=True):
            await finished.wait()
        raise
    ok, value = outcome[0]
    if not ok:
        raise value
    return cast(_T, value)
