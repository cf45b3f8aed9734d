"""rxagent's side of ``bench/serve.py``: the agents ``rxagent serve`` serves.

Each answers ``SERVE_BENCH_<NAME>`` tokens ("0000", "0001", ...) from a fake model of rxagent's
testing kit, one chunk per token, pulled only as the run has room (a generator), as a model's
socket would be read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # rxagent serve loads this file by path

from _common import make_tokens

from rxagent import create_agent
from rxagent.testing import FunctionChatModel


def _agent(name: str) -> object:
    tokens = make_tokens(int(os.environ[f"SERVE_BENCH_{name.upper()}"]))

    def reply(messages: object, tools: object) -> object:
        yield from tokens

    return create_agent(FunctionChatModel(reply), [])


long = _agent("long")
short = _agent("short")
held = _agent("held")
