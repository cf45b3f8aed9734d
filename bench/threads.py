"""A 50-turn conversation on one thread, per step, for each saver: rxagent beside LangGraph.

    python bench/threads.py                          # every saver there is, both APIs
    python bench/threads.py --saver memory --api invoke --repeat 5
    python bench/threads.py --turns 3 --tokens 5 --repeat 1 --json     # a smoke pass

Each turn on the thread (``_threads_script``): the user asks; the model calls a tool; the tool
answers; the model answers in ``--tokens`` text tokens. Three steps a turn (model, tools,
model) and four messages, so the history grows by four messages a turn and the model is given
all of it each call. Each library has an in-memory fake model of its own kind
(``_threads_rxagent``, ``_threads_langgraph``) that streams each answer one chunk per token
(LangChain's made with ``streaming=True``, so ``invoke`` streams it too; ``--whole-answers``
gives both the answer in one piece, and LangChain then calls ``_generate``). Each library has
its own saver of the same kind:

- ``memory``: ``rxagent.checkpoint.InMemorySaver`` / ``langgraph.checkpoint.memory.InMemorySaver``;
- ``sqlite``: ``rxagent.checkpoint.sqlite.SqliteSaver(path)`` / LangGraph's ``SqliteSaver`` (from
  ``langgraph-checkpoint-sqlite``) over ``sqlite3.connect(path, check_same_thread=False)``, a
  fresh file in a temporary directory per conversation; both in WAL mode with
  ``synchronous=NORMAL`` (rxagent's setting; LangGraph's connection is given it, in place of
  SQLite's default ``FULL``, which adds an fsync per commit);
- ``redis``: ``rxagent.checkpoint.redis.RedisSaver`` on a ``redis-server`` started here on a free
  loopback port (when the binary is there), with no LangGraph peer.

Each turn is timed, one call of the API (``invoke``, or ``stream(stream_mode="updates")``
consumed to its end), with the saver's writes included (``--durability``, the same flag in both
libraries; ``async`` is the default in both). Reported: microseconds per step in the first ten
turns and in the last ten (the median turn of each, over its three steps), how many times
faster rxagent is than LangGraph (LangGraph's time over rxagent's), and the growth (last ten
over first ten). Each cell is the median of ``--repeat`` conversations (min-max), the libraries
taking turns within each repetition and the first to go alternating between repetitions. Every
conversation is checked: each model call was given the whole history (its length, the first
question and the previous full answer), each ``invoke`` returned four messages a turn, and the
thread's state at the end holds them all; a conversation that fails a check stops the run.

A saver that cannot be imported (``langgraph-checkpoint-sqlite`` is in the ``bench`` extra, not
in ``test``) is skipped and listed, as ``bench/providers.py`` does for missing peers.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _threads_script import STEPS_PER_TURN

HERE = Path(__file__).resolve().parent
SAVERS = ("memory", "sqlite", "redis")
APIS = ("invoke", "stream")
API_CALL = {"invoke": "invoke()", "stream": "stream(stream_mode='updates')"}
LIBRARIES = {"rxagent": "_threads_rxagent", "langgraph": "_threads_langgraph"}
SPEED_TARGET = 5.0  # rxagent at least this many times faster per step
FLAT_LIMIT = 1.10  # the last turns no dearer per step than the first (a tenth for noise)
RANGE = "\N{EN DASH}"

Conversation = Callable[..., list[float]]


@dataclass
class Cell:
    """One library on one saver and API: per repetition, µs per step in each window (the
    median turn of the window, divided by its steps: a turn that shared its core with another
    process does not move it, a cost that grows with the history does)."""

    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    overall: list[float] = field(default_factory=list)

    def add(self, durations: list[float], window: int) -> None:
        per_step = [1e6 * seconds / STEPS_PER_TURN for seconds in durations]
        self.first.append(statistics.median(per_step[:window]))
        self.last.append(statistics.median(per_step[-window:]))
        self.overall.append(statistics.median(per_step))

    def growth(self) -> list[float]:
        return [b / a for a, b in zip(self.first, self.last, strict=True)]


# -- savers ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway ``redis-server`` on loopback (no persistence), or None without the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Places:
    """Where each conversation's saver lives: a fresh SQLite file, a fresh Redis key prefix."""

    def __init__(self, directory: str, redis_url: str | None) -> None:
        self.directory = directory
        self.redis_url = redis_url
        self.count = 0

    def fresh(self) -> dict[str, Any]:
        self.count += 1
        return {
            "path": os.path.join(self.directory, f"threads-{self.count}.db"),
            "redis_url": self.redis_url,
            "prefix": f"bench{self.count}:",
        }


def _contenders(
    savers: list[str], places: Places, skipped: list[str],
) -> dict[str, dict[str, Conversation]]:
    """saver -> library -> its ``conversation``, for what can run here; the rest in skipped."""
    modules = {}
    for library, module in LIBRARIES.items():
        try:
            modules[library] = importlib.import_module(module)
        except ImportError as error:
            skipped.append(f"{library}: {error} (pip install -e '.[bench]')")
    found: dict[str, dict[str, Conversation]] = {}
    for saver in savers:
        if saver == "redis" and places.redis_url is None:
            skipped.append("redis: no redis-server binary on PATH")
            continue
        for library, module in modules.items():
            if saver == "redis" and library != "rxagent":
                skipped.append(f"redis, {library}: no peer measured (rxagent only)")
                continue
            try:  # opening one shows whether the saver's package is there
                _, close = module.open_saver(saver, places.fresh())
                close()
            except ImportError as error:
                skipped.append(f"{saver}, {library}: {error}")
                continue
            found.setdefault(saver, {})[library] = module.conversation
    return found


# -- the run -----------------------------------------------------------------------------------


def measure(args: argparse.Namespace, places: Places, skipped: list[str]) -> dict[Any, Cell]:
    contenders = _contenders(args.saver, places, skipped)
    size = {"turns": args.turns, "tokens": args.tokens, "durability": args.durability,
            "whole": args.whole_answers}
    window = min(args.window, args.turns)
    for saver, libraries in contenders.items():  # warm-up: imports, first calls, caches
        for conversation in libraries.values():
            for api in args.api:
                conversation(saver, places.fresh(), **{**size, "turns": min(3, args.turns)},
                             api=api)
    cells: dict[Any, Cell] = {}
    for rep in range(args.repeat):
        for saver, libraries in contenders.items():
            for api in args.api:
                order = list(libraries.items())
                if rep % 2:
                    order.reverse()
                for library, conversation in order:
                    durations = conversation(saver, places.fresh(), **size, api=api)
                    cells.setdefault((saver, api, library), Cell()).add(durations, window)
                    if not args.quiet:
                        cell = cells[(saver, api, library)]
                        print(f"rep {rep + 1}: {saver:6} {api:6} {library:9} "
                              f"{cell.first[-1]:9,.0f} -> {cell.last[-1]:9,.0f} µs/step",
                              file=sys.stderr)
    return cells


# -- the report --------------------------------------------------------------------------------


def _figure(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 1 else f"{value:.2f}"


def _cell(values: list[float], unit: str = "") -> str:
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{_figure(middle)}{unit}"
    return f"{_figure(middle)}{unit} ({_figure(min(values))}{RANGE}{_figure(max(values))})"


def _ratios(theirs: list[float], ours: list[float]) -> list[float]:
    return [b / a for a, b in zip(ours, theirs, strict=True)]


def table(cells: dict[Any, Cell], args: argparse.Namespace) -> list[str]:
    window = min(args.window, args.turns)
    first = f"1{RANGE}{window}"
    last = f"{args.turns - window + 1}{RANGE}{args.turns}"
    lines = [
        f"| saver | API | library | µs per step, turns {first} | turns {last} | all turns "
        f"| growth ({last} / {first}) | rxagent faster, turns {first} | turns {last} "
        f"| all turns | targets |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    keys = sorted({(saver, api) for saver, api, _ in cells},
                  key=lambda k: (SAVERS.index(k[0]), APIS.index(k[1])))
    for saver, api in keys:
        ours = cells.get((saver, api, "rxagent"))
        theirs = cells.get((saver, api, "langgraph"))
        for library, cell in (("rxagent", ours), ("LangGraph", theirs)):
            if cell is None:
                continue
            speed = ["", "", ""]
            verdict = ""
            if library == "rxagent":
                growth = statistics.median(cell.growth())
                verdicts = [f"flat (≤ {FLAT_LIMIT}): {growth:.2f} "
                            f"**{'PASS' if growth <= FLAT_LIMIT else 'FAIL'}**"]
                if theirs is not None:
                    pairs = [(cell.first, theirs.first), (cell.last, theirs.last),
                             (cell.overall, theirs.overall)]
                    speed = [_cell(_ratios(t, o), "x") for o, t in pairs]
                    slowest = min(statistics.median(_ratios(t, o)) for o, t in pairs)
                    verdicts.insert(0, f"≥ {SPEED_TARGET:g}x in every window: {slowest:.1f}x "
                                       f"**{'PASS' if slowest >= SPEED_TARGET else 'FAIL'}**")
                verdict = "<br>".join(verdicts)
            lines.append(
                f"| {saver} | `{API_CALL[api]}` | {library} | {_cell(cell.first)} "
                f"| {_cell(cell.last)} | {_cell(cell.overall)} | {_cell(cell.growth(), 'x')} "
                f"| {' | '.join(speed)} | {verdict} |"
            )
    return lines


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("rxagent", "langgraph", "langchain", "langchain-core", "langgraph-checkpoint",
                    "langgraph-checkpoint-sqlite", "redis"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{package} {version(package)}")
    return ", ".join(found)


def _machine() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                            capture_output=True, text=True).stdout.strip() or "?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{os.cpu_count()} cores; CPython {platform.python_version()} on "
            f"{platform.platform()}; rxagent at {commit}. Versions: {_versions()}. "
            f"Load average at the end: {load}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=200, help="text tokens per answer")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", type=int, default=10, help="turns in the first/last window")
    parser.add_argument("--saver", action="append", choices=SAVERS,
                        help="repeatable; default: every one that can run here")
    parser.add_argument("--api", action="append", choices=APIS, help="repeatable; default: both")
    parser.add_argument("--durability", choices=("sync", "async", "exit"), default="async")
    parser.add_argument("--whole-answers", action="store_true",
                        help="models answer in one piece instead of one chunk per token")
    parser.add_argument("--json", action="store_true", help="every figure, as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    args.saver = args.saver or list(SAVERS)
    args.api = args.api or list(APIS)
    if args.turns < 1 or args.tokens < 1 or args.repeat < 1 or args.window < 1:
        parser.error("--turns, --tokens, --repeat and --window are at least 1")

    skipped: list[str] = []
    start = time.perf_counter()
    redis = redis_server() if "redis" in args.saver else contextlib.nullcontext(None)
    with tempfile.TemporaryDirectory() as directory, redis as redis_url:
        places = Places(directory, redis_url)
        cells = measure(args, places, skipped)
    elapsed = time.perf_counter() - start
    if args.json:
        print(json.dumps({
            "turns": args.turns, "tokens": args.tokens, "repeat": args.repeat,
            "durability": args.durability, "window": min(args.window, args.turns),
            "whole_answers": args.whole_answers,
            "rows": [{"saver": saver, "api": api, "library": library, "first_us": cell.first,
                      "last_us": cell.last, "all_us": cell.overall}
                     for (saver, api, library), cell in cells.items()],
            "skipped": skipped, "seconds": elapsed,
        }))
        return 0
    pieces = "in one piece" if args.whole_answers else "one chunk per token"
    print(f"{args.turns} turns, {args.tokens} tokens per answer ({pieces}), "
          f"{STEPS_PER_TURN} steps a turn, "
          f"durability={args.durability!r}; median of {args.repeat} (min{RANGE}max); "
          f"{elapsed:.0f} s.\n")
    print("\n".join(table(cells, args)))
    print(f"\n{_machine()}")
    if skipped:
        print("\nskipped:\n" + "\n".join(f"- {line}" for line in skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
