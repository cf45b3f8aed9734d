"""What a held stream keeps alive in ``rxagent serve``, in bytes per stream, repeatably.

``bench/serve.py`` gives one figure, the server's RSS per held stream. This script says where it
goes. It starts the server in a child process (the same app, uvicorn protocol and agents as
``rxagent serve --config`` in ``bench/serve.py``), opens ``--held`` streams that each read their
first token and then stop reading (a run paused by the demand signal), then ``--held`` more, and
diffs what the server holds between the two counts, so that what every stream keeps is divided
out and one-time costs (imports, first-call caches, the pool's first arena) are not:

    RSS            the child's resident memory at idle, at N and at 2N held streams
    tracemalloc    bytes per stream, grouped by the innermost frame in rxagent (who made it)
                   and by the line that allocated it (with ``--tracemalloc``, which slows the
                   server and adds its own memory to the RSS, so the RSS figure is read from
                   a run without it)
    objects        ``gc.get_objects()`` by type: objects per stream, and their
                   ``sys.getsizeof`` (the containers the collector tracks; strings, bytes and
                   numbers are in tracemalloc's figure)

The clients are raw sockets in this process, so that the client side costs the server nothing
but the connection.

    python bench/_serve_memory.py --held 300                  # RSS only
    python bench/_serve_memory.py --held 300 --tracemalloc    # where it goes
    python bench/_serve_memory.py --cpu 5                     # the server's CPU per event

``--cpu N`` holds nothing: it reads N whole runs one after another, each as fast as a raw socket
can, and divides the server process's CPU time over each by its events: what a change to the
per-event path costs, which a smaller bound on a held stream must not raise.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REQUEST_BODY = json.dumps({
    "assistant_id": "held", "input": {"messages": [{"role": "user", "content": "Count for me."}]},
    "stream_mode": ["messages-tuple"], "on_disconnect": "cancel"}).encode()


# -- the server's side (the child process) ------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _owner(trace: tracemalloc.Traceback) -> str:
    """Who made an allocation: the innermost frame in rxagent, else the innermost frame's
    package (uvicorn, starlette, anyio, asyncio...)."""
    for frame in reversed(trace):  # oldest first: walk from the allocation outwards
        if "/rxagent/" in frame.filename:
            return f"{frame.filename.split('/rxagent/')[-1]}:{frame.lineno}"
    frame = trace[-1] if len(trace) else None
    if frame is None:
        return "?"
    parts = frame.filename.split("/")
    return f"[{parts[-2]}/{parts[-1]}]" if len(parts) > 1 else frame.filename


WHERE = os.environ.get("SERVE_MEMORY_WHERE", "")


def _snapshot(path: str) -> None:
    gc.collect()
    counts: collections.Counter[str] = collections.Counter()
    sizes: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}"
        # Which coroutine, closure or bound method: a type alone does not say whose they are.
        if kind is types.CoroutineType or kind is types.AsyncGeneratorType:
            code = obj.cr_code if kind is types.CoroutineType else obj.ag_code
            name += f" {code.co_qualname} ({Path(code.co_filename).name})"
        elif kind is types.FunctionType:
            name += f" {obj.__qualname__}"
        elif kind is types.MethodType:
            name += f" {obj.__func__.__qualname__}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    report: dict[str, Any] = {"rss": _rss(), "counts": counts, "sizes": sizes}
    if tracemalloc.is_tracing():
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)])
        owners: collections.Counter[str] = collections.Counter()
        lines: collections.Counter[str] = collections.Counter()
        where: collections.Counter[str] = collections.Counter()
        for stat in snap.statistics("traceback"):
            owners[_owner(stat.traceback)] += stat.size
            frame = stat.traceback[-1]  # oldest first: the last frame allocated
            line = f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
            lines[line] += stat.size
            if WHERE and line.endswith(WHERE):
                where[" < ".join(f"{Path(f.filename).name}:{f.lineno}"
                                 for f in reversed(stat.traceback[-12:]))] += stat.size
        report["owners"], report["lines"] = owners, lines
        report["where"] = where
        report["traced"] = sum(stat.size for stat in snap.statistics("filename"))
    Path(path).write_text(json.dumps(report))


def _awaiting(coro: Any) -> list[str]:
    """The chain of coroutines a task is suspended in, outermost first."""
    chain = []
    while coro is not None:
        code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if code is None:
            chain.append(type(coro).__name__)
            break
        where = f":{frame.f_lineno}" if frame is not None else ""
        extra = ""
        if code.co_qualname == "Demand.wait" and frame is not None:
            extra = f" {frame.f_locals['self']!r}"
        chain.append(f"{code.co_qualname} ({Path(code.co_filename).name}{where}){extra}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return chain


def _tasks(path: str, loop: asyncio.AbstractEventLoop) -> None:
    """What every task of the server's loop is waiting in, counted by chain."""
    chains: collections.Counter[str] = collections.Counter()
    for task in asyncio.all_tasks(loop):
        chains["\n    ".join(_awaiting(task.get_coro()))] += 1
    Path(path).write_text(json.dumps(chains))


def _holders(path: str) -> None:
    """Who holds the frames alive (bytes that start ``event:``), by referrer chain."""
    gc.collect()
    everything = gc.get_objects()
    frames = [obj for obj in gc.get_referents(*everything)
              if type(obj) is bytes and obj.startswith(b"event:")]
    frames += [obj for obj in everything if type(obj).__name__ == "Entry"]
    del everything
    found: collections.Counter[str] = collections.Counter()
    sizes: collections.Counter[str] = collections.Counter()
    for body in frames:
        chain, obj = [type(body).__name__], body
        for _ in range(4):
            referrers = [r for r in gc.get_referrers(obj) if r is not frames and r is not chain
                         and type(r) is not types.FrameType]
            if not referrers:
                break
            obj = referrers[0]
            label = type(obj).__qualname__
            if isinstance(obj, types.CoroutineType):
                label = f"coroutine {obj.cr_code.co_qualname}"
            elif isinstance(obj, (list, tuple, dict)):
                label += f"[{len(obj)}]"
            elif isinstance(obj, types.FunctionType):
                label += f" {obj.__qualname__}"
            chain.append(label)
        found[" < ".join(chain)] += 1
        sizes[" < ".join(chain)] += len(body) if type(body) is bytes else 0
    Path(path).write_text(json.dumps({"count": found, "bytes": sizes}))


def _commands(loop: list[asyncio.AbstractEventLoop]) -> None:
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "snap":
            _snapshot(argument)
        elif command == "holders":
            _holders(argument)
        elif command == "tasks":
            _tasks(argument, loop[0])
        print("done", flush=True)


def child(port: int, tokens: int, trace: bool, sndbuf: int) -> None:
    import uvicorn

    os.environ.update({f"SERVE_BENCH_{name}": str(tokens) for name in ("LONG", "SHORT", "HELD")})
    sys.path.insert(0, str(HERE))
    import _serve_rxagent

    from rxagent.server import create_app
    from rxagent.server._serve import http_protocol

    if trace:
        tracemalloc.start(40)
    app = create_app({"held": _serve_rxagent.held, "short": _serve_rxagent.short})
    protocol = http_protocol()
    if sndbuf:
        class Protocol(protocol):  # type: ignore[misc,valid-type]
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
                super().connection_made(transport)

        protocol = Protocol
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none",
                            loop="asyncio", http=protocol)
    server = uvicorn.Server(config)
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        loops.append(asyncio.get_running_loop())
        threading.Thread(target=_commands, args=(loops,), daemon=True).start()
        await server.serve()

    asyncio.run(serve())


# -- the clients (this process) -----------------------------------------------------------------


async def hold_one(port: int, rcvbuf: int) -> asyncio.StreamWriter:
    """A stream that has read its first token and reads no more."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=2**16)
    writer.write(b"POST /runs/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(REQUEST_BODY), REQUEST_BODY))
    seen = b""
    while b"event: messages" not in seen:
        data = await reader.read(4096)
        if not data:
            raise RuntimeError(f"the stream ended before its first token: {seen[-300:]!r}")
        seen = seen[-64:] + data
    return writer


async def read_whole(port: int) -> int:
    """One stream read to its end as fast as the client can: the events it had."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    writer.write(b"POST /runs/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(REQUEST_BODY), REQUEST_BODY))
    events = 0
    tail = b""
    while data := await reader.read(2**18):
        events += (tail + data).count(b"\r\nevent: ") - tail.count(b"\r\nevent: ")
        tail = data[-16:]
    writer.close()
    return events


async def cpu_per_event(child: Child, streams: int) -> list[float]:
    """The server's CPU time per event over one stream to a fast reader, for each of
    ``streams`` streams in turn: what the per-token path costs the server."""
    import psutil

    process = psutil.Process(child.process.pid)
    figures = []
    for _ in range(streams):
        before = process.cpu_times()
        events = await read_whole(child.port)
        after = process.cpu_times()
        used = after.user + after.system - before.user - before.system
        figures.append(used / max(events, 1))
    return figures


async def hold(port: int, count: int, held: list[asyncio.StreamWriter], rcvbuf: int) -> None:
    for start in range(0, count, 50):  # in waves, as a server's accept backlog would take them
        held.extend(await asyncio.gather(*(hold_one(port, rcvbuf)
                                           for _ in range(min(50, count - start)))))


class Child:
    def __init__(self, port: int, tokens: int, trace: bool, where: str, sndbuf: int = 0) -> None:
        command = [sys.executable, __file__, "--child", "--port", str(port),
                   "--tokens", str(tokens), "--sndbuf", str(sndbuf)]
        command += ["--tracemalloc"] if trace else []
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env={**os.environ, "SERVE_MEMORY_WHERE": where})
        self.port = port

    def snap(self, path: Path, command: str = "snap") -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{command} {path}\n")
        self.process.stdin.flush()
        self.process.stdout.readline()
        return dict(json.loads(path.read_text()))

    def stop(self) -> None:
        self.process.kill()  # uvicorn's graceful shutdown would wait for the held streams
        self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settle(child: Child, path: Path, most: float) -> dict[str, Any]:
    """A snapshot once the RSS stops growing (the held runs have filled their buffers)."""
    import psutil

    process = psutil.Process(child.process.pid)
    samples = [process.memory_info().rss]
    deadline = time.monotonic() + most
    while time.monotonic() < deadline:
        time.sleep(0.25)
        samples.append(process.memory_info().rss)
        if len(samples) > 4 and samples[-1] - samples[-5] <= 0.002 * samples[-1]:
            break
    return child.snap(path)


def _diff(before: dict[str, int], after: dict[str, int], per: int) -> list[tuple[str, float]]:
    keys = set(before) | set(after)
    rows = [(key, (after.get(key, 0) - before.get(key, 0)) / per) for key in keys]
    return sorted(rows, key=lambda row: -abs(row[1]))


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    child = Child(_free_port(), args.tokens, args.tracemalloc, args.where or "", args.sndbuf)
    held: list[asyncio.StreamWriter] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                # The warm-up: imports, first-call caches.
                await hold(child.port, 1, held, args.rcvbuf)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        for writer in held:
            writer.close()
        held.clear()
        await asyncio.sleep(1)
        loop = asyncio.get_running_loop()
        idle = await loop.run_in_executor(None, child.snap, tmp / "idle.json")
        if args.cpu:
            cpu = await cpu_per_event(child, args.cpu)
            return {"cpu": cpu}
        await hold(child.port, args.held, held, args.rcvbuf)
        first = await loop.run_in_executor(None, settle, child, tmp / "first.json", args.settle)
        await hold(child.port, args.held, held, args.rcvbuf)
        second = await loop.run_in_executor(None, settle, child, tmp / "second.json", args.settle)
        if args.tasks:
            second["tasks"] = await loop.run_in_executor(None, child.snap, tmp / "tasks.json",
                                                         "tasks")
        if args.holders:
            second["holders"] = await loop.run_in_executor(None, child.snap,
                                                           tmp / "holders.json", "holders")
    finally:
        for writer in held:
            writer.close()
        child.stop()
    return {"idle": idle, "first": first, "second": second}


def report(found: dict[str, Any], args: argparse.Namespace) -> None:
    if "cpu" in found:
        figures = sorted(found["cpu"])
        print("server CPU per event, one stream at a time to a fast reader (us): "
              + ", ".join(f"{f * 1e6:.1f}" for f in found["cpu"])
              + f"; median {figures[len(figures) // 2] * 1e6:.1f}")
        return
    idle, first, second = found["idle"], found["first"], found["second"]
    n = args.held
    kib = 1024
    print(f"RSS: idle {idle['rss'] / 2**20:.1f} MiB; per held stream: "
          f"{(first['rss'] - idle['rss']) / n / kib:.1f} KiB (idle to {n}), "
          f"{(second['rss'] - first['rss']) / n / kib:.1f} KiB ({n} to {2 * n})")
    if args.where:
        print(f"\ntracebacks allocating at {args.where}, bytes per stream:")
        for key, value in _diff(first.get("where", {}), second.get("where", {}), n)[:8]:
            print(f"  {value:9.0f}  {key}")
    if "traced" in second:
        print(f"tracemalloc, {n} to {2 * n}: "
              f"{(second['traced'] - first['traced']) / n / kib:.1f} KiB per stream")
        print("\nby who made it (innermost rxagent frame), bytes per stream:")
        for key, value in _diff(first["owners"], second["owners"], n)[:args.top]:
            print(f"  {value:9.0f}  {key}")
        print("\nby the line that allocated, bytes per stream:")
        for key, value in _diff(first["lines"], second["lines"], n)[:args.top]:
            print(f"  {value:9.0f}  {key}")
    if "tasks" in second:
        print(f"\nthe server's tasks at {2 * n} held streams, by what they wait in:")
        for chain, count in sorted(second["tasks"].items(), key=lambda item: -item[1]):
            print(f"  {count:5d}  {chain}")
    if "holders" in second:
        print(f"\nwho holds the frames at {2 * n} held streams (count, bytes per stream):")
        for chain, count in sorted(second["holders"]["count"].items(), key=lambda i: -i[1]):
            print(f"  {count:6d} {second['holders']['bytes'][chain] / (2 * n):8.0f}  {chain}")
    rows = _diff(first["counts"], second["counts"], n)
    sizes = dict(_diff(first["sizes"], second["sizes"], n))
    total = sum(sizes.values())
    print(f"\nobjects per stream (gc-tracked): {sum(v for _, v in rows):.0f}, "
          f"{total / kib:.1f} KiB by sys.getsizeof")
    for key, value in rows[:args.top]:
        print(f"  {value:7.1f}  {sizes.get(key, 0):8.0f} B  {key}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held", type=int, default=300, help="N: streams held, then N more")
    parser.add_argument("--tokens", type=int, default=20000, help="tokens of each held run")
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--where", help="FILE:LINE: also list the tracebacks that allocate "
                        "there (with --tracemalloc)")
    parser.add_argument("--rcvbuf", type=int, default=0,
                        help="the clients' SO_RCVBUF: small, and every held run reaches its "
                        "pause at once; 0 (the default, as bench/serve.py's clients) leaves it "
                        "to the kernel, which takes megabytes on loopback first")
    parser.add_argument("--sndbuf", type=int, default=0,
                        help="the server's SO_SNDBUF on each connection, with --rcvbuf: every held "
                        "run then pauses after the same few tokens, so that runs compare (the "
                        "reply a run has accumulated grows with how far it got)")
    parser.add_argument("--tasks", action="store_true",
                        help="list the server's tasks at the end by what they wait in")
    parser.add_argument("--holders", action="store_true",
                        help="list who holds the frames at the end (slow: minutes at 1,000 "
                        "streams)")
    parser.add_argument("--cpu", type=int, default=0, metavar="STREAMS",
                        help="instead of holding streams, read STREAMS whole runs one after "
                        "another as fast as possible and give the server's CPU per event")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.port, args.tokens, args.tracemalloc, args.sndbuf)
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        found = asyncio.run(run(args, Path(tmp)))
    if args.json:
        args.json.write_text(json.dumps(found))
    report(found, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
