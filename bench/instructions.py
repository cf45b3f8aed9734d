"""Instructions per item under callgrind: the per-token (or per-event) cost of rxagent's paths,
in a measure that repeats, where wall-clock medians on a shared VM swing by a fifth.

Each workload runs in a fresh process at two sizes under ``valgrind --tool=callgrind``; the
difference in instructions divided by the difference in items is the cost of one item, with
start-up, imports and the warm-up cancelling out. What grows with the items but is no part of
the path (making the tokens, rendering a wire body: about half of a wire workload's count) is
measured the same way, without the runs, and taken off in the last column. ``PYTHONHASHSEED``
is fixed so that dict layouts, and with them the counts, repeat. Needs valgrind (on every
machine of CI's kind).

    python bench/instructions.py                         # every workload
    python bench/instructions.py --workload custom-sync  # one
    python bench/instructions.py --small 500 --large 2500   # a quick pass (less exact)
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from _common import make_tokens

HERE = Path(__file__).resolve().parent
WORKLOADS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    # name -> (module, entry in it, what one item is, arguments that make the entry a workload)
    "messages-sync": ("_with_rxagent", "messages_sync", "token", ()),
    "messages-async": ("_with_rxagent", "messages_async", "token", ()),
    # The same with middleware hooks that do not wrap the model call (issue 19's bound).
    "messages-sync-middleware": ("_with_rxagent", "messages_sync_middleware", "token", ()),
    "custom-sync": ("_with_rxagent", "custom_sync", "event", ()),
    "custom-async": ("_with_rxagent", "custom_async", "event", ()),
    # The provider path: a reply in its wire format read through httpx without a socket, as
    # bench/providers.py's rows (wire, text or a tool call's arguments, model or agent, sync
    # or async), and the floor over the same bodies. The first three keep their first names.
    "openai-wire-async": ("_wire_paths", "openai_async", "token", ()),
    "openai-tool-wire-async": ("_wire_paths", "openai_tool_async", "token", ()),
    "anthropic-wire-async": ("_wire_paths", "anthropic_async", "token", ()),
}
for _wire in ("openai", "anthropic"):
    for _kind in ("text", "tool"):
        _tool = "-tool" if _kind == "tool" else ""
        WORKLOADS[f"floor-{_wire}{_tool}-async"] = (
            "_wire_paths", "floor_row", "token", (_wire, _kind))
        for _level in ("model", "agent"):
            for _mode in ("sync", "async"):
                _agent = "-agent" if _level == "agent" else ""
                WORKLOADS.setdefault(f"{_wire}{_tool}{_agent}-wire-{_mode}", (
                    "_wire_paths", "wire_row", "token", (_wire, _kind, _level, _mode)))
_COLLECTED = re.compile(r"Collected : (\d+)")


def _child(workload: str, items: int, *, setup_only: bool = False) -> None:
    """Warm up on a small run, then run ``workload`` on ``items`` items (checked, as always);
    ``setup_only``: make the runs (the tokens, a rendered body) without running them."""
    module, entry, item, arguments = WORKLOADS[workload]
    make: Callable[..., Callable[[], object]] = getattr(importlib.import_module(module), entry)
    if arguments:
        make = make(*arguments)
    uses_tokens = item == "token"
    warm_up = make(make_tokens(100) if uses_tokens else 100)
    run = make(make_tokens(items) if uses_tokens else items)
    if not setup_only:
        warm_up()
        run()


def _instructions(workload: str, items: int, *, setup_only: bool = False) -> int:
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, str(Path(__file__).resolve()), "--child", workload, str(items),
        *(["--setup-only"] if setup_only else []),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=HERE)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{workload} at {items} items failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS))
    parser.add_argument("--small", type=int, default=2_000, help="items in the smaller run")
    parser.add_argument("--large", type=int, default=12_000, help="items in the larger run")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "ITEMS"), help=argparse.SUPPRESS)
    parser.add_argument("--setup-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]), setup_only=args.setup_only)
        return 0
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    if not 0 < args.small < args.large:
        parser.error("--small must be positive and less than --large")
    print("| workload | instructions per item | of which the setup | the path alone |")
    print("| --- | ---: | ---: | ---: |")
    items = args.large - args.small
    for workload in args.workload or list(WORKLOADS):
        per_item = (_instructions(workload, args.large) - _instructions(workload, args.small))
        setup = (_instructions(workload, args.large, setup_only=True)
                 - _instructions(workload, args.small, setup_only=True))
        print(f"| {workload} | {per_item / items:,.0f} per {WORKLOADS[workload][2]} "
              f"| {setup / items:,.0f} | {(per_item - setup) / items:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
