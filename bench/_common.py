"""What every library's side of the comparison shares: the tokens, the checks, the runner type.

Each library module (``_with_rxagent``, ``_with_langgraph``, ``_with_pydantic_ai``, ``_floors``)
builds, for each workload, a *runner*: a no-argument callable that performs one timed run and
returns its metrics. Everything that is set up once (the agent, the fake model, the token list)
happens before the runner is returned, outside the timing; everything a user would pay for on
each run (starting the stream, the event loop the library makes for it, tearing it down) is
inside it. A runner checks that every token or event arrived, in order, and raises
:class:`DeliveryError` otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

Metrics: TypeAlias = dict[str, float]
Runner: TypeAlias = Callable[[], Metrics]

QUESTION = "Count for me."
TOOL_NAME = "ping"
WRITER_TOOL_NAME = "progress"
FINAL_ANSWER = "done"


class DeliveryError(AssertionError):
    """A run did not deliver what its model or tool produced: the benchmark is invalid."""


def make_tokens(count: int) -> list[str]:
    """``count`` text tokens of four characters ("0000", "0001", ...), a typical token's length;
    built once, outside the timing, so every model pays the same to produce them."""
    return [f"{i % 10_000:04d}" for i in range(count)]


def check_text(library: str, delivered: int, chars: int, tokens: list[str]) -> None:
    """Every token delivered, and nothing else: the count and the characters must match."""
    expected_chars = 4 * len(tokens)
    if delivered != len(tokens) or chars != expected_chars:
        raise DeliveryError(
            f"{library}: delivered {delivered:,} text chunks / {chars:,} characters; expected "
            f"{len(tokens):,} / {expected_chars:,}"
        )


def check_events(library: str, delivered: int, expected: int) -> None:
    if delivered != expected:
        raise DeliveryError(f"{library}: delivered {delivered:,} events; expected {expected:,}")


def round_metrics(stamps: list[float], start: float, rounds: int) -> Metrics:
    """Per-round cost from the time each tool round finished: the mean over all rounds, and
    over the first and the last quarter (50 rounds each at the default 200), to show whether
    a round gets dearer as the history grows."""
    ends = [start, *stamps]
    durations = [b - a for a, b in itertools.pairwise(ends)]
    quarter = max(1, rounds // 4)
    return {
        "us_per_round": 1e6 * (stamps[-1] - start) / rounds,
        "first_us_per_round": 1e6 * sum(durations[:quarter]) / quarter,
        "last_us_per_round": 1e6 * sum(durations[-quarter:]) / quarter,
    }


# -- peak memory, for the concurrency workload (Linux; falls back to ru_maxrss elsewhere) ------

_STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def reset_peak_rss() -> int:
    """Reset the process's peak resident size to its current one (Linux's ``clear_refs``);
    return the current resident size in KiB."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    current = _status_kib("VmRSS")
    if current is not None:
        return current
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss() -> int:
    """The process's peak resident size in KiB since :func:`reset_peak_rss`."""
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
