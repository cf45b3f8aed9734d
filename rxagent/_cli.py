"""The ``rxagent`` command, and the terminal renderer it shares with :mod:`rxagent.notebook`.

``rxagent demo`` runs the seed docs' weather agent and prints what it streams as it arrives.
:class:`TerminalRenderer` turns a run's parts into append-only text: a header per step
(``▶ model · step 1``), tokens as they come, tool calls as their arguments form, progress lines
from tools, tool results, and nested agents indented under the call that runs them. Colour only
when asked for (a terminal without ``NO_COLOR``, or ``--color``); plain text otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from . import __version__
from ._agent import StreamMode
from ._demo import DEMO_QUESTION, weather_agent
from ._exceptions import MissingAPIKeyError, RxAgentError
from ._messages import AIMessage, AIMessageChunk, ToolCallChunk, ToolMessage
from ._render import (
    ModelCall,
    Part,
    PartReader,
    ToolCallDraft,
    one_line,
    reasoning_parts,
    to_json,
)

__all__ = ["TerminalRenderer", "main", "use_color"]

_MODES = ("all", "updates", "messages", "custom", "values")
# uvicorn's default is 5 s, the same as httpx's keepalive_expiry: a client that sends its next
# request on a connection idle for just under 5 s can meet the server closing it (an
# httpx.ReadError: a socket closed with a request unread in it is reset). Kept open
# longer than the clients keep them, the client always lets go first. 75 s, as nginx's
# keepalive_timeout, outlasts a load balancer's usual 60 s idle timeout too.
KEEP_ALIVE_S = 75


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxagent",
        description="Agent streaming on Rx observables. Try: rxagent demo",
        epilog="Run 'rxagent COMMAND --help' for a command's options. 'python -m rxagent' "
        "is the same command.",
    )
    parser.add_argument("--version", action="version", version=f"rxagent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the seed docs' weather agent and show what it streams, live",
        description=(
            "Run the weather agent of the LangChain streaming docs and print what it streams "
            "as it arrives: tokens, tool calls as their arguments form, progress lines from the "
            "tool, and step boundaries. Runs on the embedded scripted model (no key, no "
            "network) unless --model names a real one."
        ),
        epilog=(
            "examples:\n"
            "  rxagent demo                       every mode, rendered live\n"
            "  rxagent demo --mode messages       the seed's LLM-token example\n"
            "  rxagent demo --speed 5             slow motion\n"
            "  OPENAI_API_KEY=... rxagent demo --model gpt-5-nano\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--mode",
        choices=_MODES,
        default="all",
        help="what to show: 'all' renders updates, messages and custom live (default); the "
        "others print that stream mode's payloads as the seed docs' examples print them",
    )
    demo.add_argument(
        "--model",
        metavar="SPEC",
        default=None,
        help="a model string such as 'openai:gpt-4o-mini', 'gpt-5-nano' or "
        "'claude-sonnet-4-5-20250929' (needs OPENAI_API_KEY or ANTHROPIC_API_KEY); "
        "default: the embedded scripted model",
    )
    demo.add_argument(
        "--speed",
        type=float,
        metavar="TOKENS_PER_SECOND",
        default=None,
        help="pace of the scripted model, in chunks per second; 0 streams as fast as "
        "possible (default: 40 on a terminal, 0 when piped); ignored with --model",
    )
    demo.add_argument(
        "--question",
        default=DEMO_QUESTION,
        help=f"what to ask (default: {DEMO_QUESTION!r}); the scripted model gives its "
        "scripted answer whatever the question",
    )
    color = demo.add_mutually_exclusive_group()
    color.add_argument(
        "--color", dest="color", action="store_true", default=None,
        help="colour even when piped",
    )
    color.add_argument(
        "--no-color", dest="color", action="store_false",
        help="plain text (the default when piped, with NO_COLOR set, or with TERM=dumb)",
    )
    serve = commands.add_parser(
        "serve",
        help="serve agents over HTTP to LangGraph's clients (langgraph-sdk, RemoteGraph...)",
        description=(
            "Serve agents over LangGraph Server's HTTP API, in this process. A TARGET is "
            "path/to/file.py:attr or package.module:attr naming an agent; its graph id (the "
            "assistant_id clients name) is the attribute's name, or name=TARGET chooses it. "
            "Needs the server extra: pip install 'rxagent[server]'."
        ),
        epilog=(
            "examples:\n"
            "  rxagent serve agent.py:agent\n"
            "  rxagent serve weather=app/agents.py:weather_agent --port 8000\n"
            "  rxagent serve --config langgraph.json --sqlite threads.db\n"
            "  rxagent serve agent.py:agent --redis-url redis://127.0.0.1:6379/0 --port 2025\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("targets", nargs="*", metavar="TARGET", help="an agent to serve")
    serve.add_argument("--config", metavar="PATH",
                       help='a langgraph.json: {"graphs": {"id": "./file.py:attr"}}')
    serve.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    serve.add_argument("--port", type=int, default=2024, help="default: 2024")
    serve.add_argument("--sqlite", metavar="PATH",
                       help="keep threads in this SQLite file (default: in memory)")
    serve.add_argument("--redis-url", metavar="URL",
                       help="keep runs, their events and threads in Redis (redis://host:6379/0), "
                       "so that many processes serve the same runs; threads' state too unless "
                       "--sqlite")
    serve.add_argument("--retention", type=float, default=600.0, metavar="SECONDS",
                       help="how long a finished run's events are kept for joins (default: 600)")
    serve.add_argument("--workers", type=int, default=0, metavar="N",
                       help="with --redis-url, also start N 'rxagent worker' processes that "
                       "run background runs (default: 0; this process runs them too)")
    serve.add_argument("--lease", type=float, default=10.0, metavar="SECONDS",
                       help="with --redis-url, how long a run outlives a process that died "
                       "before another takes it over or it reads as failed (default: 10)")
    serve.add_argument("--jobs-per-worker", type=int, default=10, metavar="N",
                       help="how many background runs this process (and each of --workers) "
                       "runs at once; the others wait in the queue (default: 10)")
    serve.add_argument("--timeout-keep-alive", type=int, default=KEEP_ALIVE_S,
                       metavar="SECONDS",
                       help="how long an idle HTTP/1.1 connection is kept open for the "
                       "client's next request; above clients' own idle limits (httpx's and "
                       "the langgraph-sdk's 5 s, a load balancer's 60 s), so that a client "
                       f"never reuses one as the server closes it (default: {KEEP_ALIVE_S})")
    serve.add_argument("--no-move-streamed", dest="move_streamed", action="store_false",
                       help="with --redis-url, a run streamed or awaited by the request that "
                       "made it fails if this process dies, rather than being continued by "
                       "another from its last checkpoint (for agents whose steps must not run "
                       "twice)")
    worker = commands.add_parser(
        "worker",
        help="run background runs from a Redis queue that 'rxagent serve --redis-url' fills",
        description=(
            "Take background runs from the queue on Redis and run them, beside any number of "
            "'rxagent serve --redis-url' processes and other workers serving the same agents. "
            "A run whose worker dies is taken over by another after the lease, from its "
            "thread's last checkpoint."
        ),
    )
    worker.add_argument("targets", nargs="*", metavar="TARGET", help="an agent to run")
    worker.add_argument("--config", metavar="PATH",
                        help='a langgraph.json: {"graphs": {"id": "./file.py:attr"}}')
    worker.add_argument("--redis-url", metavar="URL", required=True, help="redis://host:6379/0")
    worker.add_argument("--retention", type=float, default=600.0, metavar="SECONDS",
                        help="how long a finished run's events are kept (default: 600)")
    worker.add_argument("--lease", type=float, default=10.0, metavar="SECONDS",
                        help="how long a run outlives a worker that died (default: 10)")
    worker.add_argument("--jobs-per-worker", type=int, default=10, metavar="N",
                        help="how many runs this worker runs at once; the others wait in the "
                        "queue for it or another worker (default: 10)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rxagent`` command.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit status: 0 on success, 1 when the run fails, 2 for a bad command line
        (argparse exits with it), 130 when interrupted.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in ("serve", "worker"):
        return _serve(args, parser)
    if args.speed is not None and args.speed < 0:
        parser.error("--speed must not be negative")
    return _demo(args, sys.stdout)


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``rxagent demo``; return the exit status."""
    speed = args.speed if args.speed is not None else (40.0 if _isatty(out) else 0.0)
    renderer: TerminalRenderer | None = None
    try:
        agent = weather_agent(args.model, delay=1.0 / speed if speed else 0.0)
        run_input = {"messages": [{"role": "user", "content": args.question}]}
        if args.mode == "all":
            renderer = TerminalRenderer(out, color=use_color(out, args.color))
            modes: list[StreamMode] = ["updates", "messages", "custom"]
            with agent.stream(run_input, stream_mode=modes, subgraphs=True,
                              version="v2") as parts:
                for part in parts:
                    renderer.feed(part)
            renderer.close()
        else:
            with agent.stream(run_input, stream_mode=args.mode) as items:
                _print_mode(items, args.mode, out)
    except MissingAPIKeyError as error:
        _fail(renderer, error)
        print("rxagent: run 'rxagent demo' without --model to use the scripted model",
              file=sys.stderr)
        return 1
    except RxAgentError as error:
        _fail(renderer, error)
        return 1
    except KeyboardInterrupt:
        if renderer is not None:
            renderer.close(stopped="interrupted")
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 1
    return 0


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``rxagent serve`` or ``rxagent worker``; return the exit status."""
    if bool(args.targets) == bool(args.config):
        parser.error(f"{args.command} takes TARGETs or --config, one of the two")
    if args.command == "serve" and args.workers and not args.redis_url:
        parser.error("--workers takes runs from a queue on Redis: give --redis-url too")
    if args.command == "serve" and args.workers < 0:
        parser.error("--workers must not be negative")
    if args.jobs_per_worker < 1:
        parser.error("--jobs-per-worker must be at least 1")
    if args.command == "serve" and args.timeout_keep_alive < 1:
        parser.error("--timeout-keep-alive must be at least 1")
    try:
        from .server._serve import load_config, load_target, serve, work
    except ImportError as error:
        print(f"rxagent: error: {error}; pip install 'rxagent[server]'", file=sys.stderr)
        return 1
    try:
        if args.config:
            graphs = load_config(args.config)
        else:
            graphs = {}
            for target in args.targets:
                graph_id, agent = load_target(target)
                if graph_id in graphs:
                    parser.error(f"two targets are named {graph_id!r}; name one with "
                                 f"name={target}")
                graphs[graph_id] = agent
        if args.command == "worker":
            work(graphs, redis_url=args.redis_url, retention=args.retention, lease=args.lease,
                 jobs_per_worker=args.jobs_per_worker)
            return 0
        with _workers(args):
            serve(graphs, host=args.host, port=args.port, sqlite=args.sqlite,
                  redis_url=args.redis_url, retention=args.retention, lease=args.lease,
                  jobs_per_worker=args.jobs_per_worker, move_streamed=args.move_streamed,
                  timeout_keep_alive=args.timeout_keep_alive)
    except RxAgentError as error:
        print(f"rxagent: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


@contextlib.contextmanager
def _workers(args: argparse.Namespace) -> Iterator[None]:
    """``--workers N``: N ``rxagent worker`` processes on the same agents, stopped at the end."""
    import signal
    import subprocess

    if args.workers:
        # uvicorn stops on SIGTERM, then raises it again once it has: as an exception here, so
        # that the workers are stopped too rather than left behind.
        def stop(signum: int, frame: object) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)

    what = ["--config", args.config] if args.config else list(args.targets)
    processes = [
        subprocess.Popen([sys.executable, "-m", "rxagent", "worker", *what, "--redis-url",
                          args.redis_url, "--retention", str(args.retention), "--lease",
                          str(args.lease), "--jobs-per-worker", str(args.jobs_per_worker)])
        for _ in range(args.workers)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _fail(renderer: TerminalRenderer | None, error: Exception) -> None:
    if renderer is not None:
        renderer.close(stopped=f"{type(error).__name__}")
    print(f"rxagent: error: {error}", file=sys.stderr)


def _silence_stdout() -> None:
    # The reader went away (``rxagent demo | head``): stop writing, and keep Python from
    # complaining about the pipe again when it flushes stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def use_color(out: TextIO, requested: bool | None = None) -> bool:
    """Whether to colour what goes to ``out``.

    Args:
        out: the stream written to.
        requested: ``True``/``False`` forces the answer; ``None`` colours a terminal unless
            ``NO_COLOR`` is set (to anything but an empty string) or ``TERM`` is ``dumb``.
    """
    if requested is not None:
        return requested
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return _isatty(out)


def _print_mode(stream: Iterable[Any], mode: str, out: TextIO) -> None:
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
            print("\n", file=out)
        elif mode == "custom":
            print(item, file=out)
        else:
            last = item["messages"][-1]
            print(f"{type(last).__name__}: {last.content_blocks}", file=out)
        out.flush()


_FANCY = {"step": "▶", "call": "⚙", "ok": "✓", "error": "✗", "progress": "·", "arrow": "→",
          "done": "✔", "sub": "▸", "more": "…", "sep": "·"}
_PLAIN = {"step": ">", "call": "*", "ok": "+", "error": "x", "progress": "-", "arrow": "->",
          "done": "=", "sub": ">", "more": "...", "sep": "-"}

_HEADER, _CALL, _ARGS, _PROGRESS, _RESULT, _ERROR, _REASONING, _DONE = (
    "1;36", "33", "2", "35", "32", "31", "2;3", "1;32",
)


class TerminalRenderer(PartReader):
    """Render a run's parts as they arrive, as append-only text for a terminal or a file.

    Feed it the parts of ``agent.observe(...)`` (or ``stream(..., version="v2")``), in
    order. Each model call gets a header line and its tokens as they come; a tool call shows
    its name, then its arguments as they form; tools show their progress lines (custom
    events) and results. A nested agent's parts are indented under its caller. Items that are
    not parts (say, strings after ``rxo.text()``) are written as they are.

    Args:
        out: where to write.
        color: use ANSI colours.
    """

    def __init__(self, out: TextIO, *, color: bool = False) -> None:
        super().__init__()
        self.out = out
        self.color = color
        self.glyphs = _FANCY if _can_encode(out, "".join(_FANCY.values())) else _PLAIN
        self._at_line_start = True
        self._indent = ""
        self._block: object = None  # what the lines being written belong to
        self._open_call: ToolCallDraft | None = None  # a tool call whose "(" is open
        self._closed = False

    # -- writing -----------------------------------------------------------------------------

    def _style(self, text: str, code: str | None) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color and code else text

    def _write(self, text: str, code: str | None = None) -> None:
        """Write ``text``, indenting every line it starts."""
        for position, piece in enumerate(text.split("\n")):
            if position:
                self.out.write("\n")
                self._at_line_start = True
            if piece:
                if self._at_line_start:
                    self.out.write(self._indent)
                styled = self._style(piece, code)
                try:
                    self.out.write(styled)
                except UnicodeEncodeError:  # a model's emoji on a console that has none
                    encoding = getattr(self.out, "encoding", None) or "ascii"
                    self.out.write(styled.encode(encoding, "replace").decode(encoding))
                self._at_line_start = False

    def _newline(self) -> None:
        if not self._at_line_start:
            self.out.write("\n")
            self._at_line_start = True

    def _line(self, text: str, code: str | None = None) -> None:
        self._close_call()
        self._newline()
        self._write(text, code)
        self._newline()

    def _close_call(self) -> None:
        if self._open_call is not None:
            self._write(")", _ARGS)
            self._open_call = None

    def _open(self, draft: ToolCallDraft, name: str, opening: str) -> None:
        """Start a tool call's line: its name and ``opening``; its arguments follow."""
        self._close_call()
        self._newline()
        self._write(f"{self.glyphs['call']} {name}", _CALL)
        self._write(opening, _ARGS)
        self._open_call = draft

    def _begin(self, block: object, ns: tuple[str, ...], title: str) -> None:
        if block == self._block:
            return
        self._close_call()
        self._newline()
        self._indent = "  " * len(ns)
        self._write(f"{self.glyphs['step']} {self._heading(ns, title, self.glyphs['sub'])}",
                    _HEADER)
        self._newline()
        self._indent = "  " * (len(ns) + 1)
        self._block = block

    def _begin_call(self, part: Part, call: ModelCall) -> None:
        self._begin(call, part.ns, call.title(self.glyphs["sep"]))

    def _begin_tools(self, part: Part) -> None:
        self._begin(("tools", part.ns), part.ns, "tools")

    # -- parts -------------------------------------------------------------------------------

    def feed(self, item: Any) -> None:
        """Render one part (or any other item) of the stream."""
        self._read(item)
        self.out.flush()

    def _on_chunk(self, part: Part, call: ModelCall, chunk: AIMessageChunk) -> None:
        self._begin_call(part, call)
        thinking = "".join(reasoning_parts(chunk))
        if thinking:
            self._close_call()
            self._write(thinking, _REASONING)
        text = chunk.text
        if text:
            self._close_call()
            self._write(text)
        for fragment in chunk.tool_call_chunks:
            self._fragment(call.tool_calls[fragment.get("index")], fragment)
        if chunk.chunk_position == "last":
            self._close_call()

    def _fragment(self, draft: ToolCallDraft, fragment: ToolCallChunk) -> None:
        name = fragment.get("name")
        if name:
            self._open(draft, name, "(")
        arguments = fragment.get("args")
        if arguments:
            if self._open_call is not draft:  # calls interleaved: pick this one up again
                self._open(draft, draft.name or "?", f"({self.glyphs['more']}")
            self._write(arguments, _ARGS)

    def _on_whole(self, part: Part, call: ModelCall, message: AIMessage) -> None:
        # disable_streaming=True, or a reply seen only in an update: the whole reply at once.
        self._begin_call(part, call)
        if message.text:
            self._write(message.text)
        for tool_call in message.tool_calls:
            self._line(f"{self.glyphs['call']} {tool_call['name']}"
                       f"({to_json(tool_call['args'])})", _CALL)

    def _on_custom(self, part: Part) -> None:
        self._begin_tools(part)
        self._line(f"{self.glyphs['progress']} {part.data}", _PROGRESS)

    def _on_tool_result(self, part: Part, message: ToolMessage) -> None:
        self._begin_tools(part)
        failed = message.status == "error"
        mark = self.glyphs["error" if failed else "ok"]
        self._line(f"{mark} {message.name} {self.glyphs['arrow']} "
                   f"{one_line(message.text, 160, self.glyphs['more'])}",
                   _ERROR if failed else _RESULT)

    def _on_item(self, item: Any) -> None:
        if self._block != "items":
            self._close_call()
            self._newline()
            self._indent = ""
            self._block = "items"
        if isinstance(item, str):
            self._write(item)
        else:
            self._line(repr(item))

    def close(self, stopped: str | None = None) -> None:
        """End the output: a summary line, or why the run stopped.

        Args:
            stopped: why the run ended early (an error's name, ``"interrupted"``); ``None``
                when it finished.
        """
        if self._closed:
            return
        self._closed = True
        self._close_call()
        self._newline()
        self._indent = ""
        calls, tools, tokens = self._counts.phrases()
        if stopped is None:
            self._write(f"{self.glyphs['done']} done: {calls}, {tools}, {tokens}", _DONE)
        else:
            self._write(f"{self.glyphs['error']} stopped ({stopped}) after {calls}, {tools}",
                        _ERROR)
        self._newline()
        self.out.flush()


def _can_encode(out: TextIO, text: str) -> bool:
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True
