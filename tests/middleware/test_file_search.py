"""FilesystemFileSearchMiddleware: its two tools on a real folder, through ripgrep and through
Python (the same answers), and the folder's edge: nothing outside the root is ever read."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rxagent import create_agent
from rxagent.messages import HumanMessage, ToolMessage
from rxagent.middleware import FilesystemFileSearchMiddleware

from ..chat_models.loopback import LoopbackServer
from .over_the_wire import calls, text

MB = 1024 * 1024


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small project, and a secret beside it that symlinks inside point at."""
    root = tmp_path / "workspace"
    files = {
        "src/app.py": "import asyncio\n\nasync def main():\n    pass\nasync def other(): ...\n",
        "src/types.pyi": "async def main() -> None: ...\n",
        "src/ui/view.ts": "export async function render() {}\n",
        "src/ui/view.tsx": "const x = 1;\n",
        "docs/guide.md": "Write async def functions.\n",
        ".hidden/notes.py": "async def hidden(): ...\n",
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    (root / ".gitignore").write_text("docs/\n")  # ripgrep would skip these by default
    (root / "big.py").write_text("async def big(): ...\n" + "#" * (MB + 10))
    (root / "latin1.py").write_bytes("async def caf\xe9(): ...\n".encode("latin-1"))
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "keys.py").write_text("async def steal(): ...\n")
    (root / "link_to_secret.py").symlink_to(outside / "keys.py")
    (root / "secret_dir").symlink_to(outside, target_is_directory=True)
    # Known modification times: each file of the list newer than the one before.
    for order, name in enumerate(files):
        os.utime(root / name, (1_700_000_000 + order * 100, 1_700_000_000 + order * 100))
    return root


@pytest.fixture(params=[True, False], ids=["ripgrep", "python"])
def search(request: pytest.FixtureRequest, tree: Path,
           monkeypatch: pytest.MonkeyPatch) -> tuple[FilesystemFileSearchMiddleware, list[Any]]:
    """The middleware with ripgrep or without, and the ripgrep commands it ran."""
    assert shutil.which("rg"), "ripgrep is needed (CI installs it)"
    ran: list[Any] = []
    real_run = subprocess.run

    def spy(command: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    return FilesystemFileSearchMiddleware(root_path=str(tree), use_ripgrep=request.param,
                                          max_file_size_mb=1), ran


def grep(middleware: FilesystemFileSearchMiddleware, **args: Any) -> str:
    result: str = middleware.tools[1].invoke(args)
    return result


def glob(middleware: FilesystemFileSearchMiddleware, **args: Any) -> str:
    result: str = middleware.tools[0].invoke(args)
    return result


def test_grep_output_modes(search: tuple[FilesystemFileSearchMiddleware, list[Any]]) -> None:
    middleware, ran = search
    assert grep(middleware, pattern=r"async def") == "\n".join([
        "/.hidden/notes.py", "/docs/guide.md", "/src/app.py", "/src/types.pyi"])
    assert grep(middleware, pattern=r"async def \w+\(\)", output_mode="content") == "\n".join([
        "/.hidden/notes.py:1:async def hidden(): ...",
        "/src/app.py:3:async def main():",
        "/src/app.py:5:async def other(): ...",
        "/src/types.pyi:1:async def main() -> None: ..."])
    assert grep(middleware, pattern="async", output_mode="count", path="/src") == "\n".join([
        "/src/app.py:3", "/src/types.pyi:1", "/src/ui/view.ts:1"])
    # The big file (over 1 MB), the symlinks out of the root and the file that is not UTF-8
    # are never in an answer.
    assert len(ran) == (3 if middleware.use_ripgrep else 0)


def test_grep_include_filters_names_with_braces(
        search: tuple[FilesystemFileSearchMiddleware, list[Any]]) -> None:
    middleware, _ = search
    assert grep(middleware, pattern="async|const", include="*.{ts,tsx}") == \
        "/src/ui/view.ts\n/src/ui/view.tsx"
    assert grep(middleware, pattern="async", include="*.pyi") == "/src/types.pyi"
    assert grep(middleware, pattern="async", include="*.{py") == "Invalid include pattern"
    assert grep(middleware, pattern="async", include="*.{}") == "Invalid include pattern"


def test_grep_refuses_bad_patterns_and_paths(
        search: tuple[FilesystemFileSearchMiddleware, list[Any]]) -> None:
    middleware, ran = search
    assert grep(middleware, pattern="(unclosed").startswith("Invalid regex pattern: ")
    for path in ("/../secret", "../secret", "~/", "/secret_dir", "/nowhere"):
        assert grep(middleware, pattern="async", path=path) == "No matches found", path
    assert grep(middleware, pattern="no such text anywhere") == "No matches found"
    assert all("secret" not in " ".join(map(str, command)) for command in ran)


def test_glob_newest_first_and_inside_the_root(
        search: tuple[FilesystemFileSearchMiddleware, list[Any]]) -> None:
    middleware, _ = search
    assert glob(middleware, pattern="**/*.ts") == "/src/ui/view.ts"
    assert glob(middleware, pattern="**/*.md") == "/docs/guide.md"
    assert glob(middleware, pattern="**/*", path="/src") == \
        "/src/ui/view.tsx\n/src/ui/view.ts\n/src/types.pyi\n/src/app.py"  # newest first
    assert glob(middleware, pattern="*.py", path="/src") == "/src/app.py"
    # Out of the root: the symlinked file and folder, absolute and parent patterns.
    everything = glob(middleware, pattern="**/*").splitlines()
    assert not [p for p in everything if "secret" in p]
    assert glob(middleware, pattern="/etc/*") == "No files found"
    assert glob(middleware, pattern="../secret/*") == "No files found"
    assert glob(middleware, pattern="*", path="/../") == "No files found"


def test_the_docs_example_searches_for_the_model(server: LoopbackServer, tree: Path) -> None:
    agent = create_agent(
        model="gpt-5.4",
        tools=[],
        middleware=[
            FilesystemFileSearchMiddleware(
                root_path=str(tree),
                use_ripgrep=True,
                max_file_size_mb=10,
            ),
        ],
    )
    server.add(calls(("glob_search", {"pattern": "**/*.py"})),
               calls(("grep_search", {"pattern": "async def", "include": "*.py"})),
               text("Two files define async functions."))

    # Agent can now use glob_search and grep_search tools
    result = agent.invoke({
        "messages": [HumanMessage("Find all Python files containing 'async def'")]
    })

    offered = [t["function"]["name"] for t in server.requests[0].json["tools"]]
    assert offered == ["glob_search", "grep_search"]
    found, grepped = [m.content for m in result["messages"] if isinstance(m, ToolMessage)]
    assert set(found.splitlines()) == {"/.hidden/notes.py", "/src/app.py", "/big.py",
                                       "/latin1.py"}
    assert grepped == "/.hidden/notes.py\n/big.py\n/src/app.py"  # big.py is under 10 MB
    assert result["messages"][-1].content == "Two files define async functions."
