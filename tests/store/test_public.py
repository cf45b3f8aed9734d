"""The store's public modules: explicit ``__all__``, errors of the tree, and no pytest outside
the conformance suite."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import rxagent
from rxagent import _exceptions
from rxagent.store import InvalidNamespaceError, StoreError

MODULES = ["rxagent.store", "rxagent.store.conformance", "rxagent.store.sqlite"]


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(set(exported)) == len(exported)
    assert [n for n in exported if not hasattr(module, n)] == []


def test_the_store_errors_are_in_the_tree() -> None:
    assert issubclass(InvalidNamespaceError, rxagent.UsageError)
    assert issubclass(InvalidNamespaceError, ValueError)  # as LangGraph's is
    assert issubclass(StoreError, rxagent.RunError)
    assert {"InvalidNamespaceError", "StoreError"} <= set(_exceptions.__all__)
    tree = _exceptions.__doc__ or ""
    assert "InvalidNamespaceError" in tree and "StoreError" in tree


def test_the_stores_do_not_import_pytest_or_langgraph() -> None:
    code = (
        "import sys, rxagent.store, rxagent.store.sqlite; "
        "print([m for m in ('pytest', 'langgraph', 'numpy') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
