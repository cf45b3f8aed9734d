"""What ``create_agent`` costs when many agents share the same tools.

Every tool made from a function needs a pydantic model of its arguments and a JSON schema;
building them takes milliseconds. ``rxagent/_tools.py::derive`` builds them once per function
(and name and description) and shares them. This measures ``create_agent`` with the same three
plain functions (two sync, one async, with docstrings and defaults), ``--agents`` times in a
row, with the cache (``cached``) and with every tool derived afresh through
``derive_uncached`` (``uncached``, the path before the cache), alternating within each
repetition in the same process. Figures are medians per ``create_agent`` call, and the total
for ``--agents`` calls, which is how long they hold the event loop when made on it.

    python bench/tool_schemas.py                    # 1,000 agents, 5 repetitions
    python bench/tool_schemas.py --agents 100 --repeat 3 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from rxagent import _tools, create_agent
from rxagent.testing import ScriptedChatModel


def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the weather for a city.

    Args:
        city: the city, e.g. "Paris".
        unit: "celsius" or "fahrenheit".
    """
    return f"It's always sunny in {city}!"


def convert(amount: float, source: str, target: str) -> float:
    """Convert an amount between currencies.

    Args:
        amount: how much.
        source: the currency it is in.
        target: the currency wanted.
    """
    return amount


async def search(query: str, limit: int = 5, recent: bool = False) -> list[str]:
    """Search the web.

    Args:
        query: what to look for.
        limit: how many results at most.
        recent: only results from the last week.
    """
    return [query] * limit


TOOLS = [get_weather, convert, search]


def _create_many(agents: int) -> float:
    model = ScriptedChatModel(["hi"])
    start = time.perf_counter()
    for _ in range(agents):
        create_agent(model, TOOLS)
    return time.perf_counter() - start


def _uncached(agents: int) -> float:
    cached = _tools.derive
    _tools.derive = _tools.derive_uncached  # what BaseTool calls: every tool derived afresh
    try:
        return _create_many(agents)
    finally:
        _tools.derive = cached


VARIANTS: dict[str, Callable[[int], float]] = {"uncached": _uncached, "cached": _create_many}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object per variant")
    args = parser.parse_args()
    _create_many(1)  # the cache's first build, and imports, outside the timing
    totals: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeat):
        for name, run in VARIANTS.items():
            totals[name].append(run(args.agents))
    rows: list[dict[str, Any]] = []
    for name, times in totals.items():
        total = statistics.median(times)
        rows.append({"variant": name, "agents": args.agents, "total_s": total,
                     "per_agent_us": total / args.agents * 1e6})
    reference = rows[0]["total_s"]
    for row in rows:
        row["speedup"] = reference / row["total_s"]
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{row['variant']:>9}: {row['per_agent_us']:9.1f} µs per create_agent, "
                  f"{row['total_s']:7.3f} s for {row['agents']:,}, {row['speedup']:6.1f}x")


if __name__ == "__main__":
    main()
