"""The app's tasks: every run, and the background work of Redis mode, started from request
handlers and cancelled together when the app stops.

An anyio task group does this, but anyio (4.16) gives each task it starts a handle, a cancel
scope and an event of its own: about 3.3 KiB per task on asyncio, kept for as long as the task
runs, which for a run held by a slow client is as long as the client takes. On asyncio the
tasks here are the loop's own, kept in a set; on trio (the app served by hypercorn, say) they
go to a task group, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from .._loops import _in_trio

__all__ = ["AppTasks"]

logger = logging.getLogger("rxagent.server")


class AppTasks:
    """Tasks started with :meth:`start_soon` inside ``async with AppTasks() as tasks:``;
    :meth:`cancel` cancels them all, and leaving the block waits for every one to end.

    Unlike a task group's, a task's failure does not cancel the others: it is logged. The work
    started here (a run, a Redis tail) handles its own errors; one that escapes is a bug that
    must not stop the app's other runs.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._group: anyio.abc.TaskGroup | None = None
        self._cancelled = False

    async def __aenter__(self) -> AppTasks:
        if _in_trio():
            self._group = anyio.create_task_group()
            await self._group.__aenter__()
        else:
            self._loop = asyncio.get_running_loop()
        return self

    def start_soon(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start ``work()`` as a task of its own (in the caller's context, as a task group
        does)."""
        if self._group is not None:
            self._group.start_soon(_logged, work)
            return
        assert self._loop is not None, "AppTasks is used inside 'async with' only"
        task = self._loop.create_task(work())
        if self._cancelled:
            task.cancel()
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("a task of the app failed", exc_info=error)

    def cancel(self) -> None:
        """Cancel every task, and those started from now on."""
        self._cancelled = True
        if self._group is not None:
            self._group.cancel_scope.cancel()
        for task in self._tasks:
            task.cancel()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if self._group is not None:
            return await self._group.__aexit__(kind, error, traceback)
        if error is not None:
            self.cancel()
        with anyio.CancelScope(shield=error is not None):
            while self._tasks:
                await asyncio.wait(list(self._tasks))
        return None


async def _logged(work: Callable[[], Awaitable[None]]) -> None:
    try:
        await work()
    except Exception:
        logger.exception("a task of the app failed")
