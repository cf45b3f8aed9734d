"""What making streamed runs survive their process costs a run's time to first event, on Redis.

Two apps in this process, on one real ``redis-server`` (started here on a loopback port, or
``--redis-url``), each under its own key prefix, each served by uvicorn on a loopback port of
this process's event loop: ``create_app(..., move_streamed=True)`` (the default: a streamed run
is recorded as taken by its process, so that another worker continues it should that process
die) and ``move_streamed=False`` (the code before that: the run ends ``RunLost`` then). The
client is ``httpx`` on the same loop. Each round makes a thread (not timed), then times
``POST /threads/{t}/runs/stream`` from the request to the first byte of the ``metadata`` frame
and to the first token's frame; the two apps take turns, in alternating order (A, B, then
B, A, ...), so that the machine's drift weighs on both alike. Every stream is read to its end
and must hold every token once, in order.

    python bench/redis_first_event.py                 # 400 rounds
    python bench/redis_first_event.py --rounds 2000 --tokens 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn

from rxagent import create_agent
from rxagent.server import create_app
from rxagent.testing import FunctionChatModel


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _redis_server() -> Iterator[str]:
    """A fresh ``redis-server`` on a loopback port, without persistence; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (or give --redis-url)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", folder],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(500):
                with contextlib.suppress(OSError), socket.create_connection(
                        ("127.0.0.1", port), timeout=0.1):
                    break
                time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


def _agent(tokens: list[str]) -> Any:
    async def reply(messages: object, tools: object) -> AsyncIterator[str]:
        for token in tokens:
            yield token

    return create_agent(FunctionChatModel(reply), [])


@contextlib.asynccontextmanager
async def _serving(app: Any) -> AsyncIterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           ws="none", lifespan="on", loop="asyncio"))
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _one(client: httpx.AsyncClient, url: str, tokens: list[str]) -> tuple[float, float]:
    """One streamed run: seconds to the metadata frame and to the first token's frame."""
    thread = (await client.post(f"{url}/threads", json={})).json()["thread_id"]
    body = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "go"}]},
            "stream_mode": "messages-tuple"}
    metadata = first = None
    seen: list[str] = []
    start = time.perf_counter()
    async with client.stream("POST", f"{url}/threads/{thread}/runs/stream", json=body) as reply:
        buffer = b""
        async for chunk in reply.aiter_raw():
            if metadata is None:
                metadata = time.perf_counter() - start
            buffer += chunk
            *frames, buffer = buffer.split(b"\r\n\r\n")
            for frame in frames:
                name, _, data = frame.partition(b"\r\ndata: ")
                if name == b"event: messages":
                    content = json.loads(data)[0]["content"]
                    if content:
                        if first is None:
                            first = time.perf_counter() - start
                        seen.append(content)
    if seen != tokens or metadata is None or first is None:
        raise AssertionError(f"the stream did not hold every token once, in order: {seen}")
    return metadata, first


async def _main(redis_url: str, rounds: int, count: int) -> None:
    tokens = [f"t{i} " for i in range(count)]
    apps = {
        "moved": create_app({"agent": _agent(tokens)}, redis_url=redis_url,
                            redis_prefix="bench:moved:", move_streamed=True),
        "kept": create_app({"agent": _agent(tokens)}, redis_url=redis_url,
                           redis_prefix="bench:kept:", move_streamed=False),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
    async with contextlib.AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(_serving(app))
                for name, app in apps.items()}
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        for name in apps:  # warm up: connections, scripts, the first run's imports
            for _ in range(20):
                await _one(client, urls[name], tokens)
        order = list(apps)
        for i in range(rounds):
            for name in order if i % 2 == 0 else order[::-1]:
                times[name].append(await _one(client, urls[name], tokens))
    print(f"{rounds} rounds, {count} tokens a run, medians (p90):")
    for which, label in ((0, "metadata frame"), (1, "first token")):
        values = {name: sorted(t[which] for t in found) for name, found in times.items()}
        median = {name: statistics.median(found) for name, found in values.items()}
        p90 = {name: found[int(0.9 * len(found))] for name, found in values.items()}
        print(f"  {label:15} move_streamed=True {median['moved'] * 1e3:.3f} ms "
              f"({p90['moved'] * 1e3:.3f}), False {median['kept'] * 1e3:.3f} ms "
              f"({p90['kept'] * 1e3:.3f}): ratio {median['moved'] / median['kept']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--tokens", type=int, default=5)
    parser.add_argument("--redis-url", help="a Redis to use (its keys under bench:*)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.redis_url or stack.enter_context(_redis_server())
        asyncio.run(_main(url, args.rounds, args.tokens))


if __name__ == "__main__":
    main()
