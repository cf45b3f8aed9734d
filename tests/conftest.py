"""Shared test set-up: async tests run under both asyncio and trio; a clock for tool timing;
a real redis-server for the tests that need one (the Redis saver, the server on Redis); a loopback
server behind the providers' base URLs for the docs' examples that name a model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .chat_models.loopback import LoopbackServer, serve_in_thread
from .redis_server import running_redis_server


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class FakeClock:
    """The clock sync tool calls are timed with (it decides where a tool runs next): a call
    takes exactly as long as the test moves ``now`` forward."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("rxagent._scheduler._clock", fake)
    return fake


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a redis-server started once per session on a free loopback port."""
    with running_redis_server(tmp_path_factory.mktemp("redis")) as (url, _):
        yield url


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """One loopback server behind both providers' base URLs, for LangChain's docs' examples run
    as written (model strings and all); replies are added per test."""
    with serve_in_thread() as (served, _):
        monkeypatch.setenv("OPENAI_BASE_URL", served.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", served.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-docs-test")
        yield served
