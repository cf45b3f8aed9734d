"""``rxagent serve``'s app on a loopback port with the agents the AG-UI tests drive."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rxagent.server import create_app

from ..server.agents import (
    booking_agent,
    crashing_agent,
    echo_agent,
    gated_agent,
    weather_agent,
)
from ..server.conftest import ServerThread
from .agents import failing_agent, profile_agent, reasoning_agent


@pytest.fixture(scope="module")
def served() -> Iterator[ServerThread]:
    app = create_app({
        "weather": weather_agent(),
        "echo": echo_agent(),
        "gated": gated_agent(),
        "booking": booking_agent(),
        "crashing": crashing_agent(),
        "failing": failing_agent(),
        "profile": profile_agent(),
        "reasoning": reasoning_agent(),
    })
    with ServerThread(app) as running:
        yield running
