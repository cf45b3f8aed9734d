"""A consumer much slower than the run: does memory stay flat, and is every token delivered?

Each variant runs in a fresh process: a model streams ``--tokens`` tokens of four characters
("0000", "0001", ... counting modulo 10,000), a typical token's length, as fast as it is asked
for them. The consumer checks each token's number (none lost, none out of order) and then burns
``--work`` loop iterations, so it is several times slower than the producer. Peak RSS growth is
the process's peak resident size at the end minus before the run. It includes the answer
itself: the agent keeps its final message (4 bytes a token, and a second copy for a moment
while the pieces are joined), as every agent does.

    python bench/slow_consumer.py                       # 1,000,000 tokens, every variant
    python bench/slow_consumer.py --tokens 2000         # a smoke pass
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import reactivex.operators as ops
from reactivex.scheduler import ThreadPoolScheduler

from rxagent import create_agent
from rxagent import operators as rxo
from rxagent.testing import FunctionChatModel

VARIANTS: dict[str, str] = {
    "stream": "agent.stream(stream_mode='messages'): the iterator's buffer, 'pause' (default)",
    "astream": "agent.astream(stream_mode='messages') on asyncio, 'pause' (default)",
    "rx-pause": "observe().pipe(backpressure(256, 'pause')) to a slow Rx subscriber",
    "rx-unbounded": "observe().pipe(ops.observe_on(pool)) to a slow Rx subscriber (Rx's own)",
    "stream-unbounded": "agent.stream(..., max_buffer=10**9): the iterator, unbounded",
}
QUESTION = {"messages": ["Count for me."]}


def agent_streaming(tokens: int) -> Any:
    def count(messages: Any, tools: Any) -> Iterator[str]:
        for i in range(tokens):
            yield f"{i % 10_000:04d}"

    return create_agent(FunctionChatModel(count))


class Consumer:
    """Checks that tokens arrive complete and in order, slowly."""

    def __init__(self, work: int) -> None:
        self.work = range(work)
        self.expected = 0

    def take(self, text: str) -> None:
        if text:
            if text != f"{self.expected % 10_000:04d}":
                raise AssertionError(f"token {self.expected} lost: got {text!r}")
            self.expected += 1
        for _ in self.work:
            pass


def run_stream(agent: Any, consumer: Consumer, max_buffer: int) -> None:
    for chunk, _ in agent.stream(QUESTION, stream_mode="messages", max_buffer=max_buffer):
        consumer.take(chunk.text)


def run_astream(agent: Any, consumer: Consumer) -> None:
    async def main() -> None:
        async for chunk, _ in agent.astream(QUESTION, stream_mode="messages"):
            consumer.take(chunk.text)

    asyncio.run(main())


def run_rx(agent: Any, consumer: Consumer, buffer: Callable[[Any], Any]) -> None:
    done = threading.Event()
    failure: list[Exception] = []
    agent.observe(QUESTION).pipe(buffer, rxo.text()).subscribe(
        consumer.take, lambda error: (failure.append(error), done.set()), done.set
    )
    done.wait()
    if failure:
        raise failure[0]


def measure(variant: str, tokens: int, work: int) -> dict[str, Any]:
    run: Callable[[Any, Consumer], None]
    if variant == "stream":
        run = lambda agent, consumer: run_stream(agent, consumer, 256)  # noqa: E731
    elif variant == "stream-unbounded":
        run = lambda agent, consumer: run_stream(agent, consumer, 10**9)  # noqa: E731
    elif variant == "astream":
        run = run_astream
    elif variant == "rx-pause":
        run = lambda agent, consumer: run_rx(agent, consumer, rxo.backpressure(256))  # noqa: E731
    elif variant == "rx-unbounded":
        pool = ThreadPoolScheduler(1)
        run = lambda agent, consumer: run_rx(agent, consumer, ops.observe_on(pool))  # noqa: E731
    else:
        raise SystemExit(f"unknown variant {variant!r}; choose from {list(VARIANTS)}")
    run(agent_streaming(100), Consumer(work))  # warm up: imports, the event loop, the pool
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    consumer = Consumer(work)
    start = time.perf_counter()
    run(agent_streaming(tokens), consumer)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "variant": variant,
        "tokens": tokens,
        "delivered": consumer.expected,
        "peak_rss_growth_mib": round((peak - before) / 1024, 1),
        "seconds": round(elapsed, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--work", type=int, default=400,
                        help="loop iterations the consumer burns per token (default 400)")
    parser.add_argument("--variant", choices=list(VARIANTS), action="append",
                        help="run only these (repeatable); default: all, each in a fresh process")
    parser.add_argument("--json", action="store_true", help="print one JSON line per variant")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    variants = args.variant or list(VARIANTS)
    if args.in_process:
        for variant in variants:
            print(json.dumps(measure(variant, args.tokens, args.work)), flush=True)
        return 0
    rows = []
    for variant in variants:  # a fresh process each, so one variant's peak can't hide another's
        out = subprocess.run(
            [sys.executable, __file__, "--in-process", "--variant", variant,
             "--tokens", str(args.tokens), "--work", str(args.work)],
            check=True, capture_output=True, text=True,
        ).stdout
        rows.append(json.loads(out))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"{args.tokens:,} tokens, consumer work {args.work} loop iterations per token; the "
          f"answer's text alone is {args.tokens * 4 / 2**20:.1f} MiB\n")
    print("| variant | delivered | peak RSS growth | time |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print(f"| `{row['variant']}`: {VARIANTS[row['variant']]} | {row['delivered']:,} "
              f"| {row['peak_rss_growth_mib']} MiB | {row['seconds']} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
