"""Streaming structured output: rxagent's partial objects against PydanticAI's ``stream_output``.

Both libraries get the same answer, a JSON object of ``--tokens`` pieces of about four
characters (a title, then a list of short strings), streamed as the arguments of the output
tool's call by an in-process function model, so that no HTTP and no provider SDK is measured:
what is measured is each library's path from a tool-call fragment to a validated partial object.
Each row validates on every piece (PydanticAI with ``debounce_by=None``; its default debounces
to one validation per 0.1 s, a row of its own); rxagent's rows are
``model.with_structured_output(...).astream(...)`` and an agent's
``astream(..., stream_mode="partial_output")``, beside the model's bare chunk stream (the
floor: what reading nothing costs). The figure is the median time per token over
``--repeat`` runs (rows alternating within each repetition), and each run checks that its last
object is the whole answer.

    python bench/structured.py                          # 200 and 1,000 tokens, 7 repetitions
    python bench/structured.py --tokens 500 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from rxagent import create_agent
from rxagent.messages import AIMessageChunk
from rxagent.structured_output import ToolStrategy
from rxagent.testing import FunctionChatModel

try:  # the peer, in the bench extra; without it only rxagent's rows run (as CI's smoke test)
    from pydantic_ai import Agent as PydanticAgent
    from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel
except ImportError:  # pragma: no cover - the bench extra installs it
    PydanticAgent = None


UNDEBOUNCED = "pydantic-ai run_stream().stream_output(debounce_by=None)"


class Report(BaseModel):
    """A report: a title and its findings."""

    title: str
    findings: list[str]


def answer_pieces(tokens: int) -> tuple[list[str], Report]:
    """The answer's JSON cut into ``tokens`` pieces of about four characters."""
    findings = [f"f{i:03d}" for i in range(max(1, tokens // 2))]
    report = Report(title="Quarterly findings", findings=findings)
    text = report.model_dump_json()
    size = max(1, len(text) // tokens)
    pieces = [text[i:i + size] for i in range(0, len(text), size)]
    return pieces, report


def rxagent_model(pieces: list[str]) -> FunctionChatModel:
    # Built once, outside the timing, as every library's model gets its tokens.
    chunks = [AIMessageChunk(content="", tool_call_chunks=[
        {"name": "Report", "args": "", "id": "call_1", "index": 0}])]
    chunks += [AIMessageChunk(content="", tool_call_chunks=[{"args": piece, "index": 0}])
               for piece in pieces]

    async def reply(messages: Any, tools: Any) -> AsyncIterator[AIMessageChunk]:
        for chunk in chunks:
            yield chunk

    return FunctionChatModel(reply)


def pydantic_ai_model(pieces: list[str]) -> FunctionModel:
    deltas = [{0: DeltaToolCall(json_args=piece)} for piece in pieces]

    async def stream(messages: Any, info: AgentInfo) -> AsyncIterator[dict[int, DeltaToolCall]]:
        name = info.output_tools[0].name
        yield {0: DeltaToolCall(name=name, json_args="", tool_call_id="call_1")}
        for delta in deltas:
            yield delta

    return FunctionModel(stream_function=stream)


Run = Callable[[], Awaitable[tuple[Any, int]]]


async def _last_and_count(objects: AsyncIterator[Any]) -> tuple[Any, int]:
    last, count = None, 0
    async for item in objects:
        last, count = item, count + 1
    return last, count


def rows(pieces: list[str], expected: Report) -> dict[str, Run]:
    plain = rxagent_model(pieces)
    structured = rxagent_model(pieces).with_structured_output(Report, method="function_calling")
    agent = create_agent(rxagent_model(pieces), [], response_format=ToolStrategy(Report))

    async def rx_floor() -> tuple[Any, int]:
        # The same chunks with nothing read from them: what the parse adds is the rest.
        _, count = await _last_and_count(plain.astream("Report."))
        return expected, count

    async def rx_model() -> tuple[Any, int]:
        return await _last_and_count(structured.astream("Report."))

    async def rx_agent() -> tuple[Any, int]:
        return await _last_and_count(agent.astream({"messages": ["Report."]},
                                                   stream_mode="partial_output"))

    ours: dict[str, Run] = {
        "rxagent model.astream(), chunks only (the floor)": rx_floor,
        "rxagent with_structured_output().astream()": rx_model,
        "rxagent agent astream(stream_mode='partial_output')": rx_agent,
    }
    if PydanticAgent is None:
        return ours
    theirs = PydanticAgent(pydantic_ai_model(pieces), output_type=Report)

    def pydantic_ai(debounce: float | None) -> Run:
        async def run() -> tuple[Any, int]:
            async with theirs.run_stream("Report.") as result:
                return await _last_and_count(result.stream_output(debounce_by=debounce))

        return run

    return {
        **ours,
        UNDEBOUNCED: pydantic_ai(None),
        "pydantic-ai run_stream().stream_output() (0.1 s debounce)": pydantic_ai(0.1),
    }


async def measure(tokens: int, repeat: int) -> dict[str, tuple[float, int]]:
    """Per row: the median time per token, and how many objects a run gave."""
    pieces, expected = answer_pieces(tokens)
    runs = rows(pieces, expected)
    times: dict[str, list[float]] = {name: [] for name in runs}
    counts: dict[str, int] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            last, counts[name] = await run()
            elapsed = time.perf_counter() - start
            if last != expected:
                raise AssertionError(f"{name}: the last object is {last!r}, not the answer")
            times[name].append(elapsed / len(pieces))
    return {name: (statistics.median(values), counts[name]) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, nargs="*", default=[200, 1000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    results = {}
    for tokens in options.tokens:
        figures = asyncio.run(measure(tokens, options.repeat))
        results[tokens] = figures
        if not options.json:
            base = figures[UNDEBOUNCED][0] if UNDEBOUNCED in figures else None
            print(f"\n{tokens:,} tokens, median of {options.repeat}: µs per token, "
                  "times less than PydanticAI undebounced, objects per run"
                  + ("" if base else " (PydanticAI is not installed: rxagent's rows only)"))
            for name, (value, count) in figures.items():
                ratio = f"{base / value:5.1f}x" if base else "     "
                print(f"  {value * 1e6:8.1f}  {ratio}  {count:6,}  {name}")
    if options.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
