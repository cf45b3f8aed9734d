"""The soak's invariants: per run, from what the consumer saw and what the server saw; per
process, from a snapshot of the process before and after all runs.

Per run (:func:`check_run`):

- *tree*: any error that reached the consumer is an :class:`rxagent.RxAgentError`;
- *lost* / *repeated*: the text delivered is the first tokens of the reply, in order, none
  twice (a retry restarts only before the first token); a reply that completed has them all;
- *partial*: a :class:`rxagent.ModelCallError` keeps, as ``partial``, the text the consumer got
  from that call;
- *disconnect*: every connection of the run that the server had not finished when the consumer
  left (broke out, exited, cancelled, disposed, or got an error) was seen closed by the
  client, and how long after the leaving (the issue's bound is 200 ms);
- *unplanned*: no request the plan did not expect (a retry after the first token or past
  ``max_retries``, a model call too many);
- *key*: the API key is in no error's ``str``/``repr`` (the whole cause chain) nor in any repr
  of the model, messages or chunks the consumer kept.

Per process (:class:`Snapshot`): asyncio tasks, threads, file descriptors, sockets, and RSS.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from _faults import Connection
from _soak_consumers import Seen
from _soak_wire import tokens

DISCONNECT_BOUND = 0.200  # seconds, the bound

_TOKEN = re.compile(r"t(\d{6}) ")


@dataclass
class RunResult:
    """The verdict on one run."""

    index: int
    wire: str
    consumer: str
    faults: tuple[str, ...]
    outcome: str                   # completed, left, error:<Type>, hung
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # disconnect latencies, seconds
    must_complete: bool = False
    error: str = ""                # the error that reached the consumer, if any
    model_outlived: bool = False   # the run's model was still alive after it (a cycle)
    late_requests: list[float] = field(default_factory=list)  # read after the consumer returned


def tokens_verdict(text: str, expected: list[str]) -> list[str]:
    """``[]`` if ``text`` is the first tokens of ``expected``; else what is wrong with it."""
    whole = "".join(expected)
    if whole.startswith(text) and len(text) % len(tokens(1)[0]) == 0:
        return []
    numbers = [int(n) for n in _TOKEN.findall(text)]
    problems = []
    if len(set(numbers)) != len(numbers):
        problems.append("repeated")
    if numbers != list(range(len(numbers))) and sorted(set(numbers)) != list(
            range(len(set(numbers)))):
        problems.append("lost")
    if not problems:
        problems.append("garbled")
    return problems


def check_run(seen: Seen, connections: list[Connection], hung: bool) -> RunResult:
    plan = seen.plan
    error = seen.error
    if hung:
        outcome = "hung"
    elif seen.completed:
        outcome = "completed"
    elif error is not None:
        outcome = f"error:{error.name}"
    else:
        outcome = "left"
    result = RunResult(plan.index, plan.wire, plan.consumer, plan.faults, outcome,
                       must_complete=plan.must_complete,
                       error="" if error is None else f"{error.name}: {error.message}"[:300])
    fail = result.failures.append
    # With the garbage collector off, a model still alive after its run is held by a reference
    # cycle (a figure, not an invariant: see the xfail test in tests/test_soak.py).
    result.model_outlived = not hung and any(ref() is not None for ref in seen.models)
    if hung:
        fail("hung")

    if error is not None and not error.in_tree:
        fail(f"outside-tree: {error.qualname}: {error.message}")

    expected = tokens(plan.text_call.final.tokens)
    text = seen.text if seen.final_text is None else seen.final_text
    for problem in tokens_verdict(text, expected):
        fail(f"{problem}: got {text[:80]!r}...")
    if seen.completed:
        # Every consumer sees the text: chunks, or the final answer in "updates".
        delivered = seen.final_text if seen.final_text is not None else seen.text
        if delivered != "".join(expected):
            fail(f"lost: completed with {len(delivered)} of {len(''.join(expected))} chars")

    if error is not None and error.model_call and seen.final_text is None and seen.texts:
        partial = error.partial_text or ""
        got = "".join(seen.by_message.get(seen.last_message or "", ()))
        if partial != got:
            fail(f"partial: error keeps {len(partial)} chars, consumer got {len(got)}")

    if seen.left_at is not None:
        for conn in connections:
            if conn.server_done is not None and conn.server_done <= seen.left_at:
                continue  # the server had finished with it before the consumer left
            gone = conn.client_gone
            if gone is None and conn.server_done is not None:
                # The server finished the response after the consumer left, and stopped
                # watching: the connection was over by then at the latest.
                gone = conn.server_done
            if gone is None:
                fail(f"disconnect: attempt {conn.attempt} ({conn.fault}) never seen closed "
                     f"after {seen.left_how}")
                continue
            latency = max(0.0, gone - seen.left_at)
            result.latencies.append(latency)
            if latency > DISCONNECT_BOUND:
                fail(f"disconnect: attempt {conn.attempt} ({conn.fault}) closed "
                     f"{latency * 1000:.0f} ms after {seen.left_how}")

    if seen.finished_at is not None and not seen.completed:
        # After the consumer's code returned (having left, or with its error), nothing of
        # the run may start a request; the server may read one sent just before late.
        for conn in connections:
            if conn.request_at is not None and conn.request_at > seen.finished_at:
                result.late_requests.append(conn.request_at - seen.finished_at)
            if conn.request_at is not None and \
                    conn.request_at > seen.finished_at + DISCONNECT_BOUND:
                fail(f"request-after-leaving: attempt {conn.attempt} read "
                     f"{(conn.request_at - seen.finished_at) * 1000:.0f} ms after the "
                     f"consumer returned ({seen.left_how})")

    for conn in connections:
        if conn.fault == "unplanned":
            fail(f"unplanned-request: attempt {conn.attempt}: a retry after the first token or "
                 "past max_retries, or a model call too many")

    if not all(conn.key_ok for conn in connections):
        fail("key: a request without the run's API key")
    texts = [repr(seen.reprs)]
    if error is not None:
        texts += error.texts
    if any(seen.key in t for t in texts):
        fail("key: the API key in an error or a repr")
    return result


class KeyWatch(logging.Handler):
    """A root-logger handler at DEBUG: counts every record (httpx, httpcore, rxagent...) and
    every one that holds any of the soak's keys, formatted with its traceback."""

    def __init__(self, secret_part: str) -> None:
        super().__init__(logging.DEBUG)
        self.secret_part = secret_part
        self.records = 0
        self.task_errors = 0  # asyncio's "Task was destroyed but it is pending!" and such
        self.task_samples: list[str] = []
        self.leak_count = 0
        self.leaks: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        try:
            text = record.getMessage() + repr(record.args)
            if record.exc_info:
                text += self._formatter.formatException(record.exc_info)
        except Exception as error:  # a record we cannot format is noted
            text = f"unformattable record {record.name}: {error!r}"
        if record.name == "asyncio" and record.levelno >= logging.ERROR:
            self.task_errors += 1
            if len(self.task_samples) < 5:
                self.task_samples.append(text[:300])
        if self.secret_part in text:
            self.leak_count += 1
            if len(self.leaks) < 5:
                self.leaks.append(f"{record.name}: {text[:200]}")


class Finalizers:
    """Counts what only a finalizer cleaned up, over the soak: a ``ResourceWarning`` (a socket,
    a transport or a file closed by the garbage collector or a ``__del__``, not by its owner),
    an error raised where nobody could catch it (``sys.unraisablehook``), and asyncio's "Task
    was destroyed but it is pending" / "exception was never retrieved" records. Any of them is
    a leak that the process happened to recover from, so the fd count alone would miss it."""

    def __init__(self) -> None:
        self.resource_warnings = 0
        self.unraisable = 0
        self.samples: list[str] = []
        self._old_show: Any = None
        self._old_hook: Any = None
        self._catch: Any = None

    def _note(self, text: str) -> None:
        if len(self.samples) < 5:
            self.samples.append(text[:300])

    def __enter__(self) -> Finalizers:
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("always", ResourceWarning)
        self._old_show = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, ResourceWarning):
                self.resource_warnings += 1
                self._note(f"ResourceWarning: {message}")
            else:
                self._old_show(message, category, *args, **kwargs)

        warnings.showwarning = show
        self._old_hook = sys.unraisablehook

        def hook(unraisable: Any) -> None:
            if isinstance(unraisable.exc_value, ResourceWarning):
                self.resource_warnings += 1
            else:
                self.unraisable += 1
            self._note(f"unraisable in {unraisable.object!r}: {unraisable.exc_value!r}")

        sys.unraisablehook = hook
        return self

    def __exit__(self, *exc_info: object) -> None:
        warnings.showwarning = self._old_show
        sys.unraisablehook = self._old_hook
        self._catch.__exit__(*exc_info)


@dataclass
class Snapshot:
    """What the process holds that a soak could leak."""

    tasks: int
    threads: list[str]  # the names of the threads that run (see live_threads)
    fds: int
    sockets: int
    rss_mb: float
    peak_rss_mb: float
    stale_thread_records: int = 0  # threading's records of foreign threads that have ended
    os_threads: int = 0  # the kernel's count

    @classmethod
    def take(cls) -> Snapshot:
        gc.collect()
        fds = os.listdir("/proc/self/fd")
        sockets = 0
        for fd in fds:
            try:
                if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                    sockets += 1
            except OSError:
                pass
        status = _status()
        try:
            tasks = len(asyncio.all_tasks()) - 1
        except RuntimeError:
            tasks = 0
        live, stale = live_threads()
        return cls(tasks, sorted(live), len(fds), sockets,
                   status.get("VmRSS", 0) / 1024, status.get("VmHWM", 0) / 1024,
                   stale_thread_records=stale,
                   os_threads=len(os.listdir("/proc/self/task")))

    def leaks_since(self, before: Snapshot, idle_workers: int) -> dict[str, Any]:
        """What this snapshot holds more than ``before`` (only what grew).

        rxagent keeps the threads that ran sync tools for a minute after their last job (a
        pool that grows to the number of tools running at once); up to ``idle_workers`` of
        them are not a leak.
        """
        extra_threads = list(self.threads)
        for name in before.threads + ["rxagent-worker"] * idle_workers:
            if name in extra_threads:
                extra_threads.remove(name)
        leaks: dict[str, Any] = {}
        if self.tasks > before.tasks:
            leaks["tasks"] = self.tasks - before.tasks
        if extra_threads:
            leaks["threads"] = extra_threads
        if self.fds > before.fds:
            leaks["fds"] = self.fds - before.fds
        if self.sockets > before.sockets:
            leaks["sockets"] = self.sockets - before.sockets
        return leaks


def live_threads() -> tuple[list[str], int]:
    """The names of the threads that run, and how many of threading's records are of foreign
    threads that have ended.

    A thread that threading did not start (trio's worker threads, for one) gets a "Dummy-N"
    record the first time it asks for ``threading.current_thread()`` (a log record does);
    on Python 3.11 the record stays after the thread has ended. Such a record is no thread,
    so it is counted apart; a foreign thread that still runs is a thread.
    """
    live: list[str] = []
    stale = 0
    for thread in threading.enumerate():
        if isinstance(thread, threading._DummyThread) and not os.path.exists(
                f"/proc/self/task/{thread.native_id}"):
            stale += 1
        else:
            live.append(thread.name)
    return live, stale


def _status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                values[name] = int(rest.split()[0])
    return values
