"""A real server on a loopback port, in a thread of the test process, for the SDK to talk to."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from rxagent.server import create_app
from rxagent.server._serve import http_protocol

from .agents import (
    booking_agent,
    broken_agent,
    context_agent,
    crashing_agent,
    echo_agent,
    flood_agent,
    gated_agent,
    nested_agent,
    token_agent,
    weather_agent,
)

FLOOD_TOKENS = 60_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1 from a thread, with the HTTP protocol ``rxagent
    serve`` uses; ``url`` once started."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                ws="none", lifespan="on", timeout_graceful_shutdown=1,
                                http=http_protocol())
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            self.thread.join(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    app = create_app({
        "weather": weather_agent(),
        "echo": echo_agent(),
        "tokens": token_agent(40),
        "gated": gated_agent(),
        "booking": booking_agent(),
        "broken": broken_agent(),
        "crashing": crashing_agent(),
        "flood": flood_agent(FLOOD_TOKENS),
        "nested": nested_agent(),
        "context": context_agent(),
    }, retention=60)
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def url(server: ServerThread) -> str:
    return server.url


@pytest.fixture
def client(url: str) -> Iterator[SyncLangGraphClient]:
    """The SDK's sync client, closed after the test."""
    with get_sync_client(url=url) as sdk:
        yield sdk
