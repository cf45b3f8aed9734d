"""Where a quick sync tool should run: in a worker thread, in place on the event loop, or learned.

The workload is ``updates`` over sequential tool rounds (the model calls one quick sync tool per
round, as the seed's ``get_weather``), through ``stream()`` and ``astream()``. Each placement
runs the same agent, alternating placements within each repetition, and the figure is the
median time per round; the ratios are against ``thread=True`` in the same process. This is
the measurement behind the default in ``rxagent/_scheduler.py`` (see docs/design.md).

    python bench/tool_placement.py                 # 2,000 rounds, 7 repetitions
    python bench/tool_placement.py --rounds 500 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from rxagent import create_agent
from rxagent.messages import AIMessageChunk, ToolMessage
from rxagent.testing import FunctionChatModel
from rxagent.tools import tool

PLACEMENTS: dict[str, bool | None] = {"thread": True, "in place": False, "learned": None}


def _agent(rounds: int, thread: bool | None) -> Any:
    @tool(thread=thread)
    def ping(i: int) -> str:
        """Answer with the round number."""
        return str(i)

    async def reply(messages: Any, tools: Any) -> AsyncIterator[Any]:
        last = messages[-1]
        done = int(str(last.content)) + 1 if isinstance(last, ToolMessage) else 0
        if done < rounds:
            yield AIMessageChunk(content="", tool_call_chunks=[{
                "name": "ping", "args": json.dumps({"i": done}), "id": f"call_{done}",
                "index": 0, "type": "tool_call_chunk",
            }])
        else:
            yield "done"

    return create_agent(FunctionChatModel(reply), [ping])


def _sync_run(agent: Any, rounds: int) -> float:
    config = {"recursion_limit": 2 * rounds + 5}
    start = time.perf_counter()
    seen = sum("tools" in update for update in agent.stream(
        {"messages": ["Count."]}, config, stream_mode="updates"))
    elapsed = time.perf_counter() - start
    if seen != rounds:
        raise AssertionError(f"{seen} tool rounds streamed, {rounds} expected")
    return elapsed / rounds


def _async_run(agent: Any, rounds: int) -> float:
    async def main() -> float:
        config = {"recursion_limit": 2 * rounds + 5}
        start = time.perf_counter()
        seen = 0
        async for update in agent.astream({"messages": ["Count."]}, config,
                                          stream_mode="updates"):
            seen += "tools" in update
        elapsed = time.perf_counter() - start
        if seen != rounds:
            raise AssertionError(f"{seen} tool rounds streamed, {rounds} expected")
        return elapsed / rounds

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    runs: dict[str, Callable[[Any, int], float]] = {"stream()": _sync_run,
                                                    "astream()": _async_run}
    print("| api | placement | µs per round | vs thread |")
    print("| --- | --- | ---: | ---: |")
    for api, run in runs.items():
        agents = {name: _agent(args.rounds, thread) for name, thread in PLACEMENTS.items()}
        for agent in agents.values():
            run(agent, args.rounds)  # warm up (and let "learned" learn, as a long-lived agent has)
        times: dict[str, list[float]] = {name: [] for name in PLACEMENTS}
        for _ in range(args.repeat):
            for name, agent in agents.items():
                times[name].append(run(agent, args.rounds))
        base = statistics.median(times["thread"])
        for name in PLACEMENTS:
            median = statistics.median(times[name])
            print(f"| {api} | {name} | {median * 1e6:,.0f} | {base / median:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
