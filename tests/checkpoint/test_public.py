"""The savers' public modules: explicit ``__all__``, and no pytest outside the conformance suite."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import rxagent

MODULES = [
    "rxagent.checkpoint",
    "rxagent.checkpoint.conformance",
    "rxagent.checkpoint.redis",
    "rxagent.checkpoint.sqlite",
]


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported) and len(set(exported)) == len(exported)
    assert [n for n in exported if not hasattr(module, n)] == []


def test_checkpoint_error_is_a_run_error_of_the_tree() -> None:
    assert issubclass(rxagent.CheckpointError, rxagent.RunError)
    assert "CheckpointError" in rxagent.__all__


def test_the_savers_do_not_import_pytest() -> None:
    code = (
        "import sys, rxagent, rxagent.checkpoint, rxagent.checkpoint.sqlite, "
        "rxagent.checkpoint.redis; print('pytest' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
