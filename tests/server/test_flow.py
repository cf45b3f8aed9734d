"""A client that stops reading holds the run back: the model stops producing, memory stays
bounded, and nothing is lost once it reads again."""

from __future__ import annotations

import json
import socket
import time

from langgraph_sdk.client import SyncLangGraphClient

from .agents import Flood
from .conftest import FLOOD_TOKENS
from .sse import parse_frames


def settled(read: object) -> int:
    """The count once it has stopped moving (three equal readings 0.1 s apart)."""
    values = [-1, -2, -3]
    while len(set(values[-3:])) > 1:
        time.sleep(0.1)
        values.append(read())  # type: ignore[operator]
    return values[-1]


def test_a_client_that_stops_reading_holds_the_model_back(
    client: SyncLangGraphClient, url: str,
) -> None:
    Flood.produced = 0
    body = json.dumps({"assistant_id": "flood", "input": {"messages": ["go"]},
                       "stream_mode": "messages-tuple"}).encode()
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 30) as sock:
        sock.sendall(
            b"POST /runs/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        first = sock.recv(1024)
        assert first.startswith(b"HTTP/1.1 200")
        # Not reading: the socket's buffers fill, then the run's log, then the run's own
        # buffer, and the model is held before its next token.
        held = settled(lambda: Flood.produced)
        assert 0 < held < FLOOD_TOKENS // 2
        # Reading again lets it finish, every token delivered once.
        received = bytearray(first)
        while not received.endswith(b"\r\n0\r\n\r\n"):  # the end of the chunked body
            chunk = sock.recv(1 << 16)
            assert chunk, "the server closed the connection"
            received += chunk
    assert Flood.produced == FLOOD_TOKENS
    frames = parse_frames(_unchunk(bytes(received).split(b"\r\n\r\n", 1)[1]))
    tokens = [f.data[0]["content"] for f in frames if f.event == "messages"]
    assert "".join(tokens) == "x" * FLOOD_TOKENS


def _unchunk(body: bytes) -> bytes:
    """The payload of an HTTP/1.1 chunked body."""
    out = bytearray()
    at = 0
    while True:
        end = body.index(b"\r\n", at)
        size = int(body[at:end], 16)
        if size == 0:
            return bytes(out)
        out += body[end + 2 : end + 2 + size]
        at = end + 2 + size + 2
