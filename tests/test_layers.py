"""The package's layers: imports point one way, as the diagram at the top of docs/design.md draws.

Every import of an rxagent module counts: at module level, under ``TYPE_CHECKING`` and inside
functions, because each is a dependency a reader has to hold in mind all the same.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rxagent"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The rxagent modules that module ``name`` imports, anywhere in it."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from . import operators` imports a module
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module: each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles() -> None:
    assert strongly_connected(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def layers_from_design() -> list[list[str]]:
    """The diagram at the top of docs/design.md: layers from top to bottom, one per line,
    ``name   module module ...``; a module written ``pkg/`` stands for the package and all its
    modules."""
    text = (ROOT / "docs" / "design.md").read_text()
    block = re.search(r"<!-- layers -->\s*```text\n(.*?)```", text, re.S)
    assert block is not None, "docs/design.md has no layer diagram after <!-- layers -->"
    layers: list[list[str]] = []
    for line in block.group(1).splitlines():
        if not line.strip() or set(line.strip()) <= set("│↓|v-─ "):
            continue
        _, _, members = line.partition("  ")
        layers.append(members.split())
    return layers


def layer_of() -> dict[str, int]:
    """Each module's layer, counted from the bottom."""
    placed: dict[str, int] = {}
    for rank, members in enumerate(reversed(layers_from_design())):
        for member in members:
            if member.endswith("/"):
                prefix = "rxagent." + member.rstrip("/").replace("/", ".")
                names = [n for n in MODULES if n == prefix or n.startswith(prefix + ".")]
            elif member == "__init__.py":
                names = ["rxagent"]
            else:
                names = ["rxagent." + member.removesuffix(".py").replace("/", ".")]
            for name in names:
                assert name in MODULES, f"the diagram names {member}, which does not exist"
                placed[name] = rank
    return placed


def test_every_module_is_in_the_diagram() -> None:
    missing = sorted(set(MODULES) - set(layer_of()))
    assert missing == []


def test_imports_point_down_the_diagram() -> None:
    rank = layer_of()
    upward = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name in rank
        for target in sorted(targets)
        if target in rank and rank[target] > rank[name]
    ]
    assert upward == []
