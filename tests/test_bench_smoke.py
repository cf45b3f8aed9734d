"""The benchmarks keep working: each runs once at a tiny size (their figures are not checked).

Marked ``bench``, which the default run leaves out (it takes minutes); ``.ci/run`` runs it
with ``pytest -m bench tests/test_bench_smoke.py``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

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


def test_instructions_workloads_run_and_the_counting_works() -> None:
    for workload in ("messages-sync", "messages-async", "custom-sync", "custom-async",
                     "openai-wire-async", "openai-tool-wire-async", "anthropic-wire-async"):
        subprocess.run(
            [sys.executable, str(BENCH / "instructions.py"), "--child", workload, "200"],
            check=True, capture_output=True, text=True, timeout=300,
        )
    if shutil.which("valgrind") is None:  # pragma: no cover - valgrind is on CI's machines
        return
    out = subprocess.run(
        [sys.executable, str(BENCH / "instructions.py"), "--workload", "custom-sync",
         "--small", "100", "--large", "600"],
        # (Generous: valgrind on a loaded 2-core machine took minutes; the figure is all.)
        check=True, capture_output=True, text=True, timeout=900,
    ).stdout
    (row,) = [line for line in out.splitlines() if line.startswith("| custom-sync")]
    per_event = float(row.split("|")[2].split()[0].replace(",", ""))
    assert per_event > 0


def test_structured_runs_every_row_and_checks_the_last_object() -> None:
    # CI installs the test extra only: then rxagent's three rows run, and PydanticAI's two
    # only where the bench extra put it.
    out = subprocess.run(
        [sys.executable, str(BENCH / "structured.py"), "--tokens", "20", "--repeat", "1",
         "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    figures = json.loads(out)["20"]
    assert len(figures) == (5 if importlib.util.find_spec("pydantic_ai") else 3)
    assert all(seconds > 0 and objects > 0 for seconds, objects in figures.values())


def test_tool_schemas_runs_both_variants() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "tool_schemas.py"), "--agents", "5", "--repeat", "1",
         "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["variant"] for row in rows] == ["uncached", "cached"]
    assert all(row["agents"] == 5 for row in rows)


def test_tool_placement_runs_every_placement_through_both_apis() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "tool_placement.py"), "--rounds", "5", "--repeat", "1"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("| stream") or
            line.startswith("| astream")]
    assert len(rows) == 6, out


def test_sse_decoding_compares_both_decoders() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "sse_decoding.py"), "--size", "200000", "--repeat", "1"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    assert out.count("|") > 8, out


def test_tls_first_token_measures_both_variants() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "tls_first_token.py"), "--calls", "3", "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    row = json.loads(out)
    assert row["calls"] == 3 and row["pooled"]["best_ms"] > 0 and row["fresh"]["best_ms"] > 0


def test_providers_runs_every_library_on_both_wires_and_the_concurrency_rows() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "providers.py"), "--tokens", "50", "--repeat", "1",
         "--concurrency", "3", "--concurrency-tokens", "10", "--json", "--quiet"],
        check=True, capture_output=True, text=True, timeout=600,
    ).stdout
    results = json.loads(out)
    rows = results["rows"]
    assert all(row["error"] is None and len(row["us_per_token"]) == 1 for row in rows), rows
    assert {(row["wire"], row["kind"]) for row in rows} == {
        (w, k) for w in ("openai", "anthropic") for k in ("text", "tool")}
    rxagent = {(r["wire"], r["kind"], r["level"], r["mode"]) for r in rows
               if r["library"] == "rxagent"}
    assert len(rxagent) == 16  # model and agent, sync and async, on every wire and kind
    # The peers come with the bench extra, which CI does not install: they run where they are.
    peers = all(importlib.util.find_spec(name) is not None for name in (
        "openai", "anthropic", "langchain_openai", "langchain_anthropic", "pydantic_ai"))
    libraries = {"floor", "rxagent"}
    concurrent = [("rxagent", 3)]
    if peers:
        libraries |= {"openai SDK", "anthropic SDK", "langchain", "pydantic-ai"}
        concurrent += [("langchain", 3), ("pydantic-ai", 3)]
    assert {row["library"] for row in rows} == libraries, results["skipped"]
    assert [(c["library"], c["runs"]) for c in results["concurrency"]] == concurrent
    assert all(c["wall_s"] > 0 for c in results["concurrency"])


def test_threads_runs_a_conversation_on_every_saver_through_both_apis() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "threads.py"), "--turns", "3", "--tokens", "5",
         "--repeat", "1", "--window", "1", "--json", "--quiet"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    results = json.loads(out)
    ran = {(row["saver"], row["api"], row["library"]) for row in results["rows"]}
    assert all(len(row["first_us"]) == 1 and row["first_us"][0] > 0 for row in results["rows"])
    expected = {("memory", api, library) for api in ("invoke", "stream")
                for library in ("rxagent", "langgraph")}
    # The SQLite and Redis rows run where their packages (and redis-server) are; else listed.
    if importlib.util.find_spec("langgraph.checkpoint.sqlite") is not None:
        expected |= {("sqlite", api, "langgraph") for api in ("invoke", "stream")}
    if importlib.util.find_spec("rxagent.checkpoint.sqlite") is not None:
        expected |= {("sqlite", api, "rxagent") for api in ("invoke", "stream")}
    if (shutil.which("redis-server") is not None
            and importlib.util.find_spec("rxagent.checkpoint.redis") is not None
            and importlib.util.find_spec("redis") is not None):
        expected |= {("redis", api, "rxagent") for api in ("invoke", "stream")}
    assert ran == expected, results["skipped"]
    assert any(line.startswith("redis") for line in results["skipped"])  # no LangGraph peer


def test_serve_measures_rxagent_and_langgraph_dev_where_it_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "serve.py"), "--repeat", "1", "--tokens", "100",
         "--short", "20", "--streams", "5", "--held", "3", "--resumes", "2", "--settle", "0.2",
         "--json"],
        check=True, capture_output=True, text=True, timeout=600,
    ).stdout
    results = json.loads(out)
    # langgraph dev comes from langgraph-cli[inmem] (the bench extra): skipped and listed
    # where it is not installed.
    peer = (shutil.which("langgraph", path=str(Path(sys.executable).parent)) is not None
            and importlib.util.find_spec("langgraph_runtime_inmem") is not None)
    assert set(results["results"]) == ({"rxagent", "langgraph"} if peer else {"rxagent"})
    assert results["skipped"] == ([] if peer else ["langgraph"])
    for name, runs in results["results"].items():
        assert len(runs) == 1, name
        figures = runs[0]
        assert figures["events/s"] > 0 and figures["many wall"] > 0 and figures["resume"] > 0
    assert results["results"]["rxagent"][0]["resume wrong"] == 0
