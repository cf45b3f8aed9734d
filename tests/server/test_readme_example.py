"""The README's client example streams from a real server, as written (only the port moves)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from rxagent.server import create_app

from .agents import weather_agent
from .conftest import ServerThread

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_client_streams_the_answer() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    example = next(block for block in blocks if "langgraph_sdk" in block)
    assert "http://127.0.0.1:2024" in example
    with ServerThread(create_app({"agent": weather_agent()})) as server:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(example.replace("http://127.0.0.1:2024", server.url),
                         "README.md", "exec"), {"__name__": "readme_serving"})
    # The model's tokens and the tool's result, as they stream.
    assert out.getvalue() == "It's always sunny in SF!The weather: It's always sunny in SF!"
