"""The engine, stores and LLM code know nothing of MCP; importing the package stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mem0_mcp"
# The engine: everything below the protocol layer. Subpackages count whole.
ENGINE_PACKAGES = ("stores", "llm")
ENGINE_MODULES = (
    "memory.py",
    "config.py",
    "embeddings.py",
    "onnx_embedder.py",
    "filters.py",
    "ranking.py",
    "locks.py",
    "models.py",
    "errors.py",
    "graph.py",
    "reindex.py",
)


def _engine_files() -> list[Path]:
    files = [PACKAGE / name for name in ENGINE_MODULES if (PACKAGE / name).exists()]
    for pkg in ENGINE_PACKAGES:
        files += sorted((PACKAGE / pkg).rglob("*.py"))
    return files


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_engine_does_not_import_mcp() -> None:
    offenders = []
    for path in _engine_files():
        rel = path.relative_to(PACKAGE)
        bad = {n for n in _imports(path) if n == "mcp" or n.startswith("mcp.")}
        if bad:
            offenders.append(f"{rel}: {sorted(bad)}")
    assert not offenders, "engine modules import mcp: " + "; ".join(offenders)


def test_memory_module_import_does_not_load_mcp_or_torch() -> None:
    code = (
        "import sys, mem0_mcp.engine.memory, mem0_mcp.stores.vectors, mem0_mcp.stores.history; "
        "print(any(m == 'mcp' or m.startswith('mcp.') for m in sys.modules), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
