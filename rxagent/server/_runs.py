"""The server's runs: their records, their event logs, and running them in this process.

A run is created by a request and executed by a task of the app's task group, not of the
request, so that it outlives its client (``on_disconnect="continue"``), and so that any number
of clients can follow it through its :class:`~rxagent.server._events.EventLog`. Runs on one
thread go one at a time: each waits for the one created before it (``multitask_strategy=
"enqueue"``); the routes refuse a second run on a busy thread unless asked to queue it.

:class:`RunRegistry` is the interface the routes use (create, find, read, cancel, wait,
forget); :class:`LocalRunner` executes runs in this process, whoever keeps them;
:class:`MemoryRunRegistry` keeps one process's runs (``_redis.RedisRunRegistry`` keeps them in
Redis, for many processes). The run's own work, from the agent's parts
to the log, is :func:`execute`, which knows nothing of where runs are kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import anyio
from pydantic import BaseModel

from .._agent import Agent, AgentInput, StreamMode
from .._bridges import to_async_iterator
from .._demand import Demand, subscription_demand
from .._exceptions import RxAgentError
from .._fast_rx import consume
from .._thread_state import Durability
from ._events import EventLog, LogReader, MemoryEventLog
from ._modes import EventNamer, rxagent_modes
from ._sse import frame
from ._threads import ThreadStatus, ThreadStore, now

__all__ = [
    "LocalRunner",
    "MemoryRunRegistry",
    "Run",
    "RunRegistry",
    "RunRequest",
    "RunStatus",
    "ThreadBusy",
    "execute",
    "run_context",
]

RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]

logger = logging.getLogger("rxagent.server")


@dataclass(slots=True)
class RunRequest:
    """What a run does: the agent, its input and config, and how its events are named."""

    graph_id: str
    assistant_id: str
    agent: Agent | None  # None: a run executing in another process
    input: AgentInput
    config: dict[str, Any]
    modes: list[str]
    subgraphs: bool
    resumable: bool
    durability: Durability | None = None
    temporary: bool = False  # a stateless run's thread, deleted at the end
    context: dict[str, Any] | None = None  # the body's, as JSON: run_context() makes it


def run_context(agent: Agent, context: dict[str, Any] | None) -> Any:
    """The ``context`` a run's tools get: the body's JSON object made into the agent's
    ``context_schema`` when that is a dataclass or a pydantic model (as LangGraph's server
    does), the object itself otherwise (a ``TypedDict``, no schema).

    Raises:
        TypeError, ValueError: the object does not fit the schema (pydantic's
            ``ValidationError`` is a ``ValueError``).
    """
    schema = agent.context_schema
    if context is None or schema is None or not isinstance(schema, type):
        return context
    if issubclass(schema, BaseModel):
        return schema.model_validate(context)
    if dataclasses.is_dataclass(schema):
        return schema(**context)
    return context


@dataclass(slots=True)
class Run:
    """One run: the record ``GET /threads/{t}/runs/{r}`` shows, and its in-process handles."""

    run_id: str
    thread_id: str
    request: RunRequest
    metadata: dict[str, Any]
    multitask_strategy: str
    log: EventLog | None  # None: a run executing in another process
    created_at: str = field(default_factory=now)
    updated_at: str = ""
    status: RunStatus = "pending"
    values: Any = None  # the last ``values`` payload, for ``runs.wait``
    error: dict[str, str] | None = None
    ended: bool = False  # set once, by end(), when the run is over
    cancel_requested: bool = False
    scope: anyio.CancelScope | None = None
    ended_at: float | None = None
    # Made only for a waiter (runs.wait, the next run on the thread): an idle event is most of
    # a kilobyte, on every open stream.
    _done: anyio.Event | None = None

    async def wait_ended(self) -> None:
        """Return once the run is over."""
        if not self.ended:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()

    def end(self) -> None:
        """The run is over: wake whoever waits for it."""
        self.ended = True
        if self._done is not None:
            self._done.set()

    @property
    def active(self) -> bool:
        return self.status in ("pending", "running")

    def set_status(self, status: RunStatus) -> None:
        self.status = status
        self.updated_at = now()

    def cancel(self) -> None:
        """Cancel the run, pending or running; its status becomes ``interrupted``."""
        self.cancel_requested = True
        if self.scope is not None:
            self.scope.cancel()

    def json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "thread_id": self.thread_id,
            "assistant_id": self.request.assistant_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at or self.created_at,
            "status": self.status,
            "metadata": self.metadata,
            "kwargs": {
                "stream_mode": self.request.modes,
                "stream_subgraphs": self.request.subgraphs,
                "stream_resumable": self.request.resumable,
            },
            "multitask_strategy": self.multitask_strategy,
        }


class ThreadBusy(Exception):
    """The thread has a run already and the new one was to be refused (``reject``); the
    routes answer 409. Never leaves the server."""

    def __init__(self, thread_id: str, run_id: str | None) -> None:
        super().__init__(f"thread {thread_id!r} is busy" + (
            f" with run {run_id}" if run_id else ""))
        self.thread_id = thread_id
        self.run_id = run_id


class RunRegistry(ABC):
    """Where the server keeps its runs and starts them."""

    @abstractmethod
    async def create(
        self,
        run_id: str,
        thread_id: str,
        request: RunRequest,
        *,
        metadata: Mapping[str, Any],
        multitask_strategy: str,
        follow: bool,
        background: bool = False,
    ) -> tuple[Run, LogReader | None]:
        """Record a run and start it (after the runs already on its thread); with ``follow``,
        also a reader of all its events, made before the first. A ``background`` run may be
        run by another process (a registry with a queue of them).

        Raises:
            ThreadBusy: ``multitask_strategy`` is ``reject`` and the thread has an active run.
        """

    @abstractmethod
    async def get(self, run_id: str) -> Run | None:
        """The run, or ``None`` (never created, or forgotten after its retention)."""

    @abstractmethod
    async def on_thread(self, thread_id: str) -> list[Run]:
        """The thread's runs, newest first."""

    @abstractmethod
    def reader(self, run: Run, after: int | None) -> LogReader:
        """A reader of the run's events after id ``after`` (``None``: live only)."""

    @abstractmethod
    async def cancel(self, run: Run) -> None:
        """Cancel the run, pending or running, wherever it runs; it ends ``interrupted``."""

    @abstractmethod
    async def wait(self, run: Run) -> Run:
        """Wait for the run to end; its final record (with ``values`` or ``error``)."""

    @abstractmethod
    async def forget_thread(self, thread_id: str) -> None:
        """Forget a deleted thread's runs (cancelling those still active)."""

    @abstractmethod
    async def delete(self, run: Run) -> None:
        """Forget an ended run at once: its record and its events (a rollback)."""


class LocalRunner(RunRegistry):
    """Executing runs in this process: the part of a registry that does not depend on where
    runs are kept. A subclass says how a run waits for its turn on the thread
    (:meth:`_take_turn`), how a change of status is recorded (:meth:`_save`), and what happens
    once the run has ended (:meth:`_ended`).

    Args:
        threads: the thread records, whose status the runs keep up to date.
    """

    def __init__(self, threads: ThreadStore) -> None:
        self._threads = threads

    @abstractmethod
    async def _take_turn(self, run: Run, previous: Run | None) -> None:
        """Return once the run may start on its thread (``previous``: the run made before it
        on the thread in this process)."""

    async def _save(self, run: Run) -> None:
        """Record the run's status (and, once it has ended, its outcome)."""

    async def _ended(self, run: Run) -> None:
        """The run has ended and its log is closed."""

    async def _execute(
        self, run: Run, previous: Run | None, slots: anyio.Semaphore | None = None
    ) -> None:
        """Run ``run`` to its end; with ``slots``, only once it has one of them (a background
        run waits, ``pending``, while this process runs as many as it takes at once). It waits
        for its turn on its thread first, without a slot: runs queued on a busy thread would
        otherwise fill the slots and keep other threads' runs waiting."""
        try:
            with anyio.CancelScope() as scope:
                run.scope = scope
                if run.cancel_requested:
                    scope.cancel()
                await self._take_turn(run, previous)
                async with slots if slots is not None else contextlib.nullcontext():
                    await self._threads.touch(run.thread_id, status="busy")
                    run.set_status("running")
                    await self._save(run)
                    await execute(run)
        except Exception:  # a bug of ours: it must not take the app's other runs down with it
            logger.exception("run %s failed in the server", run.run_id)
            run.set_status("error")
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await self._finish(run)

    async def _finish(self, run: Run) -> None:
        if run.status in ("pending", "running"):
            run.set_status("interrupted")  # cancelled
        try:
            try:
                await self._settle_thread(run)
            except Exception:  # the saver failed; the run's own status stands
                logger.exception("run %s: the thread's state could not be read", run.run_id)
            try:
                # The status is final before the log closes: a client whose stream ends
                # reads it to decide whether to reconnect.
                await self._save(run)
            except Exception:
                logger.exception("run %s: its status could not be saved", run.run_id)
            try:
                if run.log is not None:
                    await run.log.aclose()
            except Exception:  # its clients' streams end once they find the run ended
                logger.exception("run %s: its event log could not be closed", run.run_id)
        finally:
            run.ended_at = anyio.current_time()
            run.end()
            try:
                await self._ended(run)
            except Exception:  # the run has ended, whatever its store could record
                logger.exception("run %s: its end could not be recorded", run.run_id)

    async def _settle_thread(self, run: Run) -> None:
        """The thread's status after the run, or the stateless run's thread deleted."""
        request = run.request
        agent = request.agent
        assert agent is not None
        if request.temporary:
            assert agent.checkpointer is not None
            await agent.checkpointer.adelete_thread(run.thread_id)
            await self._threads.delete(run.thread_id)
            return
        others = await self.on_thread(run.thread_id)
        if any(other.active for other in others if other.run_id != run.run_id):
            return  # the next run on the thread says what the thread is doing
        status: ThreadStatus = "error" if run.status == "error" else "idle"
        if status == "idle" and (await agent.aget_state(request.config)).interrupts:
            status = "interrupted"
        await self._threads.touch(run.thread_id, status=status)


class MemoryRunRegistry(LocalRunner):
    """Runs kept and executed in this process.

    Args:
        spawn: starts a task in the app's task group.
        threads: the thread records, whose status the runs keep up to date.
        retention: seconds a finished run's record and events are kept for joins.
        jobs_per_worker: how many background runs execute at once; the others wait,
            ``pending``, in the order they were made (those whose turn on their thread has
            come). Streamed and awaited runs do not wait and do not count, nor do runs waiting
            for their turn on their thread.
    """

    def __init__(
        self,
        spawn: Callable[[Callable[[], Any]], None],
        threads: ThreadStore,
        *,
        retention: float = 600.0,
        jobs_per_worker: int = 10,
    ) -> None:
        super().__init__(threads)
        self._spawn = spawn
        self.retention = retention
        self.jobs_per_worker = jobs_per_worker
        self._slots: anyio.Semaphore | None = None  # made on the loop, by the first to wait
        # Every lookup goes through an index, never a scan of all runs: with ``retention``
        # the registry holds every run of the last minutes (a busy server's thousands), and a
        # scan per request made each new run slower than the one before.
        self._runs: dict[str, Run] = {}
        self._on_thread: dict[str, dict[str, Run]] = {}  # each thread's runs, oldest first
        self._last_on_thread: dict[str, Run] = {}
        self._ended_runs: deque[Run] = deque()  # in the order they ended: expiry pops the left

    async def create(
        self,
        run_id: str,
        thread_id: str,
        request: RunRequest,
        *,
        metadata: Mapping[str, Any],
        multitask_strategy: str,
        follow: bool,
        background: bool = False,
    ) -> tuple[Run, LogReader | None]:
        self._expire()
        if multitask_strategy == "reject":
            busy = [run for run in await self.on_thread(thread_id) if run.active]
            if busy:
                raise ThreadBusy(thread_id, busy[0].run_id)
        log = MemoryEventLog(keep=request.resumable)
        run = Run(run_id, thread_id, request, dict(metadata), multitask_strategy, log)
        previous = self._last_on_thread.get(thread_id)
        self._runs[run_id] = run
        self._on_thread.setdefault(thread_id, {})[run_id] = run
        self._last_on_thread[thread_id] = run
        reader = log.reader(0) if follow else None
        # The first frame, written now so that a client sees it before the run's turn comes.
        await log.append("metadata", frame("metadata", {"run_id": run_id, "attempt": 1}))
        slots = None
        if background:
            if self._slots is None:
                # FIFO: anyio's semaphore wakes its waiters in the order they came.
                self._slots = anyio.Semaphore(self.jobs_per_worker)
            slots = self._slots
        self._spawn(lambda: self._execute(run, previous, slots))
        return run, reader

    async def get(self, run_id: str) -> Run | None:
        self._expire()
        return self._runs.get(run_id)

    async def on_thread(self, thread_id: str) -> list[Run]:
        runs = self._on_thread.get(thread_id)
        return [*reversed(runs.values())] if runs else []

    def reader(self, run: Run, after: int | None) -> LogReader:
        assert run.log is not None
        return run.log.reader(after)

    async def cancel(self, run: Run) -> None:
        run.cancel()

    async def wait(self, run: Run) -> Run:
        await run.wait_ended()
        return run

    async def forget_thread(self, thread_id: str) -> None:
        for run in await self.on_thread(thread_id):
            run.cancel()
            del self._runs[run.run_id]
        self._on_thread.pop(thread_id, None)
        self._last_on_thread.pop(thread_id, None)

    async def delete(self, run: Run) -> None:
        self._forget(run)

    def _forget(self, run: Run) -> None:
        if self._runs.get(run.run_id) is not run:
            return  # forgotten already (its thread was deleted)
        del self._runs[run.run_id]
        runs = self._on_thread.get(run.thread_id)
        if runs is not None:
            runs.pop(run.run_id, None)
            if not runs:
                del self._on_thread[run.thread_id]
        if self._last_on_thread.get(run.thread_id) is run:
            del self._last_on_thread[run.thread_id]

    def _expire(self) -> None:
        horizon = anyio.current_time() - self.retention
        ended = self._ended_runs
        while ended and (ended[0].ended_at or 0.0) < horizon:
            self._forget(ended.popleft())

    async def _ended(self, run: Run) -> None:
        # ended_at is set just before this, from a monotonic clock: the deque stays in order.
        self._ended_runs.append(run)

    async def _take_turn(self, run: Run, previous: Run | None) -> None:
        if previous is not None:
            await previous.wait_ended()


# Parts a Redis-logged run's iterator buffers: the log is the buffer that matters (bounded in
# bytes, shared by its clients); a deep one in front of it would hold a held stream's parts twice.
_BRIDGE_BUFFER = 16


async def execute(run: Run) -> None:
    """Run the agent and write its events to the run's log; set the run's status.

    A failure ends the log with one ``error`` frame ``{"error": type, "message": text}``. The
    text is the error's own for rxagent's errors, which are written to be shown; any other
    exception's text may hold internals (paths, keys in URLs), so it is logged, not sent.
    """
    request = run.request
    assert request.agent is not None
    namer = EventNamer(request.modes, subgraphs=request.subgraphs, run_metadata={
        "thread_id": run.thread_id, "run_id": run.run_id, "graph_id": request.graph_id,
        "assistant_id": request.assistant_id,
    })
    log = run.log
    assert log is not None
    modes = cast(list[StreamMode], [*rxagent_modes(request.modes), "values"])

    def frames_of(part: Any) -> list[tuple[str, bytes]]:
        if part["type"] == "values" and not part["ns"]:
            run.values = part["data"]
        return namer.frames(part)

    try:
        parts = request.agent._parts(
            request.input, request.config, stream_mode=modes, subgraphs=request.subgraphs,
            version="v2", durability=request.durability,
            context=run_context(request.agent, request.context))
        demand = Demand()
        if log.hold_while_waiting(demand):
            # The log holds the run back itself (by its demand) and never waits: the agent
            # runs in this task and each part is written as it comes. A held stream keeps no
            # iterator, task or buffered parts of its own here, only its frames in the log.
            def write(part: Any) -> None:
                for name, body in frames_of(part):
                    log.append_now(name, body)

            token = subscription_demand.set(demand)
            try:
                await consume(parts, write)
            finally:
                subscription_demand.reset(token)
        else:
            # A log that waits for room (Redis) is written from an iterator, which holds
            # the run back while the log waits.
            async with to_async_iterator(parts, max_buffer=_BRIDGE_BUFFER) as bridged:
                async for part in bridged:
                    for name, body in frames_of(part):
                        await log.append(name, body)
    except Exception as error:
        if isinstance(error, RxAgentError):
            message = str(error)
        else:
            logger.exception("run %s failed", run.run_id)
            message = "the run failed; the server's log has the details"
        run.error = {"error": type(error).__name__, "message": message}
        run.set_status("error")
        await log.append("error", frame("error", run.error))
        return
    run.set_status("success")
