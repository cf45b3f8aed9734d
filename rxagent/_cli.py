"""The ``rxagent`` command: ``rxagent demo`` runs the seed's weather agent, live."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from . import __version__
from ._demo import DEMO_QUESTION, weather_agent
from ._exceptions import RxAgentError
from ._messages import AIMessage, AIMessageChunk, ToolMessage

__all__ = ["main"]

_MODES = ("all", "updates", "messages", "custom", "values")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxagent",
        description="Agent streaming on Rx observables. Try: rxagent demo",
    )
    parser.add_argument("--version", action="version", version=f"rxagent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the seed's weather agent and show what it streams, live",
        description=(
            "Run the weather agent of the LangChain streaming docs and print what it streams "
            "as it arrives: tokens, tool calls as their arguments form, progress lines from the "
            "tool, and step boundaries. Runs on the embedded scripted model (no key, no "
            "network) unless --model names a real one."
        ),
    )
    demo.add_argument(
        "--mode",
        choices=_MODES,
        default="all",
        help="what to show: 'all' renders every mode live (default); the others print that "
        "stream mode's payloads the way the seed docs print them",
    )
    demo.add_argument(
        "--model",
        metavar="SPEC",
        default=None,
        help="a model string such as 'openai:gpt-4o-mini' or 'claude-sonnet-4-5-20250929' "
        "(needs the provider's API key); default: the embedded scripted model",
    )
    demo.add_argument(
        "--speed",
        type=float,
        metavar="TOKENS_PER_SECOND",
        default=None,
        help="pace of the scripted model; 0 streams as fast as possible (default: 40 on a "
        "terminal, 0 when piped)",
    )
    demo.add_argument(
        "--question", default=DEMO_QUESTION, help=f"what to ask (default: {DEMO_QUESTION!r})"
    )
    color = demo.add_mutually_exclusive_group()
    color.add_argument("--color", dest="color", action="store_true", default=None,
                       help="force colour")
    color.add_argument("--no-color", dest="color", action="store_false",
                       help="plain text (also when piped, or with NO_COLOR set)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rxagent`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    out = sys.stdout
    tty = out.isatty()
    color = args.color if args.color is not None else tty and "NO_COLOR" not in os.environ
    speed = args.speed if args.speed is not None else (40.0 if tty else 0.0)
    if speed < 0:
        parser.error("--speed must not be negative")
    try:
        agent = weather_agent(args.model, delay=1.0 / speed if speed else 0.0)
        run_input = {"messages": [{"role": "user", "content": args.question}]}
        if args.mode == "all":
            _render_live(agent.stream(run_input, stream_mode=["updates", "messages", "custom"]),
                         out, color)
        else:
            _print_mode(agent.stream(run_input, stream_mode=args.mode), args.mode, out)
    except RxAgentError as error:
        print(f"rxagent: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _print_mode(stream: Any, mode: str, out: TextIO) -> None:
    """Print one mode's payloads the way the seed docs' examples print them."""
    for item in stream:
        if mode == "updates":
            for step, data in item.items():
                print(f"step: {step}", file=out)
                print(f"content: {data['messages'][-1].content_blocks}", file=out)
        elif mode == "messages":
            token, metadata = item
            print(f"node: {metadata['langgraph_node']}", file=out)
            print(f"content: {token.content_blocks}", file=out)
            print(file=out)
        elif mode == "custom":
            print(item, file=out)
        else:
            last = item["messages"][-1]
            print(f"{type(last).__name__}: {last.content_blocks}", file=out)
        out.flush()


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text


def _render_live(stream: Any, out: TextIO, color: bool) -> None:
    """Render updates, messages and custom events as they arrive, on one screen."""
    style = _Style(color)
    mid_line = False
    current_call: object = None
    model_calls = tool_calls = tokens = 0

    section = ""

    def tools_section(section: str) -> str:
        if section != "tools":
            newline()
            out.write(style("▶ tools\n", "1;36"))
        return "tools"

    def newline() -> None:
        nonlocal mid_line
        if mid_line:
            out.write("\n")
            mid_line = False

    for mode, payload in stream:
        if mode == "messages":
            chunk, metadata = payload
            if isinstance(chunk, ToolMessage) or not isinstance(chunk, AIMessage):
                continue
            if metadata is not current_call:
                current_call = metadata
                section = "model"
                model_calls += 1
                newline()
                out.write(style(f"▶ {metadata['langgraph_node']} · step "
                                f"{metadata['langgraph_step']}\n", "1;36"))
            if isinstance(chunk, AIMessageChunk):
                for part in chunk.tool_call_chunks:
                    if part.get("name"):
                        newline()
                        out.write(style(f"  ⚙ {part['name']}", "33") + style("(", "2"))
                        mid_line = True
                    arguments = part.get("args")
                    if arguments:
                        out.write(style(arguments, "2"))
                        mid_line = True
                if chunk.chunk_position == "last" and chunk.response_metadata.get(
                    "finish_reason"
                ) == "tool_calls":
                    out.write(style(")", "2"))
            text = chunk.text
            if text:
                if not mid_line:
                    out.write("  ")
                out.write(text.replace("\n", "\n  ") if text.strip() else text)
                mid_line = not text.endswith("\n")
                tokens += 1
        elif mode == "custom":
            newline()
            section = tools_section(section)
            out.write(style(f"  · {payload}\n", "35"))
        elif mode == "updates":
            for update in payload.values():
                for message in update.get("messages", []):
                    if isinstance(message, ToolMessage):
                        section = tools_section(section)
                        tool_calls += 1
                        newline()
                        mark = "✗" if message.status == "error" else "✓"
                        out.write(style(f"  {mark} {message.name} → ", "32")
                                  + f"{message.text}\n")
        out.flush()
    newline()
    out.write(style(f"✔ done: {model_calls} model calls, {tool_calls} tool calls, "
                    f"{tokens} text tokens\n", "1;32"))
    out.flush()
