"""The loopback server of ``bench/providers.py``: HTTP/1.1 keep-alive, pre-rendered SSE bodies.

It runs in a process of its own (``python bench/_providers_server.py`` prints ``PORT <n>``,
then serves until its stdin closes), so that it shares no GIL with the clients it serves: on
2 cores a server in the clients' process would make every library look as slow as the server.
It does as little as it can per request: read the head and the body, look the reply up in
:func:`_providers_wire.reply_for` (each body rendered once, then cached) and write it whole
with a ``content-length``; asyncio sends it as fast as the socket takes it.

:class:`Server` starts and stops it from the benchmark's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import _providers_wire as wire

_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
         b"cache-control: no-cache\r\nx-request-id: req_bench\r\nrequest-id: req_bench\r\n"
         b"content-length: %d\r\n\r\n")
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            request = await reader.readexactly(int(headers.get("content-length", "0")))
            reply = wire.reply_for(path, request)
            writer.write(_NOT_FOUND if reply is None else _HEAD % len(reply) + reply)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _main() -> None:
    # 1,000 concurrent runs hold 1,000 connections open at once.
    server = await asyncio.start_server(_serve_connection, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the benchmark closes our stdin (or dies: its end of the pipe closes too).
    await loop.run_in_executor(None, sys.stdin.read)
    # Leave at once: connections still open belong to a benchmark that is done with them.
    os._exit(0)


def raise_open_files_limit() -> None:
    """Lift the soft limit on open files to the hard one: 1,000 sockets need it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """The server process, started on entering and stopped on leaving; ``port`` once started."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Server:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__))], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            self._process.kill()
            raise RuntimeError(f"the loopback server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        process = self._process
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    raise_open_files_limit()
    asyncio.run(_main())
