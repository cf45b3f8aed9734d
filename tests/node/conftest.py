"""Node scripts driven from pytest: ``npm ci`` from the lockfile when ``node_modules`` is
missing or older than the lockfile, and a helper that runs a script and reads its JSON from stdout.

These tests need Node 20+ and npm (and the registry, once, for ``npm ci``); they fail rather
than skip without them, so that CI cannot pass without running them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, with this folder's packages installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "the Node tests need node (20+) and npm on PATH"
    installed = HERE / "node_modules" / ".package-lock.json"  # npm's record of what it put
    lockfile = HERE / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                       stdout=subprocess.DEVNULL)
    return node


def run_script(node: str, script: str, spec: Any, timeout: float = 120) -> Any:
    """Run ``script`` with ``spec`` as its JSON argument; its stdout as JSON."""
    done = subprocess.run([node, str(HERE / script), json.dumps(spec)], cwd=HERE,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{script} failed:\n{done.stderr}"
    return json.loads(done.stdout)
