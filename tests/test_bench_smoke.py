"""The benchmarks keep working: each runs once at a tiny size (their figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_slow_consumer_delivers_every_token_in_every_variant() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "slow_consumer.py"), "--tokens", "3000", "--work", "0",
         "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert {row["variant"] for row in rows} == {
        "stream", "astream", "rx-pause", "rx-unbounded", "stream-unbounded",
    }
    assert all(row["delivered"] == row["tokens"] == 3000 for row in rows)
