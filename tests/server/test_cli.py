"""``rxagent serve`` as a user runs it: a subprocess on a loopback port, driven by the SDK."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from rxagent._cli import main

from .processes import rxagent_serve

AGENT_FILE = '''
from rxagent import create_agent
from rxagent.testing import FunctionChatModel

def reply(messages, tools):
    return "You said: " + " | ".join(m.text for m in messages if m.type == "human")

agent = create_agent(FunctionChatModel(reply), [])
not_an_agent = 42
'''


@contextmanager
def serving(*args: str, cwd: Path) -> Iterator[str]:
    """``rxagent serve ARGS`` in a subprocess; its URL once it answers ``/ok``."""
    with rxagent_serve(list(args), cwd=cwd, log=cwd / "serve.log") as url:
        yield url


def ask(url: str, graph: str, thread: str, text: str) -> str:
    with get_sync_client(url=url) as client:
        result = client.runs.wait(thread, graph, input={"messages": [text]},
                                  if_not_exists="create")
    return str(result["messages"][-1]["content"])  # type: ignore[index]


def test_serve_a_file_target(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(AGENT_FILE)
    with serving("agent.py:agent", "named=agent.py:agent", cwd=tmp_path) as url:
        assert ask(url, "agent", "t1", "hi") == "You said: hi"
        assert ask(url, "named", "t2", "hello") == "You said: hello"
        graphs = [a["graph_id"] for a in httpx.post(f"{url}/assistants/search", json={}).json()]
        assert sorted(graphs) == ["agent", "named"]


def test_serve_a_config_with_threads_in_sqlite(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "echo.py").write_text(AGENT_FILE)
    (tmp_path / "langgraph.json").write_text(json.dumps(
        {"graphs": {"echo": "./agents/echo.py:agent"}}))
    db = str(tmp_path / "threads.db")
    with serving("--config", "langgraph.json", "--sqlite", db, cwd=tmp_path) as url:
        assert ask(url, "echo", "kept", "one") == "You said: one"
    # A new process reads the thread back from the file.
    with serving("--config", "langgraph.json", "--sqlite", db, cwd=tmp_path) as url:
        assert httpx.get(f"{url}/threads/kept").status_code == 200
        assert ask(url, "echo", "kept", "two") == "You said: one | two"


@pytest.mark.parametrize(("argv", "message"), [
    (["serve", "nofile.py:agent"], "no file"),
    (["serve", "{dir}/agent.py:not_an_agent"], "not an agent"),
    (["serve", "{dir}/agent.py:missing"], "missing"),
    (["serve", "no.such.module:agent"], "cannot import"),
    (["serve", "--config", "{dir}/nothing.json"], "cannot read"),
])
def test_serve_refuses_what_it_cannot_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
) -> None:
    (tmp_path / "agent.py").write_text(AGENT_FILE)
    assert main([arg.format(dir=tmp_path) for arg in argv]) == 1
    assert message in capsys.readouterr().err


def test_serve_needs_targets_or_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve"])
    assert exit_.value.code == 2
    assert main(["serve", "bad-target"]) == 1
    assert "path/to/file.py:attr" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_jobs_per_worker_is_at_least_one(
    capsys: pytest.CaptureFixture[str], command: str,
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "agent.py:agent", "--redis-url", "redis://127.0.0.1:1/0",
              "--jobs-per-worker", "0"])
    assert exit_.value.code == 2
    assert "--jobs-per-worker must be at least 1" in capsys.readouterr().err


def _get_ok(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    received = b""
    while not received.endswith(b'{"ok":true}'):
        chunk = sock.recv(4096)
        if not chunk:
            return received  # the server closed the connection
        received += chunk
    return received


def test_an_idle_connection_outlasts_the_clients_own_keep_alive(tmp_path: Path) -> None:
    # httpx (and so the langgraph-sdk) keeps an idle connection 5 s, uvicorn's own default: a
    # request sent on it just before then could meet the server closing it. The server keeps
    # it longer, so the client lets go first.
    (tmp_path / "agent.py").write_text(AGENT_FILE)
    with serving("agent.py:agent", cwd=tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert _get_ok(sock).startswith(b"HTTP/1.1 200")
            time.sleep(5.5)  # past httpx's keepalive_expiry (and uvicorn's default)
            assert _get_ok(sock).startswith(b"HTTP/1.1 200")
    with serving("agent.py:agent", "--timeout-keep-alive", "1", cwd=tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert _get_ok(sock).startswith(b"HTTP/1.1 200")
            assert sock.recv(1) == b""  # closed by the server after a second idle
