"""The fault-injecting server of the soak: HTTP/1.1 on 127.0.0.1, both wire formats.

Each request carries its run's number (the ``x-soak-run`` header the soak's models send); the
server plays that run's next :class:`~bench._soak_plan.Attempt`, whatever the endpoint
(``/v1/chat/completions`` and ``/v1/messages`` both work, the format is the plan's). One
request per connection (``connection: close``), so that every connection belongs to one
attempt of one run.

While it sends, pauses or stalls, the server keeps reading the socket, so that it notices the
client leaving (EOF or a reset) at once, and records when: a :class:`Connection` per
connection, with the time the server was done with it and the time it saw the client go. The
soak compares the latter with the time its consumer left.

It runs on anyio (so it could run under either backend), in a process of its own
(``python bench/_faults.py --seed S --runs N``, the key on stdin), so that it never competes
with the clients for the GIL: a server starved by the process it tests would make a 1-byte
trickle slower than the idle timeout and blame the library for it. It draws the same plans
from the same seed as the soak. The soak reads what it saw over HTTP
(``GET /_soak/connections/<run>``, ``GET /_soak/status``), through :class:`RemoteServer`.
Times are ``time.monotonic()``, the same clock in both processes (CLOCK_MONOTONIC).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _soak_wire as wire
import anyio
import anyio.abc
from _soak_plan import MAX_RETRIES, Attempt, RunPlan, make_plans, warm_up_plans

# How long a stalled reply waits for the client to go before the server gives up on it.
STALL_CAP = 30.0
# Seconds between two token events of a text reply.
TOKEN_PACE = 0.002
# The longest body write; a long reply goes out in pieces of this size.
PIECE = 64 * 1024

_REASONS = {200: "OK", 400: "Bad Request", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            529: "Overloaded"}


@dataclass(frozen=True)
class Pause:
    seconds: float


class _Mark:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


RESET = _Mark("RESET")    # abort the connection (TCP RST)
CUT = _Mark("CUT")        # close the connection without ending the body
STALL = _Mark("STALL")    # send nothing more until the client goes

Part = bytes | Pause | _Mark


@dataclass
class Connection:
    """What the server saw of one connection (times from ``time.monotonic()``)."""

    opened: float
    run: int | None = None
    attempt: int = -1
    fault: str = ""
    request_at: float | None = None   # the server had read the whole request
    server_done: float | None = None  # the server finished, closed or reset it
    client_gone: float | None = None  # the server saw the client close or reset it
    key_ok: bool = True               # the request carried the run's API key


@dataclass
class _Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: list[Part] = field(default_factory=list)
    chunked: bool = True
    piece: int | None = None  # write the body this many bytes at a time (1: a trickle)
    stall_first: bool = False  # send no headers at all, then stall
    send_head: bool = True  # False: go straight to the body's marks (a reset before headers)
    pace: float = 0.0  # seconds between two writes: a model writes its tokens over time

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays usable after this response: it ends where its
        framing says (chunked, or a content-length) and no fault breaks it."""
        return (self.send_head and not self.stall_first
                and (self.chunked or self.status != 200)
                and not any(isinstance(part, _Mark) for part in self.body))


def response_for(wire_name: str, attempt: Attempt) -> _Response:
    """The response that plays ``attempt`` in ``wire_name``'s format."""
    rng = random.Random(attempt.seed)
    fault = attempt.fault

    def status(code: int, kind: str, **headers: str) -> _Response:
        return _Response(code, {"content-type": "application/json", **headers},
                         [wire.error_body(wire_name, kind)], chunked=False)

    # Failures before the first token.
    if fault == "reset_before":
        return _Response(body=[RESET], send_head=False)
    if fault == "cut_before":
        return _Response(body=[wire.head(wire_name), CUT], chunked=attempt.chunked)
    if fault == "status_429_ra":
        return status(429, "rate_limit_error", **{"retry-after": rng.choice(["0", "0.01"])})
    if fault == "status_429_ra_ms":
        return status(429, "rate_limit_error", **{"retry-after-ms": "5"})
    if fault == "status_5xx":
        return status(rng.choice([500, 502, 503]), "api_error")
    if fault == "status_529":
        return status(529, "overloaded_error")
    if fault == "overloaded_event":
        return _Response(body=[wire.head(wire_name), wire.error_event(wire_name)],
                         chunked=attempt.chunked)
    if fault == "status_400":
        return status(400, "invalid_request_error")
    if fault == "stall_before":
        if rng.random() < 0.5:
            return _Response(stall_first=True)
        return _Response(body=[wire.head(wire_name), STALL], chunked=attempt.chunked)

    if attempt.tool:
        return _tool_response(wire_name, attempt)
    return _text_response(wire_name, attempt, rng)


def _tool_response(wire_name: str, attempt: Attempt) -> _Response:
    events = [e + b"\n\n" for e in wire.tool_call(
        wire_name, scrambled=attempt.fault == "tool_scrambled").split(b"\n\n") if e]
    half = len(events) // 2
    if attempt.fault == "reset_during":
        events = [*events[:half], RESET]
    elif attempt.fault == "not_json":
        events = [*events[:half], wire.not_json(wire_name), STALL]
    return _Response(body=list(events), chunked=attempt.chunked)


@functools.cache
def _long_reply(wire_name: str, count: int) -> tuple[bytes, ...]:
    """A whole text reply of ``count`` tokens in pieces of :data:`PIECE` bytes. Built once per
    process (at start-up for the soak's size): building it takes the server's loop a tenth of
    a second, during which it would read no request and see no client go."""
    texts = wire.tokens(count)
    whole = wire.head(wire_name) + b"".join(wire.token_event(wire_name, t) for t in texts)
    whole += wire.tail(wire_name)
    return tuple(whole[i:i + PIECE] for i in range(0, len(whole), PIECE))


def _text_response(wire_name: str, attempt: Attempt, rng: random.Random) -> _Response:
    fault = attempt.fault
    texts = wire.tokens(attempt.tokens)
    if fault == "long_reply":
        return _Response(body=list(_long_reply(wire_name, attempt.tokens)),
                         chunked=attempt.chunked)

    events: list[Part] = [wire.token_event(wire_name, t) for t in texts]
    at = attempt.at
    if fault == "huge_line":
        events[at] = wire.padded_token(wire_name, texts[at], b"x" * 10_000_000)
    elif fault == "invalid_utf8":
        events[at] = wire.padded_token(wire_name, texts[at], b"\xff\xfe\xc3(\xed\xa0\x80")
    elif fault == "pause_short":
        for _ in range(rng.randint(1, 4)):
            events.insert(rng.randrange(len(events) + 1), Pause(rng.uniform(0.01, 0.08)))
    after = events[:at]
    if fault == "reset_during":
        body = [*after, RESET]
    elif fault == "cut_during":
        body = [*after, CUT]
    elif fault == "stall_during":
        body = [*after, STALL]
    elif fault == "not_json":
        body = [*after, wire.not_json(wire_name), STALL]
    elif fault == "wrong_shape":
        body = [*after, wire.wrong_shape(wire_name), STALL]
    elif fault == "error_event_during":
        body = [*after, wire.error_event(wire_name)]
    else:
        body = [*events, wire.tail(wire_name)]
    # Tokens come 2 ms apart (a trickle's bytes as fast as they go), so that most consumers
    # that leave do so while the server is still writing, and the disconnect is measured.
    trickle = fault == "trickle"
    return _Response(body=[wire.head(wire_name), *body], chunked=attempt.chunked,
                     piece=1 if trickle else None, pace=0.0 if trickle else TOKEN_PACE)


class FaultServer:
    """The server's state: the plans it plays and the connections it saw."""

    def __init__(self, plans: dict[int, RunPlan], keys: dict[int, str]) -> None:
        self.plans = plans
        self.keys = keys
        self.port = 0
        self.connections: list[Connection] = []
        self.by_run: dict[int, list[Connection]] = {}
        self.requests_beyond_plan = 0
        self.open = 0
        self._next: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _attempt_for(self, run: int) -> tuple[int, Attempt | None, bool]:
        """The run's next attempt, its number, and whether the client may make it at all:
        not once a call has failed ``max_retries + 1`` times (the run must end there)."""
        with self._lock:
            number = self._next.get(run, 0)
            self._next[run] = number + 1
        allowed = True
        position = 0
        for call in self.plans[run].calls:
            for in_call, attempt in enumerate(call.attempts):
                if position == number:
                    return number, attempt, allowed and in_call <= MAX_RETRIES
                position += 1
            allowed = allowed and call.retries <= MAX_RETRIES
        return number, None, False

    def connections_of(self, run: int) -> list[Connection]:
        return list(self.by_run.get(run, ()))

    def _report(self, path: str) -> bytes:
        """The answer to the soak's questions: a run's connections, or the totals."""
        if path.startswith("/_soak/connections/"):
            run = int(path.rsplit("/", 1)[1])
            data: Any = [asdict(c) for c in self.connections_of(run)]
        else:
            data = {"open": self.open - 1, "connections": len(self.connections),
                    "requests_beyond_plan": self.requests_beyond_plan}
        body = json.dumps(data).encode()
        return (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n" % len(body) + body)

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        """Serve one connection: requests one after another while the responses leave it
        usable (HTTP/1.1 keep-alive), so that a client that never closes its connections
        shows as connections left open at the end."""
        self.open += 1
        socket_ = _Socket(stream)
        outcome = "close"
        try:
            while True:
                headers = await _read_request(socket_)
                if headers is None:
                    return  # the client closed the connection between requests
                if headers[":path"].startswith("/_soak/"):
                    await stream.send(self._report(headers[":path"]))
                    return
                conn, response = self._start(headers)
                outcome = await _serve_one(socket_, response, conn)
                if outcome != "kept":
                    return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        finally:
            with anyio.CancelScope(shield=True):
                if outcome == "reset":
                    _abort(stream)
                await stream.aclose()
            self.open -= 1

    def _start(self, headers: dict[str, str]) -> tuple[Connection, _Response]:
        """The record of a request of a run, and the response its plan says to play."""
        now = time.monotonic()
        run = int(headers.get("x-soak-run", "-1"))
        conn = Connection(opened=now, request_at=now, run=run)
        self.connections.append(conn)
        self.by_run.setdefault(run, []).append(conn)
        key = self.keys.get(run, "")
        conn.key_ok = bool(key) and key in (headers.get("x-api-key"),
                                            headers.get("authorization", "")[7:])
        plan = self.plans.get(run)
        number, attempt, allowed = self._attempt_for(run) if plan else (0, None, False)
        conn.attempt = number
        if attempt is None:
            # A request the plan did not expect: a retry where none may happen (after the
            # first token) or a model call too many. The reply starts again from token 0, as
            # a real server's would, so a retry after the first token also shows as
            # repeated tokens.
            attempt = Attempt("clean", tokens=plan.text_call.final.tokens if plan else 3)
        conn.fault = attempt.fault if allowed else "unplanned"
        if not allowed:
            # Also a retry past max_retries: played as planned, but a failure of the run.
            self.requests_beyond_plan += 1
        return conn, response_for(plan.wire if plan else "openai", attempt)


class _Socket:
    """A connection's stream and the bytes read from it that no request has used yet."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()


async def _serve_one(socket_: _Socket, response: _Response, conn: Connection) -> str:
    """Play one response while watching for the client going; how it ended: ``"kept"``
    (complete, the connection reusable), ``"close"``, ``"reset"`` or ``"gone"``."""
    outcome = "close"
    async with anyio.create_task_group() as group:
        group.start_soon(_watch, socket_, conn, group.cancel_scope)
        try:
            reset = await _play(socket_.stream, response, conn)
            outcome = "reset" if reset else "kept" if response.keep_alive else "close"
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            # A write failed: the client is gone (a reset, or it closed first).
            if conn.client_gone is None:
                conn.client_gone = time.monotonic()
        group.cancel_scope.cancel()
    if conn.server_done is None:
        conn.server_done = time.monotonic()
    return "gone" if conn.client_gone is not None else outcome


async def _watch(socket_: _Socket, conn: Connection, scope: anyio.CancelScope) -> None:
    """Read the socket until the client goes; then stop the reply (the whole task group).
    What it reads (a next request, sent as soon as the response ended) is kept."""
    try:
        while True:
            socket_.buffer += await socket_.stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        pass
    except anyio.ClosedResourceError:
        return
    if conn.client_gone is None:
        conn.client_gone = time.monotonic()
    scope.cancel()


async def _play(stream: anyio.abc.SocketStream, response: _Response, conn: Connection) -> bool:
    """Send ``response``; whether it ends with a reset.

    ``conn.server_done`` is set the moment the last byte is handed to the socket (or the
    connection cut), before yielding to anyone, so that a client that leaves after reading
    the whole response is never taken for one that left a response under way.
    """
    if response.stall_first:
        await anyio.sleep(STALL_CAP)
        return False
    steps: list[Part] = [_head(response)] if response.send_head else []
    for part in response.body:
        if isinstance(part, bytes):
            size = response.piece or len(part) or 1
            for start in range(0, len(part), size):
                piece = part[start:start + size]
                steps.append(b"%x\r\n" % len(piece) + piece + b"\r\n"
                             if response.chunked else piece)
        else:
            steps.append(part)
    if response.chunked and response.status == 200 and not any(
            isinstance(step, _Mark) for step in steps):
        steps.append(b"0\r\n\r\n")
    last = len(steps) - 1
    for number, step in enumerate(steps):
        if step is RESET or step is CUT:
            conn.server_done = time.monotonic()
            return step is RESET
        if step is STALL:
            await anyio.sleep(STALL_CAP)
            return False
        if isinstance(step, Pause):
            await anyio.sleep(step.seconds)
            continue
        assert isinstance(step, bytes)
        await stream.send(step)
        if number == last:
            conn.server_done = time.monotonic()
        else:
            await anyio.sleep(response.pace)  # the client reads this piece on its own
    return False


def _head(response: _Response) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
    if not response.keep_alive:
        lines.append("connection: close")
    headers = {"content-type": "text/event-stream", **response.headers}
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if response.status != 200:
        body = b"".join(p for p in response.body if isinstance(p, bytes))
        lines.append(f"content-length: {len(body)}")
    elif response.chunked:
        lines.append("transfer-encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _abort(stream: anyio.abc.SocketStream) -> None:
    # SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def _read_request(socket_: _Socket) -> dict[str, str] | None:
    """The next request's headers (lower-case names, the path as ``:path``), its body read
    and dropped; ``None`` if the client closed the connection first."""
    buffer = socket_.buffer
    try:
        while b"\r\n\r\n" not in buffer:
            buffer += await socket_.stream.receive()
        end = buffer.index(b"\r\n\r\n")
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        headers = {":path": lines[0].split(" ")[1] if " " in lines[0] else ""}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(buffer) < end + 4 + length:
            buffer += await socket_.stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return None
    del buffer[:end + 4 + length]
    return headers


async def _serve(seed: int, runs: int, key: str) -> None:
    plans = make_plans(seed, runs) + warm_up_plans(runs)
    for plan in plans:
        for call in plan.calls:
            if call.final.fault == "long_reply":
                _long_reply(plan.wire, call.final.tokens)
    server = FaultServer({p.index: p for p in plans}, dict.fromkeys((p.index for p in plans), key))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0, backlog=512)
    print(listener.extra(anyio.abc.SocketAttribute.local_port), flush=True)
    await listener.serve(server.handle)


class RemoteServer:
    """The soak's side of the server process: start it, ask it what it saw, stop it."""

    def __init__(self, seed: int, runs: int, key: str) -> None:
        self._args = [sys.executable, str(Path(__file__)), "--seed", str(seed),
                      "--runs", str(runs)]
        self._key = key
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RemoteServer:
        # The key goes on stdin: a command line is visible to every user of the machine.
        self._process = subprocess.Popen(self._args, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(self._key + "\n")
        self._process.stdin.close()
        self.port = int(self._process.stdout.readline())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._process is not None
        self._process.terminate()
        try:
            self._process.wait(10.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    async def _get(self, path: str) -> Any:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nhost: soak\r\n\r\n".encode())
            data = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return json.loads(data.split(b"\r\n\r\n", 1)[1])

    async def connections_of(self, run: int) -> list[Connection]:
        """What the server saw of the run's connections."""
        return [Connection(**c) for c in await self._get(f"/_soak/connections/{run}")]

    async def status(self) -> dict[str, int]:
        """``open`` connections, ``connections`` served, ``requests_beyond_plan``."""
        result: dict[str, int] = await self._get("/_soak/status")
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description="The soak's fault-injecting server.")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--runs", type=int, required=True)
    args = parser.parse_args()
    key = sys.stdin.readline().strip()
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(_serve, args.seed, args.runs, key)


if __name__ == "__main__":
    main()
