"""rxagent side by side with LangGraph (LangChain's ``create_agent``) and PydanticAI.

The same workloads run on each library, in the same process (the concurrency workload in a
fresh process per library and repetition), alternating between them within each repetition
(A, B, C, A, B, C, ...). Each library streams from an in-memory fake model of its own kind, one
chunk per token; every run checks that every token or event arrived, in order, and fails
loudly otherwise. Reported: the median over the repetitions, their min-max, rxagent's ratio to
each library and to the better of the two, and PASS/FAIL against the targets of the issue.

Workloads (``--workload``, repeatable; a family name such as ``messages`` selects both its sync
and async variants):

    messages-sync / -async   20,000 tokens through stream() / astream(): tokens/s, µs per token
    updates-sync / -async    200 sequential tool rounds with a trivial tool: µs per round, and
                             the first vs the last 50 rounds (is a round's cost flat?)
    custom-sync / -async     a tool (sync / async) calling its writer 50,000 times: events/s
    ttft-sync / -async       time to the first text token of a 2,000-token answer (median of
                             --ttft-samples per repetition, after a warm-up)
    concurrency              1,000 concurrent astream() runs of 100 tokens (the model suspends
                             once per token): wall time, peak RSS growth per run
    slow-consumer            bench/slow_consumer.py (rxagent only; run once, not repeated)

Each repetition of messages, updates and custom takes the median of ``--samples`` runs (3) per
library, still alternating; ttft has its own samples, and concurrency one run per process.

Floors (a bare generator, an async generator) move the same tokens with no framework.

    python bench/compare.py                            # everything, default sizes
    python bench/compare.py --workload messages-sync   # one workload
    python bench/compare.py --scale 0.01 --repeat 1    # a smoke pass: seconds
    python bench/compare.py --markdown                 # the table for the docs, machine info
    python bench/compare.py --workload messages-sync --profile   # cProfile rxagent's run
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import importlib
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

import _floors
from _common import Metrics, Runner, make_tokens, peak_rss, reset_peak_rss

HERE = Path(__file__).resolve().parent
NOTHING = "-"
RANGE = "\N{EN DASH}"
FLAT_LIMIT = 1.5  # "flat as the history grows": the last rounds at most this much dearer
MEMORY_LIMIT_KIB = 25.0
LIBRARIES = {  # label -> module implementing it
    "rxagent": "_with_rxagent",
    "langgraph": "_with_langgraph",
    "pydantic-ai": "_with_pydantic_ai",
}
REFERENCES = ("langgraph", "pydantic-ai")


# -- what is measured --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    tokens: int = 20_000
    rounds: int = 200
    events: int = 50_000
    ttft_tokens: int = 2_000
    ttft_samples: int = 40
    ttft_warmup: int = 5
    runs: int = 1_000
    run_tokens: int = 100
    slow_consumer_tokens: int = 1_000_000
    # messages, updates and custom: runs per library in each repetition, whose median is the
    # repetition's figure. A run of rxagent takes under 0.1 s, short enough for one burst of
    # the VM's noise to double it; LangGraph's take ten times longer and average it out.
    samples: int = 3

    def scaled(self, scale: float, ttft_samples: int | None, samples: int = 3) -> Sizes:
        def s(n: int, least: int = 1) -> int:
            return max(least, round(n * scale))

        return Sizes(
            tokens=s(self.tokens), rounds=s(self.rounds, 2), events=s(self.events),
            ttft_tokens=s(self.ttft_tokens, 2),
            ttft_samples=ttft_samples or s(self.ttft_samples), ttft_warmup=s(self.ttft_warmup),
            runs=s(self.runs), run_tokens=s(self.run_tokens),
            slow_consumer_tokens=s(self.slow_consumer_tokens, 100),
            samples=samples,
        )


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    derive: Callable[[Metrics, Sizes], float]
    compared: bool = True  # show rxagent's ratio to the others


@dataclass(frozen=True)
class Target:
    metric: str
    text: str
    factor: float | None = None  # rxagent at least this many times better than the better one
    limit: float | None = None  # rxagent's own value at most this


@dataclass
class Workload:
    name: str
    title: str
    entry: str  # the function each library module implements
    metrics: list[Metric]
    targets: list[Target]
    isolated: bool = False  # each run in a fresh process
    floors: list[str] = field(default_factory=list)

    def samples(self, sizes: Sizes) -> int:
        if self.name.startswith("ttft"):
            return sizes.ttft_samples
        return 1 if self.isolated else sizes.samples

    def warmup(self, sizes: Sizes) -> int:
        if self.isolated:
            return 0  # the worker process warms up itself
        return sizes.ttft_warmup if self.name.startswith("ttft") else 1


def _per(count: Callable[[Sizes], int], scale: float = 1.0
         ) -> Callable[[Metrics, Sizes], float]:
    return lambda raw, sizes: scale * count(sizes) / raw["seconds"]


def _each(count: Callable[[Sizes], int]) -> Callable[[Metrics, Sizes], float]:
    return lambda raw, sizes: 1e6 * raw["seconds"] / count(sizes)


def _raw(key: str, scale: float = 1.0) -> Callable[[Metrics, Sizes], float]:
    return lambda raw, sizes: scale * raw[key]


def _messages(mode: str, api: str) -> Workload:
    tokens: Callable[[Sizes], int] = lambda sizes: sizes.tokens  # noqa: E731
    return Workload(
        name=f"messages-{mode}", title=f"messages, {api}", entry=f"messages_{mode}",
        metrics=[Metric("tokens_per_s", "tokens/s", True, _per(tokens)),
                 Metric("us_per_token", "µs per token", False, _each(tokens))],
        targets=[Target("tokens_per_s", "≥ 10x the tokens/s", factor=10)],
        floors=[_floors.GENERATOR] if mode == "sync"
        else [_floors.ASYNC_GENERATOR, _floors.ASYNC_GENERATOR_SUSPENDING],
    )


def _updates(mode: str, api: str) -> Workload:
    return Workload(
        name=f"updates-{mode}", title=f"updates, {api}: sequential tool rounds",
        entry=f"updates_{mode}",
        metrics=[
            Metric("us_per_round", "µs per round", False, _raw("us_per_round")),
            Metric("first_us_per_round", "µs per round, first quarter", False,
                   _raw("first_us_per_round"), compared=False),
            Metric("last_us_per_round", "µs per round, last quarter", False,
                   _raw("last_us_per_round"), compared=False),
            Metric("growth", "last / first quarter", False,
                   lambda raw, sizes: raw["last_us_per_round"] / raw["first_us_per_round"],
                   compared=False),
        ],
        targets=[Target("us_per_round", "≥ 10x faster per round", factor=10),
                 Target("growth", f"flat: last/first ≤ {FLAT_LIMIT}", limit=FLAT_LIMIT)],
    )


def _custom(mode: str, api: str) -> Workload:
    events: Callable[[Sizes], int] = lambda sizes: sizes.events  # noqa: E731
    return Workload(
        name=f"custom-{mode}", title=f"custom, {api}: a tool calling its writer",
        entry=f"custom_{mode}",
        metrics=[Metric("events_per_s", "events/s", True, _per(events)),
                 Metric("us_per_event", "µs per event", False, _each(events))],
        targets=[Target("events_per_s", "≥ 5x the events/s", factor=5)],
    )


def _ttft(mode: str, api: str) -> Workload:
    return Workload(
        name=f"ttft-{mode}", title=f"time to first token, {api}", entry=f"ttft_{mode}",
        metrics=[Metric("ms", "ms to first token", False, _raw("seconds", 1e3))],
        targets=[Target("ms", "≥ 5x lower", factor=5)],
    )


WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    _messages("sync", "stream()"),
    _messages("async", "astream()"),
    _updates("sync", "stream()"),
    _updates("async", "astream()"),
    _custom("sync", "stream()"),
    _custom("async", "astream()"),
    _ttft("sync", "stream()"),
    _ttft("async", "astream()"),
    Workload(
        name="concurrency", title="concurrent astream() runs, asyncio.gather",
        entry="concurrent_run", isolated=True,
        metrics=[Metric("wall_s", "wall time, s", False, _raw("wall_s")),
                 Metric("kib_per_run", "peak RSS growth per run, KiB", False,
                        _raw("kib_per_run"))],
        targets=[Target("wall_s", "≥ 5x faster", factor=5),
                 Target("kib_per_run", f"≤ {MEMORY_LIMIT_KIB:g} KiB per run",
                        limit=MEMORY_LIMIT_KIB)],
        floors=[_floors.ASYNC_GENERATOR_SUSPENDING],
    ),
]}
SLOW_CONSUMER = "slow-consumer"
FAMILIES = {"messages", "updates", "custom", "ttft"}


def _sizes_note(workload: Workload, sizes: Sizes) -> str:
    family = workload.name.split("-")[0]
    quarter = max(1, sizes.rounds // 4)
    each = f", median of {sizes.samples} runs per repetition" if sizes.samples > 1 else ""
    return {
        "messages": f"{sizes.tokens:,} tokens{each}",
        "updates": f"{sizes.rounds:,} rounds (quarters of {quarter}){each}",
        "custom": f"{sizes.events:,} writer calls{each}",
        "ttft": f"{sizes.ttft_tokens:,}-token answer, {sizes.ttft_samples} samples per "
                f"repetition after {sizes.ttft_warmup} warm-up",
        "concurrency": f"{sizes.runs:,} runs x {sizes.run_tokens:,} tokens, a fresh process "
                       "per library and repetition",
    }[family]


# -- the contenders: a runner per library (or a note why there is none) -----------------------


@dataclass
class Contender:
    label: str
    kind: str  # "rxagent" | "reference" | "floor"
    api: str
    build: Callable[[], Runner] | None
    note: str = ""


def _load_libraries(wanted: Sequence[str]) -> tuple[dict[str, ModuleType], dict[str, str]]:
    modules: dict[str, ModuleType] = {}
    missing: dict[str, str] = {}
    for label, module_name in LIBRARIES.items():
        if label not in wanted:
            continue
        try:
            modules[label] = importlib.import_module(module_name)
        except ImportError as error:
            if label == "rxagent":
                raise
            missing[label] = f"not installed ({error.name}): pip install -e '.[bench]'"
    return modules, missing


def _args(workload: Workload, sizes: Sizes) -> tuple[Any, ...]:
    """What each library's entry for ``workload`` is called with (the same for all of them)."""
    family = workload.name.split("-")[0]
    if family == "updates":
        return (sizes.rounds,)
    if family == "custom":
        return (sizes.events,)
    count = {"messages": sizes.tokens, "ttft": sizes.ttft_tokens}.get(family, sizes.run_tokens)
    return (make_tokens(count),)


def _contenders(workload: Workload, sizes: Sizes, modules: dict[str, ModuleType],
                missing: dict[str, str], with_floors: bool) -> list[Contender]:
    args = _args(workload, sizes)
    found: list[Contender] = []
    for label in LIBRARIES:
        kind = "rxagent" if label == "rxagent" else "reference"
        if label in missing:
            found.append(Contender(label, kind, "", None, missing[label]))
        if label not in modules:
            continue
        module = modules[label]
        api = module.API.get(workload.name, "")
        if workload.isolated:
            found.append(Contender(label, kind, api, _isolated(label, sizes)))
            continue
        entry = getattr(module, workload.entry, None)
        if entry is None:
            note = getattr(module, "NOT_AVAILABLE", {}).get(workload.name, "n/a")
            found.append(Contender(label, kind, "", None, f"n/a: {note}"))
        else:
            found.append(Contender(label, kind, api, _bind(entry, args)))
    if with_floors:
        for floor in workload.floors:
            found.append(Contender(floor, "floor", floor, _floor_runner(workload, floor, sizes,
                                                                         args)))
    return found


def _bind(entry: Callable[..., Runner], args: tuple[Any, ...]) -> Callable[[], Runner]:
    return lambda: entry(*args)


def _floor_runner(workload: Workload, floor: str, sizes: Sizes, args: tuple[Any, ...]
                  ) -> Callable[[], Runner]:
    if workload.isolated:
        return _isolated("floors", sizes)
    if workload.name == "messages-sync":
        return lambda: _floors.messages_sync(*args)
    suspend = floor == _floors.ASYNC_GENERATOR_SUSPENDING
    return lambda: _floors.messages_async(*args, suspend=suspend)


# -- concurrency: one fresh process per library and repetition --------------------------------


def _isolated(label: str, sizes: Sizes) -> Callable[[], Runner]:
    def run() -> Metrics:
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--concurrency-worker", label,
             "--runs", str(sizes.runs), "--run-tokens", str(sizes.run_tokens)],
            capture_output=True, text=True,
        )
        if result.returncode:
            raise RuntimeError(f"the {label} concurrency worker failed:\n{result.stderr}")
        metrics: Metrics = json.loads(result.stdout.strip().splitlines()[-1])
        return metrics

    return lambda: run


def concurrency_worker(label: str, runs: int, run_tokens: int) -> Metrics:
    """In a fresh process: ``runs`` concurrent runs of ``label``; wall time, peak RSS growth."""
    module = _floors if label == "floors" else importlib.import_module(LIBRARIES[label])
    tokens = make_tokens(run_tokens)
    one = module.concurrent_run(tokens)

    async def together(count: int) -> float:
        start = time.perf_counter()
        delivered = await asyncio.gather(*(one() for _ in range(count)))
        elapsed = time.perf_counter() - start
        if delivered != [4 * run_tokens] * count:
            raise AssertionError(f"{label}: a run lost tokens")
        return elapsed

    asyncio.run(together(min(runs, 20)))  # warm up: imports, first-call caches
    gc.collect()
    before = reset_peak_rss()
    wall = asyncio.run(together(runs))
    growth = peak_rss() - before
    return {"wall_s": wall, "kib_per_run": growth / runs, "rss_before_kib": before}


# -- running -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    contender: Contender
    reps: list[dict[str, float]] = field(default_factory=list)  # one per repetition

    def summary(self, key: str) -> tuple[float, float, float] | None:
        values = [rep[key] for rep in self.reps if key in rep]
        if not values:
            return None
        return statistics.median(values), min(values), max(values)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_workload(workload: Workload, contenders: list[Contender], sizes: Sizes, repeat: int
                 ) -> list[Outcome]:
    outcomes = [Outcome(c) for c in contenders]
    live = [(o, c.build()) for o, c in zip(outcomes, contenders, strict=True)
            if c.build is not None]
    for _ in range(workload.warmup(sizes)):
        for _outcome, runner in live:
            gc.collect()
            runner()
    samples = workload.samples(sizes)
    for rep in range(repeat):
        started = time.perf_counter()
        per_sample: dict[int, list[dict[str, float]]] = {id(o): [] for o, _ in live}
        for _ in range(samples):
            for outcome, runner in live:  # alternate: A, B, C, A, B, C, ...
                gc.collect()
                raw = runner()
                per_sample[id(outcome)].append(
                    {m.key: m.derive(raw, sizes) for m in workload.metrics}
                )
        for outcome, _ in live:
            values = per_sample[id(outcome)]
            outcome.reps.append({m.key: statistics.median(v[m.key] for v in values)
                                 for m in workload.metrics})
        _log(f"  {workload.name}: repetition {rep + 1}/{repeat} "
             f"({time.perf_counter() - started:.1f} s)")
    return outcomes


# -- ratios and targets ------------------------------------------------------------------------


def _better_factor(metric: Metric, ours: float, theirs: float) -> float:
    """How many times better rxagent is (above 1: better; below 1: worse)."""
    if metric.higher_is_better:
        return ours / theirs if theirs else float("inf")
    return theirs / ours if ours else float("inf")


def analyse(workload: Workload, outcomes: list[Outcome]) -> dict[str, Any]:
    by_label = {o.contender.label: o for o in outcomes if o.reps}
    ours = by_label.get("rxagent")
    rows: list[dict[str, Any]] = []
    for metric in workload.metrics:
        row: dict[str, Any] = {"metric": metric.key, "label": metric.label, "ratios": {}}
        references = {label: by_label[label].summary(metric.key)
                      for label in REFERENCES if label in by_label}
        refs = {label: s[0] for label, s in references.items() if s is not None}
        mine = ours.summary(metric.key) if ours else None
        if metric.compared and mine is not None and refs:
            for label, value in refs.items():
                row["ratios"][label] = _better_factor(metric, mine[0], value)
            pick = max if metric.higher_is_better else min
            best_label = pick(refs, key=lambda label: refs[label])
            row["best"] = best_label
            row["ratios"]["best"] = _better_factor(metric, mine[0], refs[best_label])
        rows.append(row)
    targets = []
    for target in workload.targets:
        row = next(r for r in rows if r["metric"] == target.metric)
        mine = ours.summary(target.metric) if ours else None
        verdict: dict[str, Any] = {"metric": target.metric, "text": target.text,
                                   "factor": target.factor, "limit": target.limit}
        if target.factor is not None:
            best = row["ratios"].get("best")
            verdict["value"] = best
            verdict["pass"] = None if best is None else best >= target.factor
        else:
            assert target.limit is not None
            verdict["value"] = None if mine is None else mine[0]
            verdict["pass"] = None if mine is None else mine[0] <= target.limit
        targets.append(verdict)
    return {"rows": rows, "targets": targets}


# -- reporting ---------------------------------------------------------------------------------


def _num(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _cell(summary: tuple[float, float, float] | None) -> str:
    if summary is None:
        return NOTHING
    median, low, high = summary
    return f"{_num(median)} ({_num(low)}{RANGE}{_num(high)})"


def _ratio(value: float | None) -> str:
    return NOTHING if value is None else f"{value:.2g}x" if value < 10 else f"{value:.0f}x"


def _verdict(target: dict[str, Any]) -> str:
    if target["pass"] is None:
        return f"{target['text']}: n/a (nothing to compare with)"
    value = target["value"]
    shown = _ratio(value) if target["factor"] is not None else _num(value)
    return f"{target['text']}: {shown} **{'PASS' if target['pass'] else 'FAIL'}**"


def _library_cell(outcome: Outcome | None, key: str) -> str:
    if outcome is None:
        return NOTHING
    if not outcome.reps:
        return "n/a" if outcome.contender.note.startswith("n/a") else "skipped"
    return _cell(outcome.summary(key))


def table(results: list[dict[str, Any]], markdown: bool) -> str:
    """One row per workload and metric; the libraries, the floors, the ratios, the targets."""
    lines = [
        "| workload | metric | rxagent | LangGraph | PydanticAI | floor | rxagent vs LangGraph "
        "| vs PydanticAI | vs the better | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        workload: Workload = result["workload"]
        outcomes: dict[str, Outcome] = {o.contender.label: o for o in result["outcomes"]}
        analysis = result["analysis"]
        for row in analysis["rows"]:
            key = row["metric"]
            cell = {label: _library_cell(outcomes.get(label), key) for label in LIBRARIES}
            floors = [f"{_cell(outcomes[f].summary(key))} ({f.removeprefix('floor: ')})"
                      for f in workload.floors if f in outcomes and outcomes[f].reps]
            ratios = row["ratios"]
            best = ratios.get("best")
            best_text = NOTHING if best is None else f"{_ratio(best)} ({row['best']})"
            verdicts = [_verdict(t) for t in analysis["targets"] if t["metric"] == key]
            lines.append(
                f"| {workload.name} | {row['label']} | {cell['rxagent']} | {cell['langgraph']} "
                f"| {cell['pydantic-ai']} | {'<br>'.join(floors) or NOTHING} "
                f"| {_ratio(ratios.get('langgraph'))} | {_ratio(ratios.get('pydantic-ai'))} "
                f"| {best_text} | {'<br>'.join(verdicts)} |"
            )
    text = "\n".join(lines)
    if not markdown:
        text = text.replace("<br>", "; ").replace("**", "")
    return text


def apis(results: list[dict[str, Any]]) -> str:
    lines = []
    for result in results:
        workload: Workload = result["workload"]
        parts = []
        for outcome in result["outcomes"]:
            c = outcome.contender
            if c.kind == "floor":
                continue
            parts.append(f"{c.label}: `{c.api}`" if c.build else f"{c.label}: {c.note}")
        lines.append(f"- **{workload.name}** ({result['sizes']}): " + "; ".join(parts))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = {}
    for name in ("rxagent", "reactivex", "anyio", "pydantic", "langgraph", "langchain",
                 "langchain-core", "pydantic-ai-slim", "psutil"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = "not installed"
    try:
        cores: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {
        "rxagent_source": _source_state(),
        "cpu": cpu,
        "cores": cores,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "packages": packages,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _source_state() -> str:
    """The commit rxagent was measured at, and whether its files had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(HERE.parent), *args], capture_output=True,
                              text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "rxagent")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes in rxagent/" if dirty else commit


def _slow_consumer(tokens: int) -> tuple[list[dict[str, Any]], str]:
    command = [sys.executable, str(HERE / "slow_consumer.py"), "--tokens", str(tokens)]
    rows = [json.loads(line) for line in subprocess.run(
        [*command, "--json"], check=True, capture_output=True, text=True,
    ).stdout.splitlines() if line.strip()]
    for row in rows:
        if row["delivered"] != row["tokens"]:
            raise AssertionError(f"slow consumer {row['variant']}: delivered {row['delivered']:,} "
                                 f"of {row['tokens']:,} tokens")
    lines = ["| variant | delivered | peak RSS growth | time |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| `{r['variant']}` | {r['delivered']:,} | {r['peak_rss_growth_mib']} MiB "
              f"| {r['seconds']} s |" for r in rows]
    return rows, "\n".join(lines)


def markdown_report(results: list[dict[str, Any]], info: dict[str, Any], args: Any,
                    slow: str | None, elapsed: float) -> str:
    packages = ", ".join(f"{name} {v}" for name, v in info["packages"].items())
    command = ".venv/bin/python bench/compare.py --markdown"
    extra = [f"--scale {args.scale:g}"] if args.scale != 1 else []
    extra += [f"--repeat {args.repeat}"] if args.repeat != 5 else []
    extra += [f"--samples {args.samples}"] if args.samples != 3 else []
    extra += [f"--workload {w}" for w in args.workload or []]
    extra += [f"--skip {w}" for w in args.skip]
    if extra:
        command += " " + " ".join(extra)
    load = info["load_average"]
    end = os.getloadavg() if hasattr(os, "getloadavg") else None
    parts = [
        "## rxagent, LangGraph and PydanticAI side by side",
        "",
        "```bash",
        ".venv/bin/pip install -e '.[bench]'",
        command,
        "```",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores; {info['python']} on "
        f"{info['platform']}. rxagent at {info['rxagent_source']}. Versions: {packages}."
        + (f" Load average at the start: {', '.join(f'{x:.2f}' for x in load)}" if load else "")
        + (f"; at the end: {', '.join(f'{x:.2f}' for x in end)}." if end else ""),
        "",
        f"Each cell is the median of {args.repeat} repetitions (min{RANGE}max), the libraries "
        "alternating within each repetition. Ratios are how many times better rxagent is "
        "(above 1x: better), against each library and against the better of the two; the "
        f"targets compare with the better of the two. The run took {elapsed:.0f} s.",
        "",
        table(results, markdown=True),
        "",
        "What each library ran:",
        "",
        apis(results),
    ]
    if slow is not None:
        parts += ["", "The slow-consumer benchmark (`bench/slow_consumer.py`, rxagent only):", "",
                  slow]
    return "\n".join(parts) + "\n"


def _json_report(results: list[dict[str, Any]], info: dict[str, Any], args: Any,
                 slow: list[dict[str, Any]] | None) -> str:
    document = {
        "machine": info,
        "repeat": args.repeat,
        "scale": args.scale,
        "workloads": [
            {
                "name": r["workload"].name,
                "sizes": r["sizes"],
                "contenders": [
                    {
                        "label": o.contender.label, "kind": o.contender.kind,
                        "api": o.contender.api, "note": o.contender.note, "reps": o.reps,
                        "summary": {m.key: o.summary(m.key) for m in r["workload"].metrics
                                    if o.reps},
                    }
                    for o in r["outcomes"]
                ],
                **r["analysis"],
            }
            for r in results
        ],
        "slow_consumer": slow,
    }
    return json.dumps(document, indent=1)


# -- profiling ---------------------------------------------------------------------------------


def profile(workload: Workload, sizes: Sizes, top: int) -> str:
    modules, _ = _load_libraries(["rxagent"])
    contender = _contenders(workload, sizes, modules, {}, with_floors=False)[0]
    assert contender.build is not None
    runner = contender.build()
    runner()  # warm up
    gc.collect()
    profiler = cProfile.Profile()
    profiler.runcall(runner)
    out = io.StringIO()
    for order in ("cumulative", "tottime"):
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(top)
    return out.getvalue()


# -- the command line --------------------------------------------------------------------------


def _selected(names: Sequence[str] | None) -> list[str]:
    if not names:
        return [*WORKLOADS, SLOW_CONSUMER]
    chosen: list[str] = []
    for name in names:
        if name in FAMILIES:
            chosen += [f"{name}-sync", f"{name}-async"]
        elif name in WORKLOADS or name == SLOW_CONSUMER:
            chosen.append(name)
        else:
            raise SystemExit(
                f"unknown workload {name!r}; choose from {sorted([*WORKLOADS, *FAMILIES])} "
                f"or {SLOW_CONSUMER!r}"
            )
    return list(dict.fromkeys(chosen))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="workloads: " + ", ".join([*WORKLOADS, SLOW_CONSUMER])
        + "; families: " + ", ".join(sorted(FAMILIES)),
    )
    parser.add_argument("--workload", action="append", metavar="NAME",
                        help="run only these (repeatable); default: all")
    parser.add_argument("--skip", action="append", metavar="NAME", default=[],
                        help="leave these out (repeatable), e.g. --skip slow-consumer")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every size (0.01: a smoke pass of a few seconds)")
    parser.add_argument("--library", action="append", choices=[*LIBRARIES, "floors"],
                        help="run only these (repeatable; rxagent always runs)")
    parser.add_argument("--samples", type=int, default=3,
                        help="runs per library in each repetition of messages, updates and "
                        "custom; a repetition is their median (default 3)")
    parser.add_argument("--ttft-samples", type=int, default=None,
                        help="time-to-first-token samples per repetition (default 40 x scale)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--markdown", action="store_true",
                        help="print the section for docs/benchmarks.md, machine info included")
    parser.add_argument("--output-json", metavar="PATH", type=Path,
                        help="also write the JSON results to PATH")
    parser.add_argument("--profile", action="store_true",
                        help="instead: cProfile rxagent's run of each selected workload")
    parser.add_argument("--top", type=int, default=15, help="functions per --profile listing")
    parser.add_argument("--concurrency-worker", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run-tokens", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.concurrency_worker:
        print(json.dumps(concurrency_worker(args.concurrency_worker, args.runs, args.run_tokens)))
        return 0
    if args.repeat < 1 or args.samples < 1 or args.scale <= 0:
        parser.error("--repeat and --samples must be at least 1 and --scale positive")
    sizes = Sizes().scaled(args.scale, args.ttft_samples, args.samples)
    skipped = set(_selected(args.skip)) if args.skip else set()
    names = [name for name in _selected(args.workload) if name not in skipped]

    if args.profile:
        for name in names:
            if name == SLOW_CONSUMER or WORKLOADS[name].isolated:
                _log(f"--profile: skipping {name} (it runs in other processes)")
                continue
            print(f"== rxagent, {name} ({_sizes_note(WORKLOADS[name], sizes)})")
            print(profile(WORKLOADS[name], sizes, args.top))
        return 0

    wanted = ["rxagent", *(args.library or [*LIBRARIES, "floors"])]
    modules, missing = _load_libraries(wanted)
    for label, note in missing.items():
        _log(f"skipping {label}: {note}")
    info = machine()
    started = time.perf_counter()
    results = []
    for name in names:
        if name == SLOW_CONSUMER:
            continue
        workload = WORKLOADS[name]
        _log(f"{name}: {_sizes_note(workload, sizes)}")
        contenders = _contenders(workload, sizes, modules, missing, "floors" in wanted)
        outcomes = run_workload(workload, contenders, sizes, args.repeat)
        results.append({"workload": workload, "sizes": _sizes_note(workload, sizes),
                        "outcomes": outcomes, "analysis": analyse(workload, outcomes)})
    slow_rows: list[dict[str, Any]] | None = None
    slow_table: str | None = None
    if SLOW_CONSUMER in names:
        _log(f"{SLOW_CONSUMER}: {sizes.slow_consumer_tokens:,} tokens, each variant in a fresh "
             "process (bench/slow_consumer.py)")
        slow_rows, slow_table = _slow_consumer(sizes.slow_consumer_tokens)
    elapsed = time.perf_counter() - started

    if args.output_json is not None:
        args.output_json.write_text(_json_report(results, info, args, slow_rows) + "\n")
    if args.json:
        print(_json_report(results, info, args, slow_rows))
    elif args.markdown:
        print(markdown_report(results, info, args, slow_table, elapsed))
    else:
        print(f"{info['cpu']}, {info['cores']} cores, {info['python']}; "
              f"{args.repeat} repetitions, scale {args.scale:g}, {elapsed:.0f} s\n")
        print(table(results, markdown=False))
        print("\n" + apis(results).replace("**", ""))
        if slow_table is not None:
            print("\nslow consumer (bench/slow_consumer.py):\n" + slow_table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
