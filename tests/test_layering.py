"""The package's shape, checked from the source: layers by folder, no cycles, no reaching in.

Data flows one way: server/ and cli/ -> engine/ -> llm/, embedding/, graph/ -> stores/, with the
shared value modules (config, errors, models, clock) below everything. Only server/ speaks MCP,
and only one module of it touches the SDK's private names.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mem0_mcp"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 120
SDK_BRIDGE = "server/sdk_bridge.py"

# What each layer may import from the package (besides itself and the shared modules).
SHARED = {"config", "errors", "models", "clock"}
ALLOWED: dict[str, set[str]] = {
    "shared": set(),
    "stores": set(),
    "embedding": set(),
    "llm": set(),
    # The graph extracts with the LLM and locks its store with the stores' file locks; the
    # embedder reaches it as a callable.
    "graph": {"llm", "stores"},
    "engine": {"llm", "embedding", "graph", "stores"},
    # The sampling backend implements the LLM protocol; the graph tools take GraphMemory from
    # Memory.graph and name its type.
    "server": {"engine", "llm", "graph"},
    # The local page (mem0-mcp ui) reads and writes through the engine, like a CLI command.
    "ui": {"engine"},
    "cli": {"server", "engine", "graph", "ui"},
}
NO_MCP = ("stores", "embedding", "llm", "graph", "engine", "shared", "ui")


def check(what: str, offenders: list[str]) -> None:
    assert not offenders, f"{what}:\n" + "\n".join(sorted(offenders))


def modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def layer(dotted: str) -> str:
    parts = dotted.split(".")
    if len(parts) == 1:
        return "root"
    return "shared" if parts[1] in SHARED else parts[1]


def imports(path: Path, dotted: str) -> set[str]:
    """Every module this one imports, at any depth (function-level and TYPE_CHECKING imports too)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = dotted.split(".")
                anchor = anchor if is_pkg else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            # `from mem0_mcp.x import y` may name the submodule mem0_mcp.x.y
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def package_graph() -> dict[str, set[str]]:
    known = {name for name, _ in modules()}
    graph: dict[str, set[str]] = {}
    for name, path in modules():
        graph[name] = {n for n in imports(path, name) if n in known and n != name and n != "mem0_mcp"}
    return graph


def layer_offenders() -> list[str]:
    offenders = []
    for name, deps in package_graph().items():
        own = layer(name)
        if own == "root":
            continue
        for dep in deps:
            other = layer(dep)
            if other in (own, "shared", "root") and not (own == "shared" and other not in ("shared", "root")):
                continue
            if other not in ALLOWED[own]:
                offenders.append(f"{name} -> {dep}")
    return offenders


def test_layers_import_only_downwards() -> None:
    check("imports against the layers", layer_offenders())


def test_nothing_below_the_server_imports_mcp() -> None:
    offenders = []
    for name, path in modules():
        if layer(name) not in NO_MCP:
            continue
        bad = {n for n in imports(path, name) if n == "mcp" or n.startswith("mcp.")}
        if bad:
            offenders.append(f"{name}: {sorted(bad)}")
    assert not offenders, "modules below server/ import mcp: " + "; ".join(offenders)


def cycle_offenders() -> list[str]:
    graph = package_graph()
    # A package's __init__ importing its own submodules is how a package re-exports; a cycle
    # through an __init__ only counts when a submodule imports the package back for a name.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if node.startswith(dep + "."):
                continue  # a submodule importing its parent package is resolved before it runs
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return [" -> ".join(c) for c in cycles]


def test_no_import_cycles() -> None:
    check("import cycles", cycle_offenders())


def size_offenders() -> list[str]:
    offenders = []
    for name, path in modules():
        source = path.read_text()
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            offenders.append(f"{name}: module over {MAX_MODULE_LINES} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    offenders.append(f"{name}.{node.name}: function over {MAX_FUNCTION_LINES} lines")
    return offenders


def test_module_and_function_sizes() -> None:
    check("too large", size_offenders())


def _private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def sdk_offenders() -> list[str]:
    offenders = []
    for name, path in modules():
        if path.relative_to(PACKAGE).as_posix() == SDK_BRIDGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mcp"):
                parts = (node.module or "").split(".")
                hidden = [p for p in parts if _private(p)] + [a.name for a in node.names if _private(a.name)]
                if hidden:
                    offenders.append(f"{name}: from {node.module} import {hidden}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("mcp") and any(_private(p) for p in a.name.split(".")):
                        offenders.append(f"{name}: import {a.name}")
    return offenders


def test_sdk_private_names_only_in_the_bridge() -> None:
    check("SDK private names outside server/sdk_bridge.py", sdk_offenders())


def underscore_offenders() -> list[str]:
    """No `from x import _y`, no `module._y`, no `other_object._y` (only self and cls).

    The standard library's documented underscore names (`os._exit`) are not ours to judge; the
    SDK's private names live in the bridge module alone.
    """
    offenders = []
    for name, path in modules():
        if path.relative_to(PACKAGE).as_posix() == SDK_BRIDGE:
            continue
        tree = ast.parse(path.read_text())
        stdlib = {
            (a.asname or a.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for a in node.names
            if a.name.split(".")[0] in sys.stdlib_module_names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mem0_mcp"):
                hidden = [a.name for a in node.names if _private(a.name)]
                if hidden:
                    offenders.append(f"{name}: from {node.module} import {hidden}")
            elif isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                if isinstance(owner, ast.Name) and (owner.id in ("self", "cls") or owner.id in stdlib):
                    continue
                offenders.append(f"{name}: {ast.unparse(node)}")
    return offenders


def test_no_module_uses_another_modules_underscore_names() -> None:
    check("underscore names used from outside", underscore_offenders())


@pytest.mark.slow
def test_engine_import_does_not_load_mcp_or_torch() -> None:
    code = (
        "import sys, mem0_mcp.engine.memory, mem0_mcp.stores.vectors, mem0_mcp.stores.history; "
        "print(any(m == 'mcp' or m.startswith('mcp.') for m in sys.modules), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
