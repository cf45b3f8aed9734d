"""The public surface is explicit: every public module has an ``__all__`` that resolves.

(Its order is ruff's business: RUF022 keeps each ``__all__`` sorted.)"""

from __future__ import annotations

import importlib

import pytest

import rxagent

PUBLIC_MODULES = [
    "rxagent",
    "rxagent.agui",
    "rxagent.callbacks",
    "rxagent.chat_models",
    "rxagent.messages",
    "rxagent.notebook",
    "rxagent.operators",
    "rxagent.server",
    "rxagent.structured_output",
    "rxagent.testing",
    "rxagent.tools",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name} exports names it does not define: {missing}"


def test_every_exception_descends_from_the_root() -> None:
    errors = [getattr(rxagent, n) for n in rxagent.__all__ if n.endswith("Error")]
    assert len(errors) >= 15
    assert all(issubclass(error, rxagent.RxAgentError) for error in errors)
    assert issubclass(rxagent.StreamTimeoutError, TimeoutError)


def test_private_modules_are_not_reexported_as_modules() -> None:
    public = {n for n in dir(rxagent) if not n.startswith("_")}
    leaked = {n for n in public if n not in rxagent.__all__ and n not in {
        "agui", "callbacks", "chat_models", "checkpoint", "messages", "middleware", "notebook",
        "operators", "rate_limiters", "runtime", "server", "store", "structured_output",
        "testing", "tools",
        "types",
    }}
    assert not leaked, f"public names outside __all__: {sorted(leaked)}"
