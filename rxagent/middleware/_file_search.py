"""``FilesystemFileSearchMiddleware``: ``glob_search`` and ``grep_search`` tools over one folder.

The model sees the folder as a virtual filesystem rooted at ``/``: every path it gives is read
below ``root_path`` and every path it gets back is relative to it, so no answer shows where the
folder really is. Nothing outside the folder is reachable: a path is resolved (``..`` and
symlinks) before it is checked to be under the root, and so is every file found.

``grep_search`` uses ripgrep (``rg``) when it is installed and ``use_ripgrep`` is on, and Python's
``re`` otherwise; both give the same results for the regex syntax they share (the pattern must
compile in Python's ``re`` either way).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

from .._tools import BaseTool
from ._types import AgentMiddleware

__all__ = ["FilesystemFileSearchMiddleware"]

OutputMode = Literal["files_with_matches", "content", "count"]

_NO_FILES = "No files found"
_NO_MATCHES = "No matches found"
_RIPGREP_TIMEOUT_S = 30

# file (virtual path) -> [(line number, line)]
_Matches = dict[str, list[tuple[int, str]]]


class FilesystemFileSearchMiddleware(AgentMiddleware[Any, Any]):
    """Give the agent two tools that search the files under one folder.

    - ``glob_search(pattern, path="/")``: files whose path matches a glob (``**/*.py``), newest
      first.
    - ``grep_search(pattern, path="/", include=None, output_mode="files_with_matches")``: files
      whose lines match a regex; ``output_mode`` ``"content"`` gives ``path:line:text`` and
      ``"count"`` gives ``path:count``; ``include`` filters file names (``*.{ts,tsx}``).

    Args:
        root_path: the folder the tools search; the model sees it as ``/``.
        use_ripgrep: search contents with ``rg`` when it is installed (Python's ``re``
            otherwise, or when ``rg`` fails).
        max_file_size_mb: skip files larger than this.
    """

    def __init__(self, *, root_path: str, use_ripgrep: bool = True,
                 max_file_size_mb: int = 10) -> None:
        self.root_path = Path(root_path).resolve()
        self.use_ripgrep = use_ripgrep
        self.max_file_size_bytes = max_file_size_mb * 1024 * 1024
        self.tools = [
            BaseTool(self._glob_search, name="glob_search", description=(
                "Find files by a glob pattern on their path, such as '**/*.py' or "
                "'src/**/*.ts'. Returns the matching paths, one per line, most recently "
                "modified first, or 'No files found'.")),
            BaseTool(self._grep_search, name="grep_search", description=(
                "Search file contents with a regular expression. 'include' keeps only files "
                "whose name matches a glob such as '*.py' or '*.{ts,tsx}'. 'output_mode': "
                "'files_with_matches' (paths), 'content' (path:line:text) or 'count' "
                "(path:count). Returns 'No matches found' when nothing matches.")),
        ]

    def _glob_search(self, pattern: str, path: str = "/") -> str:
        """Find files by a glob pattern.

        Args:
            pattern: the glob to match paths against, relative to 'path'.
            path: the folder to search, '/' being the root.
        """
        base = self._folder(path)
        if base is None or pattern.startswith("/") or ".." in pattern.split("/"):
            return _NO_FILES
        found = [(match.stat().st_mtime, self._virtual(match)) for match in base.glob(pattern)
                 if match.is_file() and self._inside(match)]
        if not found:
            return _NO_FILES
        found.sort(key=lambda item: item[0], reverse=True)
        return "\n".join(virtual for _, virtual in found)

    def _grep_search(self, pattern: str, path: str = "/", include: str | None = None,
                     output_mode: OutputMode = "files_with_matches") -> str:
        """Search file contents with a regular expression.

        Args:
            pattern: the regular expression to look for, line by line.
            path: the folder to search, '/' being the root.
            include: keep only files whose name matches this glob ('*.{ts,tsx}').
            output_mode: 'files_with_matches', 'content' or 'count'.
        """
        try:
            regex = re.compile(pattern)
        except re.error as error:
            return f"Invalid regex pattern: {error}"
        globs = _expand_braces(include) if include else None
        if include and not _valid_globs(include, globs):
            return "Invalid include pattern"
        base = self._folder(path)
        if base is None:
            return _NO_MATCHES
        matches = self._ripgrep(pattern, base, include) if self.use_ripgrep else None
        if matches is None:
            matches = self._python_grep(regex, base, globs)
        if not matches:
            return _NO_MATCHES
        return _formatted(matches, output_mode)

    def _folder(self, path: str) -> Path | None:
        """The real folder of a virtual path, or ``None`` when it is no folder of the root's."""
        folder = (self.root_path / path.lstrip("/")).resolve()  # ".." resolved, then checked
        if not folder.is_relative_to(self.root_path) or not folder.is_dir():
            return None
        return folder

    def _inside(self, file: Path) -> bool:
        """Whether ``file``, its symlinks resolved, is under the root."""
        try:
            return file.resolve().is_relative_to(self.root_path)
        except (OSError, ValueError):
            return False

    def _virtual(self, file: Path) -> str:
        return "/" + file.relative_to(self.root_path).as_posix()

    def _python_grep(self, regex: re.Pattern[str], base: Path,
                     globs: list[str] | None) -> _Matches:
        matches: _Matches = {}
        # Symlinked folders are not followed, so the walk cannot leave the root through one.
        for folder, _, names in os.walk(base, followlinks=False):
            for name in sorted(names):
                if globs and not any(fnmatch.fnmatch(name, glob) for glob in globs):
                    continue
                file = Path(folder) / name
                if not (self._inside(file) and file.is_file()) \
                        or file.stat().st_size > self.max_file_size_bytes:
                    continue
                try:
                    text = file.read_text()
                except (UnicodeDecodeError, OSError):
                    continue
                lines = [(number, line) for number, line in enumerate(text.splitlines(), 1)
                         if regex.search(line)]
                if lines:
                    matches[self._virtual(file)] = lines
        return matches

    def _ripgrep(self, pattern: str, base: Path, include: str | None) -> _Matches | None:
        """``rg``'s matches, or ``None`` when it is not installed or fails (then Python
        searches instead)."""
        rg = shutil.which("rg")
        if rg is None:
            return None
        # --hidden --no-ignore: rg would skip hidden and git-ignored files, Python does not.
        command = [rg, "--json", "--hidden", "--no-ignore",
                   "--max-filesize", str(self.max_file_size_bytes)]
        if include:
            command += ["--glob", include]
        command += ["--", pattern, str(base)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False,
                                  timeout=_RIPGREP_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode not in (0, 1):  # 1: nothing matched; 2: an error
            return None
        matches: _Matches = {}
        for line in done.stdout.splitlines():
            event = json.loads(line)
            if event.get("type") != "match":
                continue
            data = event["data"]
            name, text = data["path"].get("text"), data["lines"].get("text")
            # A name or line that is not UTF-8 comes base64-encoded, as "bytes": skipped, as
            # Python's search skips files it cannot decode.
            if name is None or text is None or not self._inside(Path(name)):
                continue
            matches.setdefault(self._virtual(Path(name)), []).append(
                (data["line_number"], text.rstrip("\n")))
        return matches

    def __repr__(self) -> str:
        return f"FilesystemFileSearchMiddleware(root_path={str(self.root_path)!r})"


def _expand_braces(pattern: str) -> list[str] | None:
    """``*.{py,pyi}`` as ``["*.py", "*.pyi"]``; ``None`` for unbalanced or empty braces."""
    start = pattern.find("{")
    if start == -1:
        return None if "}" in pattern else [pattern]
    end = pattern.find("}", start)
    if end == -1 or end == start + 1:
        return None
    expanded: list[str] = []
    for option in pattern[start + 1:end].split(","):
        rest = _expand_braces(pattern[:start] + option + pattern[end + 1:])
        if rest is None:
            return None
        expanded += rest
    return expanded


def _valid_globs(include: str, globs: list[str] | None) -> bool:
    return bool(globs) and not any(char in include for char in "\x00\n\r")


def _formatted(matches: _Matches, output_mode: str) -> str:
    files = sorted(matches)
    if output_mode == "content":
        return "\n".join(f"{file}:{number}:{line}" for file in files
                         for number, line in matches[file])
    if output_mode == "count":
        return "\n".join(f"{file}:{len(matches[file])}" for file in files)
    return "\n".join(files)
