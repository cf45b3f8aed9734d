"""A client on the session's redis-server (``tests/conftest.py`` starts it), emptied per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    """A client on the test server, its database emptied first."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()
