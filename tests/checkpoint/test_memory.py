"""InMemorySaver keeps every promise of the conformance suite."""

from __future__ import annotations

import pytest

from rxagent.checkpoint import InMemorySaver
from rxagent.checkpoint.conformance import SaverConformance


class TestInMemorySaver(SaverConformance):
    @pytest.fixture
    def saver(self) -> InMemorySaver:
        return InMemorySaver()
