"""Speed on the real wire: each library streaming from a loopback server, per token.

    python bench/providers.py                      # the table, 20,000-token replies
    python bench/providers.py --only rxagent       # rxagent's rows (and the floors)
    python bench/providers.py --tokens 2000 --repeat 1 --concurrency 20 --json

A server in its own process (``_providers_server``) streams pre-rendered replies in OpenAI's
chat-completions SSE and Anthropic's messages SSE (``_providers_wire``): text replies of N
tokens and tool calls whose arguments arrive in N pieces. Against it, per wire format and kind
of reply, sync and async:

- the floor (``_providers_floor``): httpx, a split on blank lines, ``json.loads`` per event;
- the official ``openai`` / ``anthropic`` SDKs (``_providers_sdks``);
- LangChain's ``ChatOpenAI`` / ``ChatAnthropic``, alone and in ``create_agent``
  (``_providers_langchain``);
- PydanticAI's models, alone and in an ``Agent`` (``_providers_pydantic_ai``);
- rxagent's ``ChatOpenAI`` / ``ChatAnthropic``, alone and in ``create_agent``
  (``_providers_rxagent``).

Every run is checked: the text must equal the text sent and the tool call's arguments the
arguments sent, or the row fails (shown in the table, and the exit status is 1). The figure
is microseconds per token, the best of ``--repeat`` runs, the rows taking turns within each
repeat so that a slow minute of the machine hits every library alike; the ratio is to the
floor of the same wire, kind and mode (sync or async). On a machine shared with other work,
raise ``--repeat``: a run that shares its core with another process (the server's, or a
stranger's) is about twice as slow, floor and libraries alike, and the best of three is not
always clear of it (``--json`` keeps every run's figure, to see the spread).

Then the concurrency rows (``_providers_concurrency``): 200 and 1,000 agent runs at once of
500 tokens each, one fresh process per library and size: wall time and peak resident memory
growth.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import inspect
import json
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _providers_wire as wire  # noqa: E402
from _providers_concurrency import LIBRARIES as CONCURRENT_LIBRARIES  # noqa: E402
from _providers_rows import Delivered, Row  # noqa: E402
from _providers_server import Server, raise_open_files_limit  # noqa: E402


class DeliveryError(AssertionError):
    """A run did not deliver exactly what the server sent: the row is invalid."""


# Each library's module, in table order. The peers come with the ``bench`` extra; the test
# extra (what CI installs) has none of them, so a module that cannot be imported is skipped,
# said on stderr and in the JSON, rather than failing the floor's and rxagent's rows.
_MODULES = ("_providers_floor", "_providers_sdks", "_providers_langchain",
            "_providers_pydantic_ai", "_providers_rxagent")
# What the concurrency rows of each library import.
_CONCURRENT_NEEDS = {"rxagent": ("rxagent",), "langchain": ("langchain", "langchain_openai"),
                     "pydantic-ai": ("pydantic_ai", "openai")}


def _library_modules(skipped: list[str]) -> list[Callable[[int, str, str, int], list[Row]]]:
    makers = []
    for name in _MODULES:
        try:
            # Imported here, not at the top: each pulls in its library, which takes a while.
            module = importlib.import_module(name)
        except ImportError as error:
            skipped.append(f"{name}: {error} (pip install -e '.[bench]')")
            print(f"skipped {skipped[-1]}", file=sys.stderr)
            continue
        makers.append(module.rows)
    return makers


def _installed(modules: tuple[str, ...]) -> bool:
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


@dataclass
class Result:
    row: Row
    seconds: list[float] = field(default_factory=list)
    error: str | None = None


def check(row: Row, got: Delivered, count: int) -> None:
    """Raise :class:`DeliveryError` unless ``got`` is exactly what the server sent."""
    want = wire.expected(row.kind, count, agent=row.level == "agent")
    text, args = "".join(got.text), "".join(got.args)
    if text != want.text:
        raise DeliveryError(f"{row.name}: text of {len(text):,} characters, expected "
                            f"{len(want.text):,} (starts {text[:40]!r})")
    if args != want.args:
        raise DeliveryError(f"{row.name}: arguments of {len(args):,} characters, expected "
                            f"{len(want.args):,} (starts {args[:40]!r})")


def time_once(row: Row, runner: asyncio.Runner) -> tuple[float, Delivered]:
    """One run of ``row``: its seconds and what it delivered. Async rows run on one event loop
    kept for the whole benchmark, so that clients and pools bound to a loop stay valid; the
    clock starts inside it."""
    if inspect.iscoroutinefunction(row.run):
        async def timed() -> tuple[float, Delivered]:
            start = time.perf_counter()
            got = await row.run()  # type: ignore[misc]
            return time.perf_counter() - start, got

        return runner.run(timed())
    start = time.perf_counter()
    got = row.run()
    return time.perf_counter() - start, got  # type: ignore[return-value]


def measure(rows: list[Row], count: int, repeat: int, runner: asyncio.Runner,
            progress: bool) -> list[Result]:
    results = [Result(row) for row in rows]
    for rep in range(repeat):
        for result in results:
            if result.error is not None:
                continue
            try:
                seconds, got = time_once(result.row, runner)
                check(result.row, got, count)
            except Exception as error:  # the row fails, loudly, and the others go on
                result.error = f"{type(error).__name__}: {error}"
                print(f"FAILED {result.row.name}:\n{traceback.format_exc()}", file=sys.stderr)
                continue
            result.seconds.append(seconds)
            if progress:
                print(f"  [{rep + 1}/{repeat}] {result.row.name}: "
                      f"{1e6 * seconds / count:,.2f} us/token", file=sys.stderr, flush=True)
    return results


def selected(rows: list[Row], only: list[str]) -> list[Row]:
    """The rows whose name contains one of ``only``, plus the floors they are compared with."""
    if not only:
        return rows
    keep = [row for row in rows if any(word in row.name for word in only)]
    floors = {(r.wire, r.kind, r.mode) for r in keep}
    return [row for row in rows if row in keep or
            (row.library == "floor" and (row.wire, row.kind, row.mode) in floors)]


def table(results: list[Result], count: int) -> str:
    floors = {(r.row.wire, r.row.kind, r.row.mode): min(r.seconds)
              for r in results if r.row.library == "floor" and r.seconds}
    lines = ["| wire | reply | level | mode | library | API | us/token | x floor |",
             "|---|---|---|---|---|---|---:|---:|"]
    for r in results:
        row = r.row
        if r.error is not None or not r.seconds:
            figure, ratio = f"FAILED: {r.error}", ""
        else:
            best = min(r.seconds)
            figure = f"{1e6 * best / count:,.2f}"
            floor = floors.get((row.wire, row.kind, row.mode))
            ratio = f"{best / floor:.2f}x" if floor else ""
        lines.append(f"| {row.wire} | {row.kind} | {row.level} | {row.mode} | {row.library} | "
                     f"`{row.api}` | {figure} | {ratio} |")
    return "\n".join(lines)


def concurrency(port: int, sizes: list[int], tokens: int, libraries: list[str]
                ) -> list[dict[str, Any]]:
    """One fresh process per library and size, so that no peak carries over."""
    rows = []
    for runs in sizes:
        for library in libraries:
            done = subprocess.run(
                [sys.executable, str(HERE / "_providers_concurrency.py"), library, str(runs),
                 str(tokens), str(port)],
                capture_output=True, text=True, timeout=1800,
            )
            if done.returncode != 0:
                print(f"FAILED concurrency {library} x{runs}:\n{done.stderr}", file=sys.stderr)
                rows.append({"library": library, "runs": runs, "tokens": tokens,
                             "error": done.stderr.strip().splitlines()[-1:]})
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def concurrency_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| runs x tokens | library | API | wall (s) | peak RSS growth (MiB) | KiB/run |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['runs']:,} x {r['tokens']} | {r['library']} | | FAILED: "
                         f"{r['error']} | | |")
            continue
        lines.append(f"| {r['runs']:,} x {r['tokens']} | {r['library']} | `{r['api']}` | "
                     f"{r['wall_s']:.2f} | {r['peak_rss_growth_mib']:.1f} | "
                     f"{r['kib_per_run']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=20_000, help="tokens per reply")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best counts")
    parser.add_argument("--only", action="append", default=[],
                        help="keep rows whose name (wire-kind-level-mode-library) contains "
                             "this; repeatable (the floors they need are kept)")
    parser.add_argument("--concurrency", type=int, action="append",
                        help="concurrent agent runs (default: 200 and 1000; 0: none)")
    parser.add_argument("--concurrency-tokens", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    sizes = [n for n in (args.concurrency or [200, 1000]) if n > 0]
    raise_open_files_limit()

    skipped: list[str] = []
    makers = _library_modules(skipped)
    with Server() as server, asyncio.Runner() as runner:
        rows = [row for wire_name in wire.WIRES for kind in wire.KINDS for make in makers
                for row in make(server.port, wire_name, kind, args.tokens)]
        rows = selected(rows, args.only)
        results = measure(rows, args.tokens, args.repeat, runner, not args.quiet)
        libraries = []
        for lib in CONCURRENT_LIBRARIES:
            if args.only and not any(word in lib for word in args.only):
                continue
            if not _installed(_CONCURRENT_NEEDS[lib]):
                skipped.append(f"concurrency {lib}: not installed (pip install -e '.[bench]')")
                continue
            libraries.append(lib)
        concurrent = concurrency(server.port, sizes, args.concurrency_tokens, libraries)

    failed = any(r.error is not None for r in results) or any("error" in c for c in concurrent)
    if args.json:
        print(json.dumps({
            "tokens": args.tokens, "repeat": args.repeat,
            "rows": [{"name": r.row.name, "wire": r.row.wire, "kind": r.row.kind,
                      "level": r.row.level, "mode": r.row.mode, "library": r.row.library,
                      "api": r.row.api, "error": r.error,
                      "us_per_token": [1e6 * s / args.tokens for s in r.seconds]}
                     for r in results],
            "concurrency": concurrent,
            "skipped": skipped,
        }))
    else:
        print(f"{args.tokens:,} tokens per reply, best of {args.repeat}; "
              f"{datetime.datetime.now():%Y-%m-%d %H:%M}, Python {platform.python_version()}\n")
        print(table(results, args.tokens))
        if concurrent:
            print()
            print(concurrency_table(concurrent))
        if skipped:
            print("\nskipped:\n" + "\n".join(f"- {line}" for line in skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
