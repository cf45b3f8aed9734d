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


def test_compare_runs_every_workload_on_rxagent_and_the_floors() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "compare.py"), "--scale", "0.01", "--repeat", "1",
         "--json", "--skip", "slow-consumer", "--library", "rxagent", "--library", "floors"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    results = json.loads(out)
    names = {workload["name"] for workload in results["workloads"]}
    assert {"messages-sync", "messages-async", "updates-sync", "custom-sync", "ttft-sync",
            "concurrency"} <= names
    for workload in results["workloads"]:
        rxagent = [c for c in workload["contenders"] if c["label"] == "rxagent"]
        assert rxagent and rxagent[0]["reps"], f"{workload['name']}: rxagent did not run"
