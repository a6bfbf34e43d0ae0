"""The wheel carries the package and the prompts/ folder (as mem0_mcp/prompts)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_prompts(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("mem0_mcp-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    prompts = sorted(p.name for p in (ROOT / "prompts").glob("*.md"))
    assert prompts, "prompts/ is empty"
    for name in prompts:
        assert f"mem0_mcp/prompts/{name}" in names
    assert {"mem0_mcp/engine/memory.py", "mem0_mcp/server/manifest.json"} <= names
    assert any(n.endswith("entry_points.txt") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "mem0-mcp = mem0_mcp.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()
