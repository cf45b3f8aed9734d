"""A soak of rxagent's own: many model calls and agent runs against a server that misbehaves.

A fault-injecting HTTP server on 127.0.0.1 speaks OpenAI's chat completions and Anthropic's
messages streams and, per request, plays a plan drawn from the seed: resets before and during a
reply, 429s with ``retry-after`` and ``retry-after-ms``, 5xx, 529 and overloaded error events,
stalls longer than the timeouts and pauses shorter, chunks that are not JSON or have the wrong
shape, bodies cut short, a 1-byte trickle, 100,000-token replies, scrambled tool-call indices,
a 10 MB line, invalid UTF-8. Consumers of every kind read the replies (fast, slow, ``break``,
``async with``, cancel scopes, task cancel, sync ``stream()`` in threads, ``observe()``
disposed on the loop and from threads, trio), through a model and through an agent.

Every run is checked (it ends; only errors from rxagent's tree; no token lost or repeated; the
partial reply kept; the server sees a leaving client go within 200 ms; the API key in no error
or repr), and so is the process (no leaked tasks, threads, file descriptors or sockets; the RSS
bounded; the key in no log record). ``docs/reliability.md`` has the invariants and the figures.

    python bench/soak.py --runs 1000 --seed 14
    python bench/soak.py --runs 200 --seed 1 --json    # what tests/test_soak.py runs

The exit status is 1 when an invariant fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from _soak_run import CONCURRENCY, run_soak


def _table(summary: dict[str, Any]) -> str:
    lines = [f"soak: {summary['runs']} runs, seed {summary['seed']}, "
             f"{summary['concurrency']} at a time, {summary['wall_seconds']} s"]

    def counts(title: str, counter: dict[str, int]) -> None:
        lines.append(f"  {title}:")
        for name, count in counter.items():
            lines.append(f"    {name:<24}{count:>6}")

    counts("outcomes", summary["outcomes"])
    counts("per consumer", summary["per_consumer"])
    counts("per wire", summary["per_wire"])
    counts("per fault (attempts)", summary["per_fault"])
    lines.append("  outcomes per fault of the reply's last attempt:")
    for fault, outcomes in summary["final_fault_outcomes"].items():
        lines.append(f"    {fault:<24}" + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    lines.append("  invariants:")
    for name in ("hung", "lost", "repeated", "garbled", "outside_tree", "partial_mismatch",
                 "disconnect_failures", "requests_after_leaving", "unplanned_requests",
                 "key_leaks"):
        lines.append(f"    {name:<24}{summary[name]:>6}")
    latency = summary["disconnect_ms"]
    lines.append(f"    {'leaks':<24}{json.dumps(summary['leaks'])}")
    lines.append(f"    {'finalized':<24}{json.dumps(summary['finalized'])}")
    threads = summary["threads"]
    lines.append(f"  threads: {threads['os_after_warm_up']} after the warm-up, "
                 f"{threads['os_after_runs']} after the runs ({summary['idle_tool_workers']} "
                 "idle sync-tool workers); records of ended foreign threads: "
                 f"{threads['stale_foreign_thread_records']}")
    for sample in summary["finalized_samples"]:
        lines.append(f"      {sample[:200]}")
    lines.append(f"  disconnects seen: {summary['disconnects_measured']}, ms after leaving: "
                 f"p50 {latency['p50']}, p99 {latency['p99']}, max {latency['max']} "
                 f"(bound {latency['bound']:.0f})")
    lag = summary["loop_lag_ms"]
    lines.append(f"  the soak's event loop woke late by: p50 {lag['p50']} ms, p99 {lag['p99']} ms,"
                 f" max {lag['max']} ms; p99 per quarter of the runs {lag['p99_by_quarter']}")
    lines.append(f"  survivable runs completed: {summary['survivable_completed']} of "
                 f"{summary['survivable_runs']} ({summary['survivable_completion']})")
    rss = summary["rss_mb"]
    lines.append(f"  RSS MB: after warm-up {rss['after_warm_up']}, after runs "
                 f"{rss['after_runs']} (growth {rss['growth']}, bound {rss['bound']:.0f}), "
                 f"peak {rss['peak']}")
    lines.append(f"  garbage collector {'off' if summary['gc_off'] else 'on'} during the runs; "
                 f"cyclic garbage collected after them: {summary['cyclic_garbage_objects']} "
                 "objects")
    lines.append("  runs whose model outlived the run (freed only by the garbage collector): "
                 f"{json.dumps(summary['model_outlived_run'])}")
    lines.append(f"  log records scanned for the key: {summary['log_records']}; "
                 f"requests served: {summary['requests_served']}")
    for failure in summary["failures"][:20]:
        lines.append(f"  FAIL run {failure['index']} {failure['wire']} {failure['consumer']} "
                     f"{','.join(failure['faults'])}: {'; '.join(failure['failures'])[:300]}")
    for run in summary["survivable_incomplete"][:20]:
        lines.append(f"  survivable run {run['index']} {run['wire']} {run['consumer']} "
                     f"{','.join(run['faults'])} did not complete: {run['outcome']} "
                     f"{run['error'][:200]}")
    lines.append("OK" if summary["ok"] else "FAILED: " + "; ".join(summary["problems"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--only", type=int, action="append",
                        help="run only this run of the seed's (repeatable), to reproduce one")
    parser.add_argument("--show", action="store_true",
                        help="print every run's plan and outcome, one line each")
    parser.add_argument("--gc", action="store_true",
                        help="leave the cyclic garbage collector on during the runs")
    args = parser.parse_args(argv)
    summary = run_soak(args.seed, args.runs, args.concurrency, args.only, gc_off=not args.gc)
    if args.show:
        for run in summary["runs_detail"]:
            print(f"run {run['index']} {run['wire']} {run['consumer']} {','.join(run['faults'])}"
                  f" -> {run['outcome']} {run['error'][:120]}")
    summary.pop("runs_detail")
    print(json.dumps(summary, indent=1) if args.json else _table(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
