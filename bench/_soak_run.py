"""The soak's driver: start the server, run every plan with its consumer, judge, summarise.

Runs go :data:`CONCURRENCY` at a time on one asyncio loop; threaded consumers get a plain
thread each. A run that has not ended by its deadline is *hung*: reported, cancelled if it can
be, and left behind (its thread is a daemon) so that the soak itself always ends.

Before the counted runs, one clean warm-up run per consumer starts everything that lives for
the whole process by design (rxagent's background loop, imports, trio's first run); the leak
check compares the process after the runs with the process after the warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import threading
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

from _faults import RemoteServer
from _soak_checks import (
    DISCONNECT_BOUND,
    Finalizers,
    KeyWatch,
    RunResult,
    Snapshot,
    check_run,
    live_threads,
)
from _soak_consumers import ASYNC, THREADED, Seen
from _soak_plan import RunPlan, make_plans, warm_up_plans

CONCURRENCY = 16
RUN_DEADLINE = 20.0        # seconds a run may take before it counts as hung
LONG_RUN_DEADLINE = 90.0   # for the runs with a 100,000-token reply
DISCONNECT_WAIT = 2.0      # how long the server may take to see a leaving client, at most
FOREIGN_THREAD_WAIT = 12.0  # how long trio's idle worker threads may take to end, at most
SETTLE = 1.0               # seconds given to the process to let go of everything at the end
MEMORY_BOUND_MB = 256.0    # how much the RSS may grow over the warm-up's, at the end
SURVIVABLE_FLOOR = 0.99


async def _run_one(plan: RunPlan, server: RemoteServer, key: str) -> RunResult:
    seen = Seen(plan, server.url, key)
    deadline = LONG_RUN_DEADLINE if "long_reply" in plan.faults else RUN_DEADLINE
    if plan.consumer in ASYNC:
        consume = ASYNC[plan.consumer]

        async def consumer() -> None:
            await consume(seen)
            seen.finished_at = time.monotonic()

        task = asyncio.ensure_future(consumer())
        done, _ = await asyncio.wait({task}, timeout=deadline)
        hung = not done
        if hung:
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)
    else:
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def target() -> None:
            try:
                THREADED[plan.consumer](seen)
                seen.finished_at = time.monotonic()
            finally:
                loop.call_soon_threadsafe(
                    lambda: finished.done() or finished.set_result(None))

        threading.Thread(target=target, name=f"soak-consumer-{plan.index}", daemon=True).start()
        done, _ = await asyncio.wait({finished}, timeout=deadline)
        hung = not done
    # Give the server time to see a leaving client go (the latency is measured from the
    # times, not from this wait).
    waited = 0.0
    connections = await server.connections_of(plan.index)
    while waited < DISCONNECT_WAIT and any(
            c.server_done is None and c.client_gone is None for c in connections):
        await asyncio.sleep(0.05)
        waited += 0.05
        connections = await server.connections_of(plan.index)
    await asyncio.sleep(0.05)  # work that a disposal stopped may take a moment to let go
    return check_run(seen, connections, hung)


class LoopLag:
    """How late the soak's event loop wakes a task that sleeps 10 ms, over the counted runs:
    when the loop lags by hundreds of milliseconds, a consumer on it cannot leave sooner."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.times: list[float] = []

    def by_quarter(self) -> list[float | None]:
        """The p99 lag in ms over each quarter of the runs' wall time: it should not grow."""
        if not self.times:
            return []
        first, span = self.times[0], (self.times[-1] - self.times[0]) or 1.0
        quarters: list[list[float]] = [[], [], [], []]
        for at, lag in zip(self.times, self.lags, strict=True):
            quarters[min(3, int(4 * (at - first) / span))].append(lag)
        return [_ms(_percentile(q, 0.99)) for q in quarters]

    async def watch(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append(time.monotonic() - start - 0.01)
            self.times.append(start)


async def _run_all(plans: list[RunPlan], server: RemoteServer, key: str,
                   concurrency: int) -> list[RunResult]:
    limit = asyncio.Semaphore(concurrency)

    async def guarded(plan: RunPlan) -> RunResult:
        async with limit:
            return await _run_one(plan, server, key)

    return list(await asyncio.gather(*(guarded(plan) for plan in plans)))


async def _soak(seed: int, runs: int, concurrency: int,
                only: list[int] | None, gc_off: bool) -> dict[str, Any]:
    secret = secrets.token_hex(16)
    key = f"sk-soak-{secret}"
    plans = make_plans(seed, runs)
    if only:
        plans = [plan for plan in plans if plan.index in only]
    warm = warm_up_plans(runs)
    watch = KeyWatch(secret)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(watch)
    root.setLevel(logging.DEBUG)
    try:
        with RemoteServer(seed, runs, key) as server:
            await _run_all(warm, server, key, concurrency)
            await asyncio.sleep(SETTLE)
            before = Snapshot.take()
            started = time.monotonic()
            lag = LoopLag()
            watcher = asyncio.ensure_future(lag.watch())
            with Finalizers() as finalizers:
                if gc_off:
                    gc.disable()
                try:
                    results = await _run_all(plans, server, key, concurrency)
                finally:
                    gc.enable()
                # What only the garbage collector would have freed (and the warnings of what
                # it finalizes count).
                cyclic = gc.collect()
                wall = time.monotonic() - started
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                for _ in range(int(5.0 / 0.05)):
                    status = await server.status()
                    if status["open"] == 0:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(SETTLE)
                # trio's idle worker threads end 10 s after their last job.
                for _ in range(int(FOREIGN_THREAD_WAIT / 0.1)):
                    live = live_threads()[0]
                    if sum(n.startswith("Dummy") for n in live) <= sum(
                            n.startswith("Dummy") for n in before.threads):
                        break
                    await asyncio.sleep(0.1)
                gc.collect()
                after = Snapshot.take()
    finally:
        root.removeHandler(watch)
        root.setLevel(old_level)
    summary = _summary(seed, runs, concurrency, results, before, after, status, watch, wall)
    finalized = {"resource_warnings": finalizers.resource_warnings,
                 "unraisable": finalizers.unraisable, "asyncio_task_errors": watch.task_errors}
    summary["finalized"] = finalized
    summary["finalized_samples"] = finalizers.samples + watch.task_samples
    if any(finalized.values()):
        summary["problems"].append(f"finalized: {finalized}")
        summary["ok"] = False
    summary["gc_off"] = gc_off
    summary["cyclic_garbage_objects"] = cyclic
    summary["loop_lag_ms"] = {"p50": _ms(_percentile(lag.lags, 0.5)),
                              "p99": _ms(_percentile(lag.lags, 0.99)),
                              "max": _ms(max(lag.lags, default=None)),
                              "p99_by_quarter": lag.by_quarter()}
    return summary


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _summary(seed: int, runs: int, concurrency: int, results: list[RunResult],
             before: Snapshot, after: Snapshot, status: dict[str, int], watch: KeyWatch,
             wall: float) -> dict[str, Any]:
    kinds = Counter[str]()
    for result in results:
        for failure in result.failures:
            kinds[failure.split(":")[0].split(" ")[0]] += 1
    latencies = [x for r in results for x in r.latencies]
    must = [r for r in results if r.must_complete]
    completed = sum(r.outcome == "completed" for r in must)
    leaks = after.leaks_since(before, idle_workers=concurrency)
    if status["open"]:
        leaks["server_connections_open"] = status["open"]
    growth = after.rss_mb - before.rss_mb
    summary: dict[str, Any] = {
        "seed": seed,
        "runs": len(results),
        "concurrency": concurrency,
        "wall_seconds": round(wall, 2),
        "outcomes": dict(Counter(r.outcome for r in results).most_common()),
        "per_consumer": dict(sorted(Counter(r.consumer for r in results).items())),
        "per_wire": dict(sorted(Counter(r.wire for r in results).items())),
        "per_fault": dict(sorted(Counter(f for r in results for f in r.faults).items())),
        "requests_served": status["connections"],
        "requests_read_after_leaving_ms": sorted(
            round(x * 1000, 1) for r in results for x in r.late_requests)[-20:],
        "model_outlived_run": dict(Counter(
            f"{r.outcome.split(':')[0]} {r.consumer}" for r in results if r.model_outlived
        ).most_common()),
        "runs_with_errors": dict(Counter(
            r.consumer for r in results if r.outcome.startswith("error")).most_common()),
        "final_fault_outcomes": _final_fault_outcomes(results),
        "hung": kinds["hung"],
        "lost": kinds["lost"],
        "repeated": kinds["repeated"],
        "garbled": kinds["garbled"],
        "outside_tree": kinds["outside-tree"],
        "partial_mismatch": kinds["partial"],
        "disconnect_failures": kinds["disconnect"],
        "requests_after_leaving": kinds["request-after-leaving"],
        "unplanned_requests": kinds["unplanned-request"],
        "key_leaks": kinds["key"] + watch.leak_count,
        "log_records": watch.records,
        "disconnects_measured": len(latencies),
        "disconnect_ms": {
            "p50": _ms(_percentile(latencies, 0.50)),
            "p99": _ms(_percentile(latencies, 0.99)),
            "max": _ms(max(latencies) if latencies else None),
            "bound": DISCONNECT_BOUND * 1000,
        },
        "survivable_runs": len(must),
        "survivable_completed": completed,
        "survivable_completion": round(completed / len(must), 4) if must else None,
        "leaks": leaks,
        "idle_tool_workers": after.threads.count("rxagent-worker"),
        "threads": {"os_after_warm_up": before.os_threads, "os_after_runs": after.os_threads,
                    "stale_foreign_thread_records": after.stale_thread_records},
        "rss_mb": {"after_warm_up": round(before.rss_mb, 1), "after_runs": round(after.rss_mb, 1),
                   "growth": round(growth, 1), "peak": round(after.peak_rss_mb, 1),
                   "bound": MEMORY_BOUND_MB},
        "requests_beyond_plan": status["requests_beyond_plan"],
        "failures": [asdict(r) for r in results if r.failures][:50],
        "survivable_incomplete": [asdict(r) for r in must if r.outcome != "completed"][:50],
        "log_leaks": watch.leaks,
        "runs_detail": [asdict(r) for r in results],
    }
    problems = []
    for name in ("hung", "lost", "repeated", "garbled", "outside_tree", "partial_mismatch",
                 "disconnect_failures", "requests_after_leaving", "unplanned_requests",
                 "key_leaks"):
        if summary[name]:
            problems.append(f"{name}: {summary[name]}")
    if leaks:
        problems.append(f"leaks: {leaks}")
    if must and completed / len(must) < SURVIVABLE_FLOOR:
        problems.append(f"survivable completion {completed}/{len(must)} < {SURVIVABLE_FLOOR}")
    if growth > MEMORY_BOUND_MB:
        problems.append(f"RSS grew {growth:.0f} MB > {MEMORY_BOUND_MB:.0f} MB")
    summary["problems"] = problems
    summary["ok"] = not problems
    return summary


def _final_fault_outcomes(results: list[RunResult]) -> dict[str, dict[str, int]]:
    """For each fault of a reply's final attempt, how the runs ended."""
    table: dict[str, Counter[str]] = {}
    for result in results:
        table.setdefault(result.faults[-1], Counter())[result.outcome] += 1
    return {fault: dict(counts.most_common()) for fault, counts in sorted(table.items())}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def run_soak(seed: int, runs: int, concurrency: int = CONCURRENCY,
             only: list[int] | None = None, gc_off: bool = True) -> dict[str, Any]:
    """Run the soak on a fresh asyncio loop; its summary (``summary["ok"]`` is the verdict).

    ``only`` runs just the runs of those numbers (of the ``runs`` the seed draws), to
    reproduce a failure. ``gc_off`` keeps the cyclic garbage collector off during the runs,
    so that a connection that only a collection would close (an iterator caught in a
    reference cycle) shows as a late disconnect instead of being rescued by chance.
    """
    return asyncio.run(_soak(seed, runs, concurrency, only, gc_off))
