"""The ``server`` fixture: a loopback server behind both providers' base URLs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..chat_models.loopback import LoopbackServer, serve_in_thread


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """One loopback server behind both providers' base URLs; replies are added per test."""
    with serve_in_thread() as (served, _):
        monkeypatch.setenv("OPENAI_BASE_URL", served.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", served.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-docs-test")
        yield served
