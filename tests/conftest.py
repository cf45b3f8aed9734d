"""Shared test set-up: async tests run under both asyncio and trio; a clock for tool timing."""

from __future__ import annotations

import pytest


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
