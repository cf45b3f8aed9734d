"""``rxagent serve`` as a user runs it: a subprocess on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .conftest import free_port


@contextmanager
def rxagent_serve(
    arguments: list[str], *, cwd: Path, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``rxagent serve ARGUMENTS`` in a subprocess, its output in the file ``log`` (a pipe
    nobody reads would fill up and stop the server); its URL once it answers ``/ok``."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "rxagent", "serve", *arguments, "--port", str(port)],
            cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "", **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1500):
            if process.poll() is not None:
                pytest.fail(f"rxagent serve exited: {log.read_text()}")
            try:
                if httpx.get(f"{url}/ok", timeout=1).json() == {"ok": True}:
                    break
            except httpx.TransportError:
                time.sleep(0.02)  # not up yet
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # a request that never ends holds uvicorn up
            process.kill()
            process.wait()
